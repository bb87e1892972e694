/*
 * rf_runs.c - MLflow run lifecycle and uploads for one destination
 * (rf_runs.h), driven by rf_track_pump() through rf_runs_pump().
 *
 * Order of work:
 *   1. the experiment (rf_experiments.c: get-by-name, restored if deleted,
 *      created if missing); refused by MLflow, its runs fail (counted);
 *   2. runs: a parent before its children (children carry mlflow.parentRunId).
 *      runs/create is not idempotent, so it is never blindly retried: after
 *      an ambiguous failure the run is looked up by its ringflow.key tag
 *      first.  Created ids are appended to the id map (rf_idmap.c), so a
 *      restarted sidecar reuses its runs;
 *   3. log-batch: up to max_batch entities (<= 100 params, <= 100 tags), one
 *      request in flight per run so metric order holds.  rf_http retries
 *      everything but a verdict; a batch MLflow refuses as invalid (400 with
 *      its JSON error_code, rf_resp_refuses_entities) or a proxy finds too
 *      large (413) is split in halves until the offending entity is alone,
 *      then that one is dropped and counted (rejected), so it never takes
 *      the rest down with it.  Any other final answer keeps the batch and
 *      sends it again after a backoff;
 *   4. artifacts: a task's files are built on rf_artq's worker (its log is
 *      read there, not on the loop), taken here once built, then PUT, four
 *      at a time per run;
 *   5. runs/update with the final status, once the run's data and artifacts
 *      are all sent (a parent after its children) and its traces are in
 *      (rf_track_set_end_hold).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "rf_artifacts.h"
#include "rf_artq.h"
#include "rf_blob.h"
#include "rf_err.h"
#include "rf_resp.h"
#include "rf_ring.h"
#include "rf_runs.h"

#define PARAM_MAX 6000 /* MLflow's param value limit */

/* A failure handled here, to the owner's sink (rf_err.h). */
#define track_err(t, ...) rf_err_report(&(t)->err, __VA_ARGS__)

/* ---- run table ---- */

struct mrun *rf_runs_get(struct rf_runs *t, const char *key, bool create)
{
	for (struct mrun *r = t->list; r; r = r->next)
		if (!strcmp(r->key, key))
			return r;
	if (!create)
		return NULL;
	struct mrun *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	snprintf(r->key, sizeof r->key, "%s", key);
	r->ctags = json_array();
	r->t = t;
	r->params = json_object();
	r->tags = json_object();
	const char *uri = NULL, *id = rf_idmap_get(&t->idmap, key, &uri);
	if (id) {
		snprintf(r->id, sizeof r->id, "%s", id);
		snprintf(r->artifact_uri, sizeof r->artifact_uri, "%s", uri ? uri : "");
		r->state = RUN_READY;
		t->st.runs_reused++;
	}
	/* Append: runs are created in the order they were first seen. */
	struct mrun **pp = &t->list;
	while (*pp)
		pp = &(*pp)->next;
	*pp = r;
	return r;
}

void rf_run_tag(struct mrun *r, const char *key, const char *value, bool at_create)
{
	if (r->state == RUN_FAILED)
		r->t->st.rejected++;
	else if (at_create && r->state == RUN_NEW)
		json_array_append_new(r->ctags, json_pack("{s:s,s:s}", "key", key, "value", value));
	else
		json_object_set_new(r->tags, key, json_string(value));
}

static char *utf8_prefix(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max) {
		n = max;
		while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	return strndup(s, n);
}

void rf_run_param(struct mrun *r, const char *key, const char *value)
{
	char k[256];
	snprintf(k, sizeof k, "%s", key);
	rf_mlflow_sanitize_key(k);
	if (r->state == RUN_FAILED) {
		r->t->st.rejected++;
		return;
	}
	char *v = utf8_prefix(value, PARAM_MAX);
	if (v)
		json_object_set_new(r->params, k, json_string(v));
	free(v);
}

/* A run MLflow refused to create: what was and would be logged to it is
 * lost, counted in rejected (and its children with it). */
