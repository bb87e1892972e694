/*
 * rf_trace_upload.c - send traces: one StartTraceV3 per trace first (state
 * IN_PROGRESS, with its previews, tags, metadata and assessments), then its
 * spans as OTLP/JSON batches to MLflow's /v1/traces (and a copy to an
 * OpenTelemetry collector when configured), the root span last.
 *
 * Why this order (measured with bench/trace_protocol.py, docs/DESIGN.md
 * "Traces"): log_spans on a trace that exists only updates its row, while a
 * StartTraceV3 after the spans takes MLflow's upsert path (rollback, lock,
 * merge): about half the server's CPU per trace.  Readers never see a
 * broken trace: the info carries mlflow.trace.spansLocation=TRACKING_STORE,
 * so until its spans are in, MLflow's client reads it as "not exported yet"
 * (get_trace: none, search_traces: skipped) and the UI as an in-progress
 * trace; the batch carrying the root span sets OK/ERROR in the same
 * transaction as the last spans.
 *
 * Requests: a span batch carries up to OTLP_MAX_SPANS spans of traces of
 * one experiment, whatever their runs.  A trace's run is the info's
 * mlflow.sourceRun, which is what MLflow's UI (the run page's traces) and
 * search_traces(run_id=...) read; the x-mlflow-run-id header, which would
 * also add a row per trace to the link table, is not sent: it bounded a
 * batch to 100 traces (link_traces_to_run refuses more); its cost to the
 * server is within the noise (bench/trace_protocol.py b_info_first_nolink).
 * The info is one request per trace because MLflow has no batch form of it
 * (nor of assessments).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "rf_clock.h"
#include "rf_trace_ops.h"
#include "rf_trace_table.h"
#include "rf_traces.h" /* what it implements: rf_traces_pump, _idle, _stats ... */

#define OTLP_MAX_SPANS 2000 /* spans per /v1/traces request */
/* Trace requests in flight: as many as the server takes at once without
 * queueing them (rf_trace_pace.h measures it from the infos' round trips:
 * 2-4 for one server worker, more for more), and while tracking has
 * requests waiting only one: the server spends tens of ms of CPU on each,
 * and a run's log-batch queued behind many of them would wait as long.
 * One span batch at a time keeps a trace's parts in order (its root goes
 * in the last). */
#define OTLP_MAX_INFLIGHT 1
#define PREVIEW_MAX 1000    /* MLflow's request/response preview column */

/* A trace's ended spans go out when it is complete, as they end in run
 * mode, and in any case once TRACE_HOLD_MAX of them wait: a sample with
 * thousands of events is sent in parts (after an IN_PROGRESS info, so the
 * parts take the cheap path too), so what the sidecar holds per trace
 * stays bounded. */
#define TRACE_HOLD_MAX 1000

/* A complete Inspect trace's spans wait for company up to this long (or
 * until a batch is full: OTLP_MAX_SPANS spans): a span request costs the server ~9 ms
 * of CPU whatever it carries, and a trace that waits is listed IN_PROGRESS
 * meanwhile, never broken.  Once the run's end waits for its traces
 * (run_ending) they go as soon as no other info is on their way: nothing
 * more will join them.  Traces of the tracing API wait RINGFLOW_FLUSH_MS at
 * most (a program may flush and read them back), or not at all when no
 * other info is on its way.  Memory shortens the wait: a trace whose info is
 * answered cannot wait on disk (rf_trace_spool.c), and past
 * RINGFLOW_TRACE_MEM_MB the memory gate stops taking records: once such
 * traces weigh a quarter of it their spans wait RINGFLOW_FLUSH_MS at most,
 * and three eighths they go at once (compact() keeps them deflated, ~2 KB
 * per Inspect sample: ~500 fit a quarter of the default 4 MiB). */
#define LIVE_SPAN_HOLD_MS 5000

