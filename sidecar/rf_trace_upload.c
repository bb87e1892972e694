/*
 * rf_trace_upload.c - send traces: OTLP/JSON span batches to MLflow's
 * /v1/traces (and a copy to an OpenTelemetry collector when configured),
 * then one StartTraceV3 per complete trace with its info and assessments.
 *
 * Requests: a batch carries up to OTLP_MAX_SPANS spans of every trace ready
 * for the same (experiment, run) pair, so a 1,000-sample eval sends a few
 * dozen span batches; the info is one request per trace because MLflow has
 * no batch form of it (nor of assessments), see docs/DESIGN.md "Traces".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rf_traces_int.h"

#define OTLP_MAX_SPANS 2000 /* spans per /v1/traces request */
/* Few trace requests in flight: they are CPU-heavy for the server, and a
 * run's log-batch or end status queued behind many of them would wait as
 * long (measured: runs visible 39 s after a 1,000-sample eval with 16). */
#define OTLP_MAX_INFLIGHT 2
#define INFO_MAX_INFLIGHT 4
#define PREVIEW_MAX 1000    /* MLflow's request/response preview column */

/* A trace's ended spans go out when it is complete, as they end in run
 * mode, and in any case once TRACE_HOLD_MAX of them wait: a sample with
 * thousands of events is sent in parts (spans upsert), so what the sidecar
 * holds per trace stays bounded. */
#define TRACE_HOLD_MAX 1000

static bool ready_spans(const struct xtrace *t)
{
	return (t->complete || t->progressive || t->flush_held ||
		t->tr->unsent_ended >= TRACE_HOLD_MAX) &&
	       t->tr->unsent_ended > 0;
}

/* JSON text of v cut to PREVIEW_MAX bytes at a UTF-8 boundary. */
static char *preview(json_t *v)
{
	if (!v)
		return NULL;
	char *s = json_is_string(v) ? strdup(json_string_value(v))
				    : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s && strlen(s) > PREVIEW_MAX) {
		size_t n = PREVIEW_MAX;
		while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
		s[n] = 0;
	}
	return s;
}

/* ---- span batches ---- */

struct otlp_call {
	rf_traces *x;
	size_t nspans, ntr;
	struct xtrace **tr;
	bool export_copy;
};

static void on_otlp(int ok, long status, json_t *resp, const char *msg, void *arg)
{
	(void)resp;
	struct otlp_call *c = arg;
	rf_traces *x = c->x;
	x->otlp_inflight--;
	for (size_t i = 0; i < c->ntr; i++)
		c->tr[i]->spans_inflight--;
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
	if (!(status >= 200 && status < 300)) {
		c->x->st.export_failed += c->nspans;
		rf_traces_err(c->x, "OTLP export: %zu spans failed: HTTP %ld %s", c->nspans, status,
			      err ? err : "");
	} else {
		c->x->st.export_spans += c->nspans;
	}
	free(c);
}

static void take_span(struct xtrace *t, struct rf_xspan *s, json_t *spans)
{
	json_array_append_new(spans, rf_otlp_span(t->tr, s));
	if (!t->min_start || (s->start_ns && s->start_ns < t->min_start))
		t->min_start = s->start_ns;
	if (s->end_ns > t->max_end)
		t->max_end = s->end_ns;
	if (s->id == t->tr->root) {
		free(t->req_preview);
		free(t->resp_preview);
		t->req_preview = preview(s->inputs);
		t->resp_preview = preview(s->outputs);
		t->root_status = s->status;
	}
	s->sent = true;
	t->tr->unsent_ended--;
	rf_span_release(s);
}

/* One request: every ready span of traces going to (exp, run), from `first`
 * on, up to OTLP_MAX_SPANS. */