static void run_failed(struct rf_runs *t, struct mrun *r)
{
	r->state = RUN_FAILED;
	t->st.runs_failed++;
	t->st.rejected += r->mq.n + json_object_size(r->params) + json_object_size(r->tags);
	rf_mq_free(&r->mq);
	memset(&r->mq, 0, sizeof r->mq);
	json_object_clear(r->params);
	json_object_clear(r->tags);
	for (struct rf_art_file *f = r->uploads; f; f = f->next)
		t->st.artifacts_failed++;
	rf_art_files_free(r->uploads);
	r->uploads = NULL;
}

void rf_run_metric(struct mrun *r, const char *key, double value, int64_t ts_ms, int64_t step)
{
	if (r->state == RUN_FAILED) {
		r->t->st.rejected++;
		return;
	}
	if (!r->keys)
		r->keys = rf_keys_new(RF_RUN_KEYS_MAX);
	uint32_t id = r->keys ? rf_keys_id(r->keys, key) : RF_KEYS_FULL;
	if (id == RF_KEYS_FULL) {
		r->t->st.keys_capped++;
		if (!r->keys_said) { /* once per run: the counter says how many */
			r->keys_said = true;
			track_err(r->t, "run %s: more than %d metric names, metric %.100s and later new "
				  "names dropped (counted in keys_capped)", r->key, RF_RUN_KEYS_MAX, key);
		}
		return;
	}
	struct rf_pmetric m = {id, value, ts_ms, step};
	rf_mq_push(&r->mq, &m);
}

void rf_run_artifacts(struct mrun *r, struct rf_art_file *files)
{
	if (r->state == RUN_FAILED) {
		for (struct rf_art_file *f = files; f; f = f->next)
			r->t->st.artifacts_failed++;
		rf_art_files_free(files);
		return;
	}
	struct rf_art_file **tail = &r->uploads;
	while (*tail)
		tail = &(*tail)->next;
	json_t *logged = json_array();
	while (files) {
		struct rf_art_file *f = files;
		files = f->next;
		f->next = NULL;
		if (!strcmp(f->type, "error")) {
			r->t->st.artifacts_failed++;
			track_err(r->t, "artifacts from the Inspect log: %s", f->err);
			rf_art_files_free(f);
			continue;
		}
		if (!strcmp(f->type, "table"))
			json_array_append_new(logged, json_pack("{s:s,s:s}", "path", f->path, "type",
								"table"));
		*tail = f;
		tail = &f->next;
	}
	/* As MlflowClient.log_table does: the UI lists tables from this tag. */
	if (json_array_size(logged)) {
		char *s = json_dumps(logged, JSON_COMPACT);
		if (s)
			rf_run_tag(r, "mlflow.loggedArtifacts", s, false);
		free(s);
	}
	json_decref(logged);
}

void rf_run_build_artifacts(struct mrun *r, struct rf_art *a, const char *eval_id,
			    const char *location)
{
	if (!(r->art_job = rf_artq_push(r->t->artq, a, eval_id, location))) {
		rf_run_artifacts(r, rf_art_files(a, eval_id, location, NULL)); /* on this thread */
		rf_art_free(a);
	}
}

/* A run's artifacts, once built, join its uploads. */
static void take_artifacts(struct rf_runs *t, struct mrun *r)
{
	struct rf_art_file *files;
	if (r->art_job && rf_artq_take(t->artq, r->art_job, &files)) {
		r->art_job = NULL;
		rf_run_artifacts(r, files);
	}
}

void rf_run_end(struct mrun *r, const char *status, int64_t end_ms)
{
	if (r->end_status)
		return;
	r->end_status = status;
	r->end_ms = end_ms;
}

/* ---- runs ---- */

struct run_call {
	struct rf_runs *t;
	struct mrun *r;
	void *body; /* the batch in flight, for splitting on a 4xx */
};

static struct run_call *call(struct rf_runs *t, struct mrun *r, void *body)
{
	struct run_call *c = malloc(sizeof *c);
	if (c)
		*c = (struct run_call){t, r, body};
	return c;
}