/* May the trace's spans wait for more traces of its run? */
static bool span_lazy(const struct xtrace *t)
{
	return t->complete && t->inspect_run[0] && !t->run_ending;
}

static bool early_spans(const struct xtrace *t)
{
	return t->progressive || t->flush_held || t->tr->unsent_ended >= TRACE_HOLD_MAX;
}

/* Is the span a root in MLflow's eyes (sent without a parent)?  The same
 * rule as rf_otlp_span: an unknown parent is replaced by the trace's root. */
static bool is_top(struct rf_ttrace *tr, const struct rf_tspan *s)
{
	uint64_t p = s->parent;
	if (p && p != s->id && !rf_ttrace_span(tr, p, false))
		p = tr->root != s->id ? tr->root : 0;
	return !p || p == s->id;
}

/* The preview MLflow's client makes: the value as JSON text with Python's
 * json.dumps separators (", ", ": "; jansson's without JSON_COMPACT), a
 * string quoted too; over PREVIEW_MAX characters, cut to PREVIEW_MAX - 3
 * and "..." appended. */
static char *preview(json_t *v)
{
	if (!v)
		return NULL;
	char *s = json_dumps(v, JSON_ENCODE_ANY);
	if (!s)
		return NULL;
	size_t chars = 0, i = 0, cut = 0;
	for (; s[i]; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80 && ++chars == PREVIEW_MAX - 2)
			cut = i; /* the byte where character PREVIEW_MAX - 2 starts */
	if (chars > PREVIEW_MAX && cut)
		memcpy(s + cut, "...", 4); /* s has at least 4 bytes from cut on */
	return s;
}

static int trace_inflight(const rf_traces *x)
{
	return x->otlp_inflight + x->info_inflight;
}

/* Requests of the tracking path queued or in flight (everything rf_http
 * holds that is not ours). */
static bool tracking_busy(rf_traces *x)
{
	if (!x->http)
		return false;
	size_t ours = (size_t)(x->otlp_inflight + x->info_inflight + x->export_inflight);
	return rf_http_pending(x->http) > ours;
}

/* ---- span batches ---- */

struct otlp_call {
	rf_traces *x;
	size_t nspans, ntr;
	struct xtrace **tr;
};

static void on_otlp(int ok, long status, json_t *resp, const char *msg, void *arg)
{
	(void)resp;
	struct otlp_call *c = arg;
	rf_traces *x = c->x;
	x->otlp_inflight--;
	for (size_t i = 0; i < c->ntr; i++) {
		c->tr[i]->spans_inflight--;
		if (!ok)
			c->tr[i]->failed = true;
	}
	if (ok) {
		x->st.spans_sent += c->nspans;
	} else {
		x->st.spans_failed += c->nspans;
		rf_traces_err(x, "/v1/traces: %zu spans refused: HTTP %ld: %.300s", c->nspans, status,
			      msg ? msg : "");
	}
	free(c->tr);
	free(c);
}

static void on_export(long status, const char *body, size_t len, const char *err, void *arg)
{
	(void)body;
	(void)len;
	struct otlp_call *c = arg;
	c->x->export_inflight--;
	if (!(status >= 200 && status < 300)) {
		c->x->st.export_failed += c->nspans;
		rf_traces_err(c->x, "OTLP export: %zu spans failed: HTTP %ld %s", c->nspans, status,
			      err ? err : "");
	} else {
		c->x->st.export_spans += c->nspans;
	}
	free(c);
}

/* One span, encoded, onto f (after a comma unless it is the first); *n
 * counts the spans written.  A span jansson cannot encode (invalid UTF-8 in
 * a name a record gave, no memory) is counted in spans_failed, never
 * written as a hole in the array. */