static void send_batch(rf_traces *x, struct xtrace *first, const char *exp, const char *run)
{
	struct otlp_call *c = calloc(1, sizeof *c);
	json_t *spans = json_array();
	size_t cap = 16;
	c->x = x;
	c->tr = malloc(cap * sizeof *c->tr);
	for (struct xtrace *t = first; t && c->nspans < OTLP_MAX_SPANS; t = t->next) {
		if (!ready_spans(t))
			continue;
		const char *e = rf_traces_exp_of(x, t), *r = rf_traces_run_of(x, t);
		if (!e || !r || strcmp(e, exp) || strcmp(r, run))
			continue;
		size_t before = c->nspans;
		for (size_t i = 0; i < t->tr->n && c->nspans < OTLP_MAX_SPANS; i++) {
			struct rf_xspan *s = &t->tr->spans[i];
			if (s->end_ns && !s->sent) {
				take_span(t, s, spans);
				c->nspans++;
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
	json_t *req = rf_otlp_request(spans);
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	size_t len = body ? strlen(body) : 0;
	char h_exp[96], h_run[96];
	snprintf(h_exp, sizeof h_exp, "x-mlflow-experiment-id: %s", exp);
	snprintf(h_run, sizeof h_run, "x-mlflow-run-id: %s", run);
	const char *hdrs[] = {h_exp, run[0] ? h_run : NULL, NULL};
	if (x->otlp_url && body) {
		struct otlp_call *e = calloc(1, sizeof *e);
		char *copy = strdup(body);
		if (e && copy) {
			e->x = x;
			e->nspans = c->nspans;
			rf_http_request_ex(x->http, "POST", x->otlp_url, copy, len, "application/json",
					   (const char *const *)x->otlp_hdrs, true, RF_HTTP_RETRY_ALL,
					   on_export, e);
		} else {
			free(e);
			free(copy);
		}
	}
	x->otlp_inflight++;
	x->st.otlp_requests++;
	/* Upserts by (trace, span): safe to retry on any failure. */
	if (rf_mlflow_call(x->m, "POST", "/v1/traces", body, len, "application/json", hdrs,
			   RF_HTTP_RETRY_ALL, on_otlp, c))
		on_otlp(0, 0, NULL, "request not queued", c);
}

static void send_spans(rf_traces *x)
{
	for (struct xtrace *t = x->list, *n; t && x->otlp_inflight < OTLP_MAX_INFLIGHT; t = n) {
		n = t->next;
		if (!ready_spans(t))
			continue;
		const char *exp = rf_traces_exp_of(x, t), *run = rf_traces_run_of(x, t);
		if (!exp || !run)
			continue; /* experiment or run not known yet */
		if (!exp[0]) { /* its experiment was refused: nowhere to put it */
			x->st.spans_failed += t->tr->unsent_ended;
			for (size_t i = 0; i < t->tr->n; i++)
				if (t->tr->spans[i].end_ns && !t->tr->spans[i].sent) {
					t->tr->spans[i].sent = true;
					rf_span_release(&t->tr->spans[i]);
				}
			t->tr->unsent_ended = 0;
			continue; /* a complete one is dropped by send_infos */
		}
		char e[64], r[64];
		snprintf(e, sizeof e, "%s", exp);
		snprintf(r, sizeof r, "%s", run);
		send_batch(x, t, e, r);
		n = x->list; /* the batch may have taken later traces too: rescan */
	}
}

/* ---- trace info (StartTraceV3) ---- */

struct info_call {
	rf_traces *x;
	struct xtrace *t;
	size_t nass;
};

static void on_info(int ok, long status, json_t *resp, const char *msg, void *arg)
{
	(void)resp;
	struct info_call *c = arg;
	rf_traces *x = c->x;
	x->info_inflight--;
	if (ok) {
		x->st.traces_done++;
		x->st.assessments += c->nass;
	} else {
		x->st.traces_failed++;
		char id[36];
		rf_trace_id_str(c->t->tr->id, id);
		rf_traces_err(x, "trace %s: StartTraceV3 HTTP %ld: %.300s", id, status, msg ? msg : "");
	}
	c->t->info_state = 2;
	rf_traces_drop(x, c->t);
	free(c);
}

static void send_info(rf_traces *x, struct xtrace *t, const char *exp, const char *run)
{
	char id[36], t0[40], dur[40];
	rf_trace_id_str(t->tr->id, id);
	rf_rfc3339(t->min_start, t0);
	int64_t d = t->max_end > t->min_start ? t->max_end - t->min_start : 0;
	snprintf(dur, sizeof dur, "%lld.%09llds", (long long)(d / 1000000000),
		 (long long)(d % 1000000000));
	json_t *meta = json_deep_copy(t->metadata);
	json_object_set_new(meta, "mlflow.trace_schema.version", json_string("3"));
	if (run[0])
		json_object_set_new(meta, "mlflow.sourceRun", json_string(run));
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
	json_t *info = json_pack(
		"{s:s,s:{s:s,s:{s:s}},s:s,s:s,s:s,s:o,s:O,s:o}", "trace_id", id, "trace_location",
		"type", "MLFLOW_EXPERIMENT", "mlflow_experiment", "experiment_id", exp,
		"request_time", t0, "execution_duration", dur, "state",
		t->root_status == RF_SPAN_ERROR ? "ERROR" : "OK", "trace_metadata", meta, "tags",
		t->tags, "assessments", ass);
	if (t->req_preview)
		json_object_set_new(info, "request_preview", json_string(t->req_preview));
	if (t->resp_preview)
		json_object_set_new(info, "response_preview", json_string(t->resp_preview));
	json_t *body = json_pack("{s:{s:o,s:[]}}", "trace", "trace_info", info, "spans");
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	struct info_call *c = calloc(1, sizeof *c);
	c->x = x;
	c->t = t;
	c->nass = json_array_size(t->assessments);
	t->info_state = 1;
	x->info_inflight++;
	x->st.info_requests++;
	/* Upsert (and assessments carry their own ids): safe to retry. */
	if (rf_mlflow_call(x->m, "POST", "/api/3.0/mlflow/traces", s, s ? strlen(s) : 0,
			   "application/json", NULL, RF_HTTP_RETRY_ALL, on_info, c))
		on_info(0, 0, NULL, "request not queued", c);
}

static void send_infos(rf_traces *x)
{
	for (struct xtrace *t = x->list, *n; t && x->info_inflight < INFO_MAX_INFLIGHT; t = n) {
		n = t->next;
		if (!t->complete || t->info_state || t->spans_inflight || t->tr->unsent_ended)
			continue;
		const char *exp = rf_traces_exp_of(x, t), *run = rf_traces_run_of(x, t);
		if (exp && !exp[0]) { /* experiment refused (counted in send_spans) */
			x->st.traces_failed++;
			rf_traces_drop(x, t);
			continue;
		}
		if (!exp || !run)
			continue;
		send_info(x, t, exp, run);
	}
}

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void rf_traces_pump(rf_traces *x, bool flush_now)
{
	uint64_t now = rf_traces_now_ms();
	size_t ready = 0;
	for (struct xtrace *t = x->list; t; t = t->next) {
		if (!t->complete && now - t->last_ms >= (uint64_t)x->o.timeout_ms)
			rf_traces_complete(x, t, realtime_ns(), "trace timed out before its root ended");
		if (t->tr->capped != t->capped_seen) {
			/* Over RF_TRACE_SPANS_MAX: what it holds is closed
			 * (ERROR) and sent, the rest counted, memory freed. */
			x->st.spans_capped += t->tr->capped - t->capped_seen;
			t->capped_seen = t->tr->capped;
			if (!t->complete)
				rf_traces_err(x, "a trace reached %d spans: closed as ERROR, later spans "
					      "counted in spans_capped", RF_TRACE_SPANS_MAX);
			rf_traces_complete(x, t, realtime_ns(),
					   "ringflow: the trace reached its span limit");
		}
		if (ready_spans(t))
			ready += t->tr->unsent_ended;
	}
	if (ready && (flush_now || ready >= OTLP_MAX_SPANS ||
		      now - x->last_flush >= (uint64_t)x->o.flush_ms)) {
		send_spans(x);
		x->last_flush = now;
	}
	send_infos(x);
}

bool rf_traces_idle(rf_traces *x)
{
	if (x->otlp_inflight || x->info_inflight)
		return false;
	for (struct xtrace *t = x->list; t; t = t->next)
		if (ready_spans(t) || t->complete)
			return false;
	return true;
}

bool rf_traces_empty(rf_traces *x)
{
	return x->ntraces == 0 && !x->otlp_inflight && !x->info_inflight;
}

void rf_traces_pressure(rf_traces *x)
{
	for (struct xtrace *t = x->list; t; t = t->next)
		t->flush_held = t->tr->unsent_ended > 0;
}

void rf_traces_stats(rf_traces *x, struct rf_traces_stats *st)
{
	*st = x->st;
	st->held = x->ntraces;
	st->spans_unsent = 0;
	for (struct xtrace *t = x->list; t; t = t->next)
		st->spans_unsent += t->tr->unsent_ended;
}