/* False (nothing changed) when the server's run object is unusable. */
static bool run_ready(struct rf_runs *t, struct mrun *r, json_t *run)
{
	if (!rf_resp_run(run, r->id, sizeof r->id, r->artifact_uri, sizeof r->artifact_uri))
		return false;
	r->state = RUN_READY;
	if (rf_idmap_add(&t->idmap, r->key, r->id, r->artifact_uri))
		track_err(t, "id map: %s", rf_err_msg());
	return true;
}

static void create_run(struct rf_runs *t, struct mrun *r);

static void on_run_found(int ok, long status, json_t *resp, const char *msg, void *arg)
{
	struct run_call *c = arg;
	json_t *runs = json_object_get(resp, "runs");
	if (ok && json_array_size(runs) > 0 && run_ready(c->t, c->r, json_array_get(runs, 0))) {
		c->t->st.runs_reused++;
	} else if (ok && !json_array_size(runs)) {
		c->r->state = RUN_NEW; /* not there: create it (again) */
		c->r->retry_at = 0;
	} else {
		c->r->state = RUN_NEW;
		c->r->lookup = true;
		c->r->retry_at = rf_loop_now_ms() + 2000;
		track_err(c->t, "searching run %s: HTTP %ld: %.400s", c->r->key, status,
			  ok ? "response without a usable run" : msg);
	}
	free(c);
}

static void find_run(struct rf_runs *t, struct mrun *r)
{
	char filter[300];
	snprintf(filter, sizeof filter, "tags.`ringflow.key` = '%s'", r->key);
	json_t *body = json_pack("{s:[s],s:s,s:i}", "experiment_ids", t->exp.id, "filter", filter,
				 "max_results", 1);
	r->state = RUN_CREATING;
	struct run_call *c = call(t, r, NULL);
	if (!c || rf_mlflow_post(t->m, "runs/search", body, RF_HTTP_RETRY_ALL, on_run_found, c))
		r->state = RUN_NEW;
}

static void on_run_created(int ok, long status, json_t *resp, const char *msg, void *arg)
{
	struct run_call *c = arg;
	struct mrun *r = c->r;
	if (ok && run_ready(c->t, r, json_object_get(resp, "run"))) {
		c->t->st.runs_created++;
	} else if ((status == 400 || status == 404) &&
		   json_is_string(json_object_get(resp, "error_code"))) {
		/* MLflow's own verdict (its JSON error): data for it is counted
		 * as rejected, not retried. */
		run_failed(c->t, r);
		track_err(c->t, "creating run %s: HTTP %ld: %.400s", r->key, status, msg);
	} else {
		/* No answer, a server error, an auth failure or a proxy's page:
		 * it may exist.  Look before creating again, after a backoff. */
		r->state = RUN_NEW;
		r->attempts++;
		r->lookup = true;
		r->retry_at = rf_loop_now_ms() + (uint64_t)(250 << (r->attempts < 7 ? r->attempts : 7));
		track_err(c->t, "creating run %s: HTTP %ld: %.400s", r->key, status,
			  ok ? "response without a usable run" : msg);
	}
	free(c);
}

static void create_run(struct rf_runs *t, struct mrun *r)
{
	if (r->lookup) { /* an earlier attempt may have created it */
		r->lookup = false;
		find_run(t, r);
		return;
	}
	json_t *tags = json_copy(r->ctags);
	json_array_append_new(tags, json_pack("{s:s,s:s}", "key", "ringflow.key", "value", r->key));
	if (r->parent)
		json_array_append_new(tags, json_pack("{s:s,s:s}", "key", "mlflow.parentRunId",
						      "value", r->parent->id));
	json_t *body = json_pack("{s:s,s:s,s:I,s:o}", "experiment_id", t->exp.id, "run_name",
				 r->name, "start_time", (json_int_t)r->start_ms, "tags", tags);
	r->state = RUN_CREATING;
	struct run_call *c = call(t, r, NULL);
	if (!c || rf_mlflow_post(t->m, "runs/create", body, RF_HTTP_NO_RETRY, on_run_created, c))
		r->state = RUN_NEW;
}