static bool put_span(rf_traces *x, FILE *f, size_t *n, struct xtrace *t, struct rf_tspan *s)
{
	json_t *o = rf_otlp_span(t->tr, s);
	if (o) {
		if (*n)
			fputc(',', f);
		json_dumpf(o, f, JSON_COMPACT);
		(*n)++;
	} else {
		x->st.spans_failed++;
		rf_traces_err(x, "a span could not be encoded as JSON: not sent, counted in spans_failed");
	}
	json_decref(o);
	s->sent = true;
	rf_tspan_release(s);
	return o != NULL;
}

static void take_span(rf_traces *x, FILE *f, size_t *n, struct xtrace *t, struct rf_tspan *s)
{
	put_span(x, f, n, t, s);
	t->tr->unsent_ended--;
}

/* A complete trace whose info is answered and whose spans all fit one
 * request keeps them as OTLP/JSON text while it waits for its batch (the
 * roots last), deflated, and frees their structures.  For an Inspect sample
 * of 13 spans: ~31 KB of structures, ~11 KB of text, ~2 KB deflated (zlib
 * level 1: ~80 us, and ~20 us to inflate into the batch), so a full batch
 * (OTLP_MAX_SPANS) fits a quarter of RINGFLOW_TRACE_MEM_MB and the memory
 * bound no longer sends batches early (a 1,000-sample eval: 21 batches
 * before, 12 now).
 * unsent_ended still counts them until the text joins a request. */
static void deflate_enc(struct xtrace *t, char *text, size_t len)
{
	uLongf zlen = compressBound((uLong)len);
	/* Empty text (every span failed to encode) is held as it is: enc_raw 0
	 * must mean "not deflated". */
	unsigned char *z = len && len <= UINT32_MAX ? malloc(zlen) : NULL;
	if (z && compress2(z, &zlen, (const Bytef *)text, (uLong)len, 1) == Z_OK) {
		unsigned char *shrunk = realloc(z, zlen ? zlen : 1);
		t->enc = (char *)(shrunk ? shrunk : z);
		t->enc_len = zlen;
		t->enc_raw = len;
		free(text);
		return;
	}
	free(z); /* out of memory: held as text */
	t->enc = text;
	t->enc_len = len;
	t->enc_raw = 0;
}

/* The trace's held spans as text (its own buffer when not deflated), or
 * NULL when inflating fails (out of memory). */
static char *enc_text(const struct xtrace *t, size_t *len)
{
	if (!t->enc_raw) {
		*len = t->enc_len;
		return t->enc;
	}
	uLongf n = (uLongf)t->enc_raw;
	char *raw = malloc(n);
	if (!raw || uncompress((Bytef *)raw, &n, (const Bytef *)t->enc, (uLong)t->enc_len) != Z_OK ||
	    n != t->enc_raw) {
		free(raw);
		return NULL;
	}
	*len = n;
	return raw;
}

static void compact(rf_traces *x, struct xtrace *t)
{
	if (t->enc || !t->complete || t->info_state != INFO_ANSWERED || !t->info_final ||
	    t->spans_inflight || !t->tr->unsent_ended || t->tr->unsent_ended > OTLP_MAX_SPANS)
		return;
	char *buf = NULL;
	size_t size = 0, n = 0;
	FILE *f = open_memstream(&buf, &size);
	if (!f)
		return; /* sent from the structures, as before */
	for (int top = 0; top < 2; top++)
		for (size_t i = 0; i < t->tr->n; i++) {
			struct rf_tspan *s = &t->tr->spans[i];
			if (s->end_ns && !s->sent && is_top(t->tr, s) == top &&
			    !put_span(x, f, &n, t, s))
				t->tr->unsent_ended--; /* counted failed: not in the text */
		}
	if (fclose(f) || !buf) {
		/* The spans are already released: counted as failed, as a refused batch's. */
		free(buf);
		x->st.spans_failed += n;
		t->tr->unsent_ended -= n;
		t->failed = true;
		char id[36];
		rf_ttrace_id_str(t->tr->id, id);
		rf_traces_err(x, "trace %s: out of memory encoding its spans (counted in spans_failed)", id);
		return;
	}
	deflate_enc(t, buf, size);
	t->enc_n = n;
	rf_trace_spool_account(x, t);
}

/* How many of the trace's spans may go now (its roots only once every
 * other span is sent: the root's batch sets the trace's final state). */
static size_t sendable(struct xtrace *t)
{
	size_t n = 0, top = 0, rest = 0;
	if (t->info_state != INFO_ANSWERED || !t->tr->unsent_ended)
		return 0;
	if (t->enc)
		return t->enc_n;
	for (size_t i = 0; i < t->tr->n; i++) {
		struct rf_tspan *s = &t->tr->spans[i];
		if (!s->end_ns || s->sent)
			continue;
		if (is_top(t->tr, s))
			top++;
		else
			rest++;
	}
	n = rest;
	if (top && t->complete && t->info_final && !rest && !t->spans_inflight)
		n += top;
	return n;
}

/* Roots may join the same request as the trace's last other spans. */
static bool tops_may_follow(struct xtrace *t, int inflight_before)
{
	return t->complete && t->info_final && !inflight_before;
}

/* One request: ready spans of traces going to experiment exp, from `first`
 * on, up to OTLP_MAX_SPANS spans.  A trace is not split between requests
 * unless it alone is larger than one. */
static void send_batch(rf_traces *x, struct xtrace *first, const char *exp)
{
	struct otlp_call *c = calloc(1, sizeof *c);
	char *text = NULL;
	size_t text_len = 0, cap = 16;
	FILE *f = c ? open_memstream(&text, &text_len) : NULL;
	if (c)
		c->tr = malloc(cap * sizeof *c->tr);
	if (!f || !c->tr) {
		if (f)
			fclose(f);
		free(text);
		if (c)
			free(c->tr);
		free(c);
		rf_traces_err(x, "span batch: out of memory (retried at the next pump)");
		return;
	}
	c->x = x;
	for (struct xtrace *t = first; t && c->nspans < OTLP_MAX_SPANS; t = t->next) {
		size_t n = sendable(t);
		if (!n)
			continue;
		const char *e = rf_traces_exp_of(x, t), *r = rf_traces_run_of(x, t);
		if (!e || !r || strcmp(e, exp))
			continue;
		if (c->nspans && c->nspans + n > OTLP_MAX_SPANS)
			break; /* whole in the next request */
		int inflight_before = t->spans_inflight;
		size_t before = c->nspans;
		if (t->enc) { /* compact(): the whole trace, roots included */
			size_t len = 0;
			char *raw = enc_text(t, &len);
			if (raw) {
				if (c->nspans)
					fputc(',', f);
				fwrite(raw, 1, len, f);
				c->nspans += t->enc_n;
			} else { /* as compact()'s own failure: counted, the trace failed */
				x->st.spans_failed += t->enc_n;
				t->failed = true;
				rf_traces_err(x, "span batch: out of memory inflating a trace's spans "
					      "(counted in spans_failed)");
			}
			t->tr->unsent_ended -= t->enc_n;
			if (raw != t->enc)
				free(raw);
			free(t->enc);
			t->enc = NULL;
			t->enc_len = t->enc_n = t->enc_raw = 0;
		} else {
			/* Every other span first, then (if all of them are in) the roots. */
			for (size_t i = 0; i < t->tr->n && c->nspans < OTLP_MAX_SPANS; i++) {
				struct rf_tspan *s = &t->tr->spans[i];
				if (s->end_ns && !s->sent && !is_top(t->tr, s))
					take_span(x, f, &c->nspans, t, s);
			}
			bool others_left = false;
			for (size_t i = 0; i < t->tr->n; i++) {
				struct rf_tspan *s = &t->tr->spans[i];
				if (s->end_ns && !s->sent && !is_top(t->tr, s))
					others_left = true;
			}
			if (!others_left && tops_may_follow(t, inflight_before)) {
				for (size_t i = 0; i < t->tr->n; i++) {
					struct rf_tspan *s = &t->tr->spans[i];
					if (s->end_ns && !s->sent && is_top(t->tr, s))
						take_span(x, f, &c->nspans, t, s);
				}
			}
		}
		if (c->nspans > before) {
			t->flush_held = false; /* one push per pressure call */
			if (c->ntr == cap)
				c->tr = realloc(c->tr, (cap *= 2) * sizeof *c->tr);
			c->tr[c->ntr++] = t;
			t->spans_inflight++;
		}
	}
	bool text_ok = fclose(f) == 0 && text;
	if (!c->nspans) {
		free(text);
		free(c->tr);
		free(c);
		return;
	}
	char *body = text_ok ? rf_otlp_body(text, text_len, false) : NULL;
	char h_exp[96];
	snprintf(h_exp, sizeof h_exp, "x-mlflow-experiment-id: %s", exp);
	const char *hdrs[] = {h_exp, NULL};
	if (x->otlp_url && body) {
		struct otlp_call *e = calloc(1, sizeof *e);
		char *copy = rf_otlp_body(text, text_len, true);
		if (e && copy) {
			e->x = x;
			e->nspans = c->nspans;
			x->export_inflight++;
			if (rf_http_request_ex(x->http, "POST", x->otlp_url, copy, strlen(copy),
					       "application/json", (const char *const *)x->otlp_hdrs,
					       true, RF_HTTP_RETRY_ALL, on_export, e))
				on_export(0, NULL, 0, "request not queued", e);
		} else {
			free(e);
			free(copy);
		}
	}
	free(text);
	x->otlp_inflight++;
	if (!body) { /* its spans are released: counted as a refused batch's */
		on_otlp(0, 0, NULL, "out of memory building the request", c);
		return;
	}
	x->st.otlp_requests++;
	/* Upserts by (trace, span): safe to retry on any failure. */
	if (rf_mlflow_call(x->m, "POST", "/v1/traces", body, strlen(body), "application/json", hdrs,
			   RF_HTTP_RETRY_ALL, on_otlp, c))
		on_otlp(0, 0, NULL, "request not queued", c);
}