/* ---- log-batch ---- */

struct batch {
	struct rf_pmetric *m;
	size_t nm;
	json_t *params, *tags; /* arrays of {key, value} */
};

static size_t pending_entities(struct mrun *r)
{
	return r->mq.n + json_object_size(r->params) + json_object_size(r->tags);
}

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	free(b->m);
	json_decref(b->params);
	json_decref(b->tags);
	free(b);
}

static size_t batch_size(const struct batch *b)
{
	return b->nm + json_array_size(b->params) + json_array_size(b->tags);
}

static struct batch *take_batch(struct rf_runs *t, struct mrun *r)
{
	size_t room = (size_t)t->max_batch;
	struct batch *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->params = json_array();
	b->tags = json_array();
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(r->params, tmp, k, v) {
		if (json_array_size(b->params) == 100 || !room)
			break;
		json_array_append_new(b->params, json_pack("{s:s,s:O}", "key", k, "value", v));
		json_object_del(r->params, k);
		room--;
	}
	json_object_foreach_safe(r->tags, tmp, k, v) {
		if (json_array_size(b->tags) == 100 || !room)
			break;
		json_array_append_new(b->tags, json_pack("{s:s,s:O}", "key", k, "value", v));
		json_object_del(r->tags, k);
		room--;
	}
	size_t n = r->mq.n < room ? r->mq.n : room;
	b->m = malloc((n ? n : 1) * sizeof *b->m);
	b->nm = b->m ? rf_mq_take(&r->mq, b->m, n) : 0;
	return b;
}

static void send_batch(struct rf_runs *t, struct mrun *r, struct batch *b);

/* Put a batch's entities back in front of what is pending, in order. */
static void unshift(struct mrun *r, struct batch *b)
{
	r->resend = true; /* goes again when retry_at allows, not metrics_ms later */
	rf_mq_push_front(&r->mq, b->m, b->nm);
	for (size_t j = 0; j < json_array_size(b->params); j++) {
		json_t *e = json_array_get(b->params, j);
		json_object_set(r->params, json_string_value(json_object_get(e, "key")),
				json_object_get(e, "value"));
	}
	for (size_t j = 0; j < json_array_size(b->tags); j++) {
		json_t *e = json_array_get(b->tags, j);
		json_object_set(r->tags, json_string_value(json_object_get(e, "key")),
				json_object_get(e, "value"));
	}
	batch_free(b);
}

static void on_batch(int ok, long status, json_t *resp, const char *msg, void *arg)
{
	struct run_call *c = arg;
	struct rf_runs *t = c->t;
	struct mrun *r = c->r;
	struct batch *b = c->body;
	free(c);
	r->inflight = false;
	size_t n = batch_size(b);
	if (ok) {
		r->attempts = 0;
		t->st.batches++;
		t->st.metrics += b->nm;
		t->st.params += json_array_size(b->params);
		t->st.tags += json_array_size(b->tags);
		batch_free(b);
		return;
	}
	if (status == 0) { /* no answer (cancelled at shutdown): keep it for later */
		unshift(r, b);
		return;
	}
	track_err(t, "log-batch to run %s (%s): HTTP %ld: %.400s", r->id, r->key, status, msg);
	if (!rf_resp_refuses_entities(status, resp)) {
		/* A final answer that is not about the entities (a 404 of a
		 * misrouted proxy, a 4xx of another kind): keep them all and
		 * send again after a capped backoff. */
		r->attempts++;
		r->retry_at = rf_loop_now_ms() + (uint64_t)(250 << (r->attempts < 7 ? r->attempts : 7));
		unshift(r, b);
		return;
	}
	if (n <= 1) {
		t->st.rejected += n; /* the server refuses this entity: reported, not retried */
		batch_free(b);
		return;
	}
	/* Split in halves until the refused entity is alone; the second half
	 * waits in front of what is pending (one batch in flight per run). */
	struct batch *h1 = calloc(1, sizeof *h1), *h2 = calloc(1, sizeof *h2);
	if (!h1 || !h2) {
		free(h1);
		free(h2);
		unshift(r, b);
		return;
	}
	size_t half = n / 2;
	h1->params = json_array();
	h1->tags = json_array();
	h2->params = json_array();
	h2->tags = json_array();
	size_t i = 0;
	for (size_t j = 0; j < json_array_size(b->params); j++, i++)
		json_array_append(i < half ? h1->params : h2->params, json_array_get(b->params, j));
	for (size_t j = 0; j < json_array_size(b->tags); j++, i++)
		json_array_append(i < half ? h1->tags : h2->tags, json_array_get(b->tags, j));
	size_t m1 = i < half ? half - i : 0;
	if (m1 > b->nm)
		m1 = b->nm;
	h1->m = malloc((m1 ? m1 : 1) * sizeof *h1->m);
	h2->m = malloc((b->nm - m1 ? b->nm - m1 : 1) * sizeof *h2->m);
	memcpy(h1->m, b->m, m1 * sizeof *b->m);
	memcpy(h2->m, b->m + m1, (b->nm - m1) * sizeof *b->m);
	h1->nm = m1;
	h2->nm = b->nm - m1;
	batch_free(b);
	unshift(r, h2);
	send_batch(t, r, h1);
}