/* The experiment of a trace was refused: nowhere to put it.  Its ended
 * spans are counted and freed; a complete trace is dropped. */
static void drop_refused(rf_traces *x, struct xtrace *t)
{
	x->st.spans_failed += t->tr->unsent_ended;
	free(t->enc);
	t->enc = NULL;
	t->enc_len = t->enc_n = t->enc_raw = 0;
	for (size_t i = 0; i < t->tr->n; i++)
		if (t->tr->spans[i].end_ns && !t->tr->spans[i].sent) {
			t->tr->spans[i].sent = true;
			rf_tspan_release(&t->tr->spans[i]);
		}
	t->tr->unsent_ended = 0;
	if (t->complete) {
		x->st.traces_failed++;
		rf_traces_drop(x, t);
	}
}

/* ---- trace info (StartTraceV3) ---- */

struct info_call {
	rf_traces *x;
	struct xtrace *t;
	size_t nass;
	bool final;
	bool alone;       /* nothing else of ours in flight when sent (rf_trace_pace) */
	uint64_t sent_ns;
};

static void on_info(int ok, long status, json_t *resp, const char *msg, void *arg)
{
	(void)resp;
	struct info_call *c = arg;
	rf_traces *x = c->x;
	x->info_inflight--;
	if (ok) {
		rf_trace_pace_answer(&x->pace, (rf_now_ns() - c->sent_ns) / 1000, c->alone,
				     rf_traces_now_ms());
		if (c->final)
			c->t->nass_sent = c->nass;
	} else {
		/* Its spans still go: log_spans makes the trace from them. */
		c->t->failed = true;
		char id[36];
		rf_ttrace_id_str(c->t->tr->id, id);
		rf_traces_err(x, "trace %s: StartTraceV3 HTTP %ld: %.300s", id, status, msg ? msg : "");
	}
	c->t->info_state = INFO_ANSWERED;
	free(c);
}

/* The info as it stands: times over every span (sent ones keep theirs),
 * previews from the root.  State IN_PROGRESS: the root span's batch sets
 * OK/ERROR.  A trace without a root span (a general trace whose root never
 * started) would stay IN_PROGRESS: its final info carries the state. */
static void send_info(rf_traces *x, struct xtrace *t, const char *exp, const char *run)
{
	char id[36], t0[40], dur[40];
	rf_ttrace_id_str(t->tr->id, id);
	int64_t min_start = 0, max_end = 0;
	bool has_top = false;
	struct rf_tspan *root = t->tr->root ? rf_ttrace_span(t->tr, t->tr->root, false) : NULL;
	for (size_t i = 0; i < t->tr->n; i++) {
		struct rf_tspan *s = &t->tr->spans[i];
		if (s->start_ns && (!min_start || s->start_ns < min_start))
			min_start = s->start_ns;
		if (s->end_ns > max_end)
			max_end = s->end_ns;
		if (s->name && is_top(t->tr, s))
			has_top = true;
	}
	rf_rfc3339(min_start, t0);
	int64_t d = max_end > min_start ? max_end - min_start : 0;
	snprintf(dur, sizeof dur, "%lld.%09llds", (long long)(d / 1000000000),
		 (long long)(d % 1000000000));
	json_t *meta = json_deep_copy(t->metadata);
	json_object_set_new(meta, "mlflow.trace_schema.version", json_string("3"));
	if (run[0])
		json_object_set_new(meta, "mlflow.sourceRun", json_string(run));
	json_t *tags = json_deep_copy(t->tags);
	/* Readers ask the tracking store for the spans (none yet: "not
	 * exported yet"), never the artifact store (an error). */
	json_object_set_new(tags, "mlflow.trace.spansLocation", json_string("TRACKING_STORE"));
	json_t *ass = json_array();
	size_t i;
	json_t *a;
	json_array_foreach(t->assessments, i, a)
	{
		json_t *c = json_deep_copy(a);
		json_object_set_new(c, "trace_id", json_string(id));
		if (run[0])
			json_object_set_new(json_object_get(c, "metadata"),
					    "mlflow.assessment.sourceRunId", json_string(run));
		json_array_append_new(ass, c);
	}
	const char *state = "IN_PROGRESS";
	if (t->complete && !has_top)
		state = root && root->status == RF_TSPAN_ERROR ? "ERROR" : "OK";
	json_t *info = json_pack(
		"{s:s,s:{s:s,s:{s:s}},s:s,s:s,s:s,s:o,s:o,s:o}", "trace_id", id, "trace_location",
		"type", "MLFLOW_EXPERIMENT", "mlflow_experiment", "experiment_id", exp,
		"request_time", t0, "execution_duration", dur, "state", state, "trace_metadata", meta,
		"tags", tags, "assessments", ass);
	if (root && !root->sent) {
		char *rq = preview(root->inputs), *rs = preview(root->outputs);
		if (rq)
			json_object_set_new(info, "request_preview", json_string(rq));
		if (rs)
			json_object_set_new(info, "response_preview", json_string(rs));
		free(rq);
		free(rs);
	}
	if (t->info) { /* the producer's (update_current_trace): over the derived ones */
		json_t *keep = json_incref(json_object_get(info, "state"));
		json_object_update(info, t->info);
		/* Not its state while spans are still to come: the root span's
		 * batch sets the final one (an info read OK before its spans
		 * are in is what this order avoids). */
		if (!strcmp(state, "IN_PROGRESS"))
			json_object_set(info, "state", keep);
		json_decref(keep);
	}
	json_t *body = json_pack("{s:{s:o,s:[]}}", "trace", "trace_info", info, "spans");
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	struct info_call *c = calloc(1, sizeof *c);
	c->x = x;
	c->t = t;
	c->nass = json_array_size(t->assessments);
	c->final = t->complete;
	c->alone = !trace_inflight(x);
	c->sent_ns = rf_now_ns();
	t->info_state = INFO_SENDING;
	t->info_final = t->complete;
	x->info_inflight++;
	x->st.info_requests++;
	/* Upsert (and assessments carry their own ids): safe to retry. */
	if (rf_mlflow_call(x->m, "POST", "/api/3.0/mlflow/traces", s, s ? strlen(s) : 0,
			   "application/json", NULL, RF_HTTP_RETRY_ALL, on_info, c))
		on_info(0, 0, NULL, "request not queued", c);
}