static void send_batch(struct rf_runs *t, struct mrun *r, struct batch *b)
{
	size_t len;
	char *body = b ? rf_batch_body(r->id, r->keys, b->m, b->nm, b->params, b->tags, &len) : NULL;
	struct run_call *c = body ? call(t, r, b) : NULL;
	uint64_t now = rf_loop_now_ms();
	if (!c) {
		free(body);
		if (b) {
			unshift(r, b);
			r->retry_at = now + 1000; /* out of memory: not every loop turn */
		}
		return;
	}
	r->inflight = true;
	r->resend = false;
	r->sent_ms = now;
	if (rf_mlflow_post_raw(t->m, "runs/log-batch", body, len, RF_HTTP_RETRY_ALL, on_batch, c)) {
		r->inflight = false;
		free(c);
		unshift(r, b);
		r->retry_at = now + 1000;
	}
}

/* ---- end ---- */

static void on_ended(int ok, long status, json_t *resp, const char *msg, void *arg)
{
	(void)resp;
	struct run_call *c = arg;
	if (ok) {
		c->r->end_state = RUN_END_DONE;
		c->t->st.runs_ended++;
	} else {
		c->r->end_state = RUN_END_DONE; /* refused (4xx): reported; retrying cannot help */
		track_err(c->t, "ending run %s: HTTP %ld: %.400s", c->r->id, status, msg);
	}
	free(c);
}

static bool children_ended(struct rf_runs *t, struct mrun *p)
{
	for (struct mrun *r = t->list; r; r = r->next)
		if (r->parent == p &&
		    (r->art_job || (r->end_state != RUN_END_DONE && r->state != RUN_FAILED)))
			return false; /* (a failed run's artifacts are counted once built) */
	return true;
}

/* Traces linked to the run still on their way: its status waits (the run
 * reads FINISHED only once they are in), but not past the bound, so a trace
 * the server keeps refusing cannot keep the run open. */
static bool end_held(struct rf_runs *t, struct mrun *r, uint64_t now)
{
	if (r->hold_since == UINT64_MAX || !t->end_hold || !t->end_hold(t->end_hold_arg, r->key))
		return false;
	if (!r->hold_since) {
		r->hold_since = now;
		t->st.ends_held++;
	}
	if (now - r->hold_since < RF_TRACK_END_HOLD_MS)
		return true;
	t->st.end_hold_expired++;
	track_err(t, "run %s ended before its traces were all sent (waited %d s)", r->id,
		  RF_TRACK_END_HOLD_MS / 1000);
	r->hold_since = UINT64_MAX; /* said once; the end goes now */
	return false;
}

static void end_run(struct rf_runs *t, struct mrun *r)
{
	json_t *body = json_pack("{s:s,s:s,s:I}", "run_id", r->id, "status", r->end_status,
				 "end_time", (json_int_t)r->end_ms);
	struct run_call *c = call(t, r, NULL);
	r->end_state = RUN_END_SENDING;
	if (!c || rf_mlflow_post(t->m, "runs/update", body, RF_HTTP_RETRY_ALL, on_ended, c))
		r->end_state = RUN_END_NOT_SENT;
}

/* ---- artifacts ---- */

static void on_uploaded(int ok, long status, json_t *resp, const char *msg, void *arg)
{
	(void)resp;
	struct run_call *c = arg;
	c->r->uploads_inflight--;
	if (ok) {
		c->t->st.artifacts++;
	} else {
		c->t->st.artifacts_failed++;
		track_err(c->t, "artifact upload for run %s: HTTP %ld: %.400s", c->r->id, status, msg);
	}
	free(c);
}

static void upload_next(struct rf_runs *t, struct mrun *r)
{
	struct rf_art_file *f = r->uploads;
	r->uploads = f->next;
	/* "bytes": the log's copy, checked when it was made (never the path
	 * again); otherwise JSON text. */
	const char *ctype = !strcmp(f->type, "bytes") ? "application/octet-stream" : "application/json";
	struct rf_blob *body = f->body;
	f->body = NULL;
	struct run_call *c = call(t, r, NULL);
	if (c) {
		r->uploads_inflight++;
		int rc = rf_mlflow_put_artifact(t->m, r->artifact_uri, f->path, body, ctype,
						on_uploaded, c);
		if (rc) {
			r->uploads_inflight--;
			free(c);
			t->st.artifacts_failed++;
			track_err(t, "artifact %s for run %s: %s%s", f->path, r->id, strerror(-rc),
				  rc == -ENOTSUP ? " (the server does not serve artifacts: "
						   "mlflow server --serve-artifacts)" :
				  rc == -EINVAL ? " (the run's artifact location or the "
						  "artifact path is not plain names)" : "");
		}
	} else {
		rf_blob_free(body);
		t->st.artifacts_failed++;
		track_err(t, "artifact %s: out of memory", f->path);
	}
	f->next = NULL;
	rf_art_files_free(f);
}

/* ---- the pump ---- */

static void free_run(struct mrun *r)
{
	json_decref(r->ctags);
	rf_mq_free(&r->mq);
	json_decref(r->params);
	json_decref(r->tags);
	rf_art_files_free(r->uploads);
	rf_keys_free(r->keys);
	if (r->agg) {
		rf_art_free(r->agg->art);
		free(r->agg->total_times);
		free(r->agg->seen);
		while (r->agg->usage) {
			struct usage_sum *u = r->agg->usage;
			r->agg->usage = u->next;
			free(u);
		}
		free(r->agg);
	}
	free(r);
}

void rf_runs_count_pending(struct rf_runs *t)
{
	t->st.pending = 0;
	for (struct mrun *r = t->list; r; r = r->next)
		t->st.pending += pending_entities(r);
}