/* The trace's next info: the first as soon as it is complete (or has spans
 * to send early); for one sent in parts, the final one once complete. */
static bool info_due(const struct xtrace *t)
{
	if (t->info_state == INFO_SENDING)
		return false;
	if (t->info_state == INFO_NOT_SENT)
		return t->complete || (early_spans(t) && t->tr->unsent_ended);
	return t->complete && !t->info_final;
}

/* ---- the pump ---- */

/* Done: its final info answered and every span answered. */
static bool finished(const struct xtrace *t)
{
	return t->complete && t->info_state == INFO_ANSWERED && t->info_final && !t->spans_inflight &&
	       !t->tr->unsent_ended;
}

void rf_traces_pump(rf_traces *x, bool flush_now)
{
	uint64_t now = rf_traces_now_ms();
	size_t ready = 0, waiting = 0;
	uint64_t ready_bytes = 0; /* complete traces whose spans may go: not spoolable */
	bool ready_eager = false, ready_api = false, ready_ending = false,
	     ready_part = false, infos_coming = false, infos_queued = false;
	uint64_t oldest = 0;
	rf_trace_spool_pump(x, now);
	for (struct xtrace *t = x->list, *n; t; t = n) {
		n = t->next;
		if (!t->complete && now - t->last_ms >= (uint64_t)x->o.timeout_ms)
			rf_traces_complete(x, t, (int64_t)rf_realtime_ns(), "trace timed out before its root ended");
		if (t->tr->capped != t->capped_seen) {
			/* Over RF_TRACE_SPANS_MAX: what it holds is closed
			 * (ERROR) and sent, the rest counted, memory freed. */
			x->st.spans_capped += t->tr->capped - t->capped_seen;
			t->capped_seen = t->tr->capped;
			if (!t->complete)
				rf_traces_err(x, "a trace reached %d spans: closed as ERROR, later spans "
					      "counted in spans_capped", RF_TRACE_SPANS_MAX);
			rf_traces_complete(x, t, (int64_t)rf_realtime_ns(),
					   "ringflow: the trace reached its span limit");
		}
		if (finished(t)) {
			if (t->failed) {
				x->st.traces_failed++;
			} else {
				x->st.traces_done++;
				x->st.assessments += t->nass_sent;
			}
			rf_traces_drop(x, t);
			continue;
		}
		const char *exp = rf_traces_exp_of(x, t);
		if (exp && !exp[0] && !t->spans_inflight && t->info_state != INFO_SENDING) {
			bool gone = t->complete;
			drop_refused(x, t);
			if (gone)
				continue;
		}
		if (t->complete) {
			waiting++;
			if (!oldest || t->done_ms < oldest)
				oldest = t->done_ms;
		}
		compact(x, t);
		size_t k = sendable(t);
		if (k && (t->complete || t->tr->unsent_ended >= TRACE_HOLD_MAX)) {
			ready_eager |= !span_lazy(t);
			ready_api |= !t->inspect_run[0];
			ready_ending |= t->complete && t->run_ending;
			ready_bytes += t->weight;
		} else if (k) {
			ready_part = true;
		}
		ready += k;
		infos_queued |= info_due(t);
		infos_coming |= t->info_state == INFO_SENDING || info_due(t);
	}
	/* Keeping up?  Counted once per episode; the daemon logs it. */
	x->st.waiting = waiting + x->st.spooled;
	x->st.lag_ms = oldest ? now - oldest : 0;
	if (!x->behind && x->st.lag_ms >= RF_TRACE_BEHIND_MS) {
		x->behind = true;
		x->st.behind++;
	} else if (x->behind && x->st.lag_ms < RF_TRACE_BEHIND_MS / 4) {
		x->behind = false;
	}

	int limit = tracking_busy(x) ? 1 : rf_trace_pace_limit(&x->pace);
	/* Span batches first: they finish traces.  A complete trace's spans go
	 * at once when no other info is on its way (their spans would follow
	 * in a request of their own: ~9 ms of server CPU each for nothing),
	 * else with the next full batch or after the hold above.  At a run's
	 * end they go once every info is sent, while the last ones are still
	 * in flight: the server stores those spans beside them (several
	 * workers) instead of after them, and the batch after the last info
	 * carries only its few traces. */
	uint64_t mem_max = x->o.mem_max;
	bool eager = ready_api || ready_part || (mem_max && ready_bytes >= mem_max / 4);
	uint64_t hold = eager ? (uint64_t)x->o.flush_ms : LIVE_SPAN_HOLD_MS;
	if (ready && x->otlp_inflight < OTLP_MAX_INFLIGHT && trace_inflight(x) < limit &&
	    (flush_now || (ready_eager && !infos_coming) || (ready_ending && !infos_queued) ||
	     (mem_max && ready_bytes >= mem_max / 8 * 3) ||
	     ready >= OTLP_MAX_SPANS || now - x->last_flush >= hold)) {
		for (struct xtrace *t = x->list; t; t = t->next) {
			if (!sendable(t))
				continue;
			const char *exp = rf_traces_exp_of(x, t), *run = rf_traces_run_of(x, t);
			if (!exp || !run || !exp[0])
				continue;
			char e[64];
			snprintf(e, sizeof e, "%s", exp);
			send_batch(x, t, e);
			x->last_flush = now;
			break;
		}
	}
	for (struct xtrace *t = x->list; t && trace_inflight(x) < limit; t = t->next) {
		if (!info_due(t))
			continue;
		const char *exp = rf_traces_exp_of(x, t), *run = rf_traces_run_of(x, t);
		if (!exp || !run || !exp[0])
			continue;
		send_info(x, t, exp, run);
	}
	rf_trace_ops_pump(x);
}