void rf_runs_pump(struct rf_runs *t, bool flush_now)
{
	uint64_t now = rf_loop_now_ms();
	if (!t->list) {
		t->st.pending = 0;
		return; /* nothing to log yet: no request */
	}
	const char *exp = rf_exp_resolve(&t->exp);
	if (exp && !*exp) { /* MLflow refused the experiment: its runs cannot be */
		for (struct mrun *r = t->list; r; r = r->next)
			if (r->state == RUN_NEW)
				run_failed(t, r);
	} else if (!exp) {
		rf_runs_count_pending(t); /* waiting for the experiment counts as pending */
		return;
	}
	for (struct mrun *r = t->list; r; r = r->next) {
		take_artifacts(t, r);
		if (r->state == RUN_NEW && r->parent && r->parent->state == RUN_FAILED)
			run_failed(t, r);
		if (r->state == RUN_NEW && now >= r->retry_at && r->start_ms &&
		    (!r->parent || r->parent->state == RUN_READY))
			create_run(t, r);
		if (r->state != RUN_READY)
			continue;
		while (r->uploads && r->uploads_inflight < 4)
			upload_next(t, r);
		if (r->inflight)
			continue;
		/* A partial batch only metrics_ms after the run's last batch: a
		 * run whose values fill a batch sooner sends only full ones, and a
		 * value waits less than twice metrics_ms (what a full batch leaves
		 * came after the batch before it). */
		size_t n = pending_entities(r);
		bool due = flush_now || r->end_status || r->resend || n >= (size_t)t->max_batch ||
			   now - r->sent_ms >= (uint64_t)t->metrics_ms;
		if (n && now >= r->retry_at && due)
			send_batch(t, r, take_batch(t, r));
		else if (!n && r->end_status && r->end_state == RUN_END_NOT_SENT && children_ended(t, r) &&
			 !r->art_job && !r->uploads && !r->uploads_inflight && !end_held(t, r, now))
			end_run(t, r);
	}
	/* Forget parents whose whole family is done (the id map remembers them). */
	for (struct mrun **pp = &t->list; *pp;) {
		struct mrun *p = *pp;
		bool done = !p->parent && p->end_state == RUN_END_DONE && !p->art_job &&
			    children_ended(t, p);
		if (!done) {
			pp = &p->next;
			continue;
		}
		for (struct mrun **cc = &t->list; *cc;) {
			if ((*cc)->parent == p) {
				struct mrun *dead = *cc;
				*cc = dead->next;
				free_run(dead);
			} else {
				cc = &(*cc)->next;
			}
		}
		for (pp = &t->list; *pp && *pp != p; pp = &(*pp)->next)
			;
		*pp = p->next;
		free_run(p);
	}
	rf_runs_count_pending(t);
}

bool rf_runs_idle(struct rf_runs *t)
{
	for (struct mrun *r = t->list; r; r = r->next) {
		if (r->art_job)
			return false; /* its files are still being built */
		if (r->state == RUN_FAILED)
			continue;
		if (r->state != RUN_READY || r->inflight || pending_entities(r) ||
		    r->uploads || r->uploads_inflight ||
		    (r->end_status && r->end_state != RUN_END_DONE) || (r->start_ms && !r->end_status))
			return false;
	}
	return true;
}

/* As rf_runs_idle, but an open run with nothing left to send counts as
 * drained: what `ringflowd flush` waits for. */
bool rf_runs_drained(struct rf_runs *t)
{
	for (struct mrun *r = t->list; r; r = r->next)
		if (r->art_job ||
		    (r->state != RUN_FAILED &&
		     (r->state != RUN_READY || r->inflight || pending_entities(r) ||
		      r->uploads || r->uploads_inflight ||
		      (r->end_status && r->end_state != RUN_END_DONE))))
			return false;
	return true;
}

static void exp_err(void *arg, const char *msg)
{
	track_err((struct rf_runs *)arg, "%s", msg);
}

int rf_runs_init(struct rf_runs *t, rf_mlflow *m, const struct rf_err_sink *err,
		 const char *experiment, const char *idmap_path,
		 int64_t metrics_ms, int max_batch)
{
	memset(t, 0, sizeof *t);
	if (err)
		t->err = *err;
	t->m = m;
	t->metrics_ms = metrics_ms;
	t->max_batch = max_batch;
	rf_exp_init(&t->exp, m, experiment, exp_err, t);
	t->artq = rf_artq_new(); /* NULL: artifacts are built on the loop */
	int rc = rf_idmap_load(&t->idmap, idmap_path);
	if (rc)
		track_err(t, "%s", rf_err_msg());
	return rc;
}

void rf_runs_free(struct rf_runs *t)
{
	/* First: no job is then being built, and none is left. */
	size_t cut = 0, left = rf_artq_free(t->artq, &cut);
	if (left)
		track_err(t, "stopping: artifacts of %zu task(s) not uploaded (%zu cut short while "
			  "their log was read); their records stay in the journal, built at the next "
			  "start", left, cut);
	while (t->list) {
		struct mrun *r = t->list;
		t->list = r->next;
		free_run(r);
	}
	rf_idmap_free(&t->idmap);
}