bool rf_traces_idle(rf_traces *x)
{
	if (x->st.spooled || x->otlp_inflight || x->info_inflight || !rf_trace_ops_idle(x))
		return false;
	for (struct xtrace *t = x->list; t; t = t->next)
		if (t->complete || (early_spans(t) && t->tr->unsent_ended))
			return false;
	return true;
}

bool rf_traces_empty(rf_traces *x)
{
	return x->ntraces == 0 && !x->st.spooled && !x->otlp_inflight && !x->info_inflight && rf_trace_ops_idle(x);
}

void rf_traces_pressure(rf_traces *x)
{
	for (struct xtrace *t = x->list; t; t = t->next)
		t->flush_held = t->tr->unsent_ended > 0;
}

uint64_t rf_traces_mem(rf_traces *x)
{
	return rf_trace_spool_mem(x);
}

void rf_traces_stats(rf_traces *x, struct rf_traces_stats *st)
{
	*st = x->st;
	st->held = x->ntraces + x->st.spooled; /* on disk too */
	st->spans_unsent = 0;
	for (struct xtrace *t = x->list; t; t = t->next)
		st->spans_unsent += t->tr->unsent_ended;
	st->mem_bytes = rf_trace_spool_mem(x);
	st->spool_bytes = rf_trace_spool_bytes(x);
}
