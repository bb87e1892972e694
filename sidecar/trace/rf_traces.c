/*
 * rf_traces.c - the trace uploader's lifecycle and its records: the general
 * tracing records 24-27 here, Inspect's records (rf_trace_inspect.c) and
 * assessments/tags (rf_trace_ops.c) there; the traces they build are held
 * in rf_trace_table.c and sent by rf_trace_upload.c.
 *
 * Flow: records build spans in an xtrace; a trace is complete when its root
 * ends (or its sample/task/run ends, or it idles past the timeout: open
 * spans are then closed with ERROR, never dropped).  rf_traces_pump() sends
 * ended spans in OTLP/JSON batches per (experiment, run), then one
 * StartTraceV3 per complete trace, and frees it when that is answered.
 * Both calls upsert, so a retry or a replayed journal never duplicates.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "rf_decode.h"
#include "rf_err.h"
#include "rf_loop.h"
#include "rf_trace_inspect.h"
#include "rf_trace_ops.h"
#include "rf_trace_table.h"
#include "rf_traces.h"
#include "ringflow.h"


#define now_ms rf_traces_now_ms

static char **parse_headers(const char *spec)
{
	size_t n = 1;
	for (const char *p = spec; p && *p; p++)
		n += *p == ',';
	char **out = calloc(n + 1, sizeof *out);
	if (!out || !spec)
		return out;
	char *dup = strdup(spec), *save = NULL;
	size_t k = 0;
	for (char *tok = strtok_r(dup, ",", &save); tok && k < n; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq)
			continue;
		*eq = 0;
		char *key = tok, *val = eq + 1, *w = val;
		while (*key == ' ')
			key++;
		for (char *r = val; *r; r++) {
			unsigned v;
			if (*r == '%' && sscanf(r + 1, "%2x", &v) == 1) {
				*w++ = (char)v;
				r += 2;
			} else {
				*w++ = *r;
			}
		}
		*w = 0;
		size_t len = strlen(key) + strlen(val) + 3;
		out[k] = malloc(len);
		if (out[k])
			snprintf(out[k++], len, "%s: %s", key, val);
	}
	free(dup);
	return out;
}

/* rf_track's end hold: a trace linked to this run is held (open, or not yet
 * answered).  Traces are dropped once their info is answered.  Asked again
 * while the end waits, so each such trace (one back from the spool too) is
 * marked: nothing more will join its span batch, which then goes without
 * the live run's delay (rf_traces_pump). */
static bool run_busy(void *arg, const char *run_key)
{
	rf_traces *x = arg;
	bool busy = false;
	for (struct xtrace *t = x->list; t; t = t->next)
		if (!strcmp(t->run_key, run_key))
			busy = t->run_ending = true;
	return busy || rf_trace_spool_holds(x, run_key);
}

int rf_traces_new(rf_traces **out, rf_mlflow *m, rf_http *http, rf_track *track,
		  const struct rf_traces_opts *o)
{
	rf_traces *x = calloc(1, sizeof *x);
	if (!x)
		return rf_err_set(ENOMEM, "trace uploader: out of memory");
	x->m = m;
	x->http = http;
	rf_trace_pace_init(&x->pace);
	x->track = track;
	x->o = *o;
	if (x->o.flush_ms <= 0)
		x->o.flush_ms = 1000;
	if (x->o.timeout_ms <= 0)
		x->o.timeout_ms = 600000;
	x->traced_runs = json_object();
	if (o->otlp_endpoint && *o->otlp_endpoint) {
		x->otlp_url = strdup(o->otlp_endpoint);
		x->otlp_hdrs = parse_headers(o->otlp_headers);
	}
	x->o.otlp_endpoint = x->o.otlp_headers = NULL; /* not kept: the env may change */
	if (!x->traced_runs || (o->otlp_endpoint && *o->otlp_endpoint && (!x->otlp_url || !x->otlp_hdrs))) {
		x->track = NULL;
		rf_traces_free(x);
		return rf_err_set(ENOMEM, "trace uploader: out of memory");
	}
	if (track)
		rf_track_set_end_hold(track, run_busy, x);
	*out = x;
	return 0;
}

void rf_traces_free(rf_traces *x)
{
	if (!x)
		return;
	if (x->track)
		rf_track_set_end_hold(x->track, NULL, NULL);
	for (size_t i = 0; x->otlp_hdrs && x->otlp_hdrs[i]; i++)
		free(x->otlp_hdrs[i]);
	free(x->otlp_hdrs);
	free(x->otlp_url);
	rf_trace_table_free(x);
	rf_trace_ops_free(x);
	json_decref(x->traced_runs);
	free(x);
}

/* ---- general tracing records (24-27) ---- */

static bool get_id(const msgpack_object *r, uint8_t id[16])
{
	const msgpack_object *o = rf_obj_get(r, "trace_id");
	if (!o || o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != 16)
		return false;
	memcpy(id, o->via.bin.ptr, 16);
	return true;
}

static uint64_t get_u64(const msgpack_object *r, const char *k)
{
	const msgpack_object *o = rf_obj_get(r, k);
	return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

static int64_t get_i64(const msgpack_object *r, const char *k)
{
	int64_t v = 0;
	return rf_obj_int(rf_obj_get(r, k), &v) ? v : 0;
}

/* A time in epoch nanoseconds from a record: 0 (absent) unless positive, so
 * that durations and minima never overflow. */
static int64_t get_ns(const msgpack_object *r, const char *k)
{
	int64_t v = get_i64(r, k);
	return v > 0 ? v : 0;
}

static void merge_obj(json_t *dst, const msgpack_object *src, bool strings)
{
	if (!src || src->type != MSGPACK_OBJECT_MAP)
		return;
	json_t *j = rf_obj_to_json(src);
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v)
	{
		if (strings && !json_is_string(v)) {
			char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			json_object_set_new(dst, k, json_string(s ? s : ""));
			free(s);
		} else {
			json_object_set(dst, k, v);
		}
	}
	json_decref(j);
}

static char *dup_text(const msgpack_object *r, const char *k)
{
	const char *s;
	size_t n;
	bool trunc;
	return rf_obj_text(rf_obj_get(r, k), &s, &n, &trunc) ? strndup(s, n) : NULL;
}

/* Record 27's "experiment_id" and "info": only the TraceInfo fields a
 * producer may set, as strings; anything else is refused (counted). */
static void update_info(rf_traces *x, struct xtrace *t, const msgpack_object *r)
{
	char *eid = dup_text(r, "experiment_id");
	if (eid) {
		size_t n = strlen(eid);
		bool ok = n > 0 && n < sizeof t->exp_id;
		for (size_t i = 0; ok && i < n; i++)
			ok = (eid[i] >= '0' && eid[i] <= '9') || (eid[i] >= 'a' && eid[i] <= 'z') ||
			     (eid[i] >= 'A' && eid[i] <= 'Z') || eid[i] == '-' || eid[i] == '_';
		if (ok)
			memcpy(t->exp_id, eid, n + 1);
		else
			rf_traces_err(x, "trace experiment_id \"%.80s\" refused", eid);
		free(eid);
	}
	const msgpack_object *in = rf_obj_get(r, "info");
	if (!in || in->type != MSGPACK_OBJECT_MAP)
		return;
	static const char *const keys[] = {"client_request_id", "request_preview",
					   "response_preview", "state", NULL};
	for (int i = 0; keys[i]; i++) {
		char *v = dup_text(in, keys[i]);
		if (!v)
			continue;
		if (!strcmp(keys[i], "state") && strcmp(v, "OK") && strcmp(v, "ERROR")) {
			rf_traces_err(x, "trace state \"%.40s\" refused (OK or ERROR)", v);
		} else {
			if (!t->info)
				t->info = json_object();
			json_object_set_new(t->info, keys[i], json_string(v));
		}
		free(v);
	}
}

/* mlflow.spanLogLevel as MLflow's client sets it when a span ends: ERROR
 * (40) for a span with an exception event (a higher level is kept), else
 * the producer's, else INFO (20) for model, tool, retriever, agent and
 * embedding spans and DEBUG (10) for the rest. */
static void log_level(struct rf_tspan *s)
{
	static const char *const info[] = {"LLM", "CHAT_MODEL", "TOOL", "RETRIEVER",
					   "AGENT", "EMBEDDING", NULL};
	json_t *lv = json_object_get(s->attrs, "mlflow.spanLogLevel");
	bool exc = false;
	size_t i;
	json_t *e;
	json_array_foreach(s->events, i, e)
	{
		const char *n = json_string_value(json_object_get(e, "name"));
		exc |= n && !strcmp(n, "exception");
	}
	if (exc && !(json_is_integer(lv) && json_integer_value(lv) >= 40)) {
		rf_tspan_attr(s, "mlflow.spanLogLevel", json_integer(40));
	} else if (!lv) {
		int level = 10;
		for (int k = 0; info[k] && s->type; k++)
			if (!strcmp(s->type, info[k]))
				level = 20;
		rf_tspan_attr(s, "mlflow.spanLogLevel", json_integer(level));
	}
}

static void general(rf_traces *x, int type, const msgpack_object *r)
{
	uint8_t id[16];
	if (!get_id(r, id)) {
		rf_traces_err(x, "trace record without a 16-byte trace_id skipped");
		x->st.late++; /* counted with the records that could not be placed */
		return;
	}
	struct xtrace *t = rf_traces_get(x, id, type == RF_EV_TRACE_SPAN_START ||
						       type == RF_EV_TRACE_UPDATE);
	if (!t) {
		if (type != RF_EV_TRACE_SPAN_START && type != RF_EV_TRACE_UPDATE)
			x->st.late++;
		return;
	}
	if (type == RF_EV_TRACE_UPDATE) {
		merge_obj(t->tags, rf_obj_get(r, "tags"), true);
		merge_obj(t->metadata, rf_obj_get(r, "metadata"), true);
		update_info(x, t, r);
		return;
	}
	uint64_t sid = get_u64(r, "span_id");
	if (!sid)
		return;
	uint64_t capped = t->tr->capped;
	struct rf_tspan *s = rf_ttrace_span(t->tr, sid, type == RF_EV_TRACE_SPAN_START);
	if (!s || (s->sent && type != RF_EV_TRACE_SPAN_START)) {
		/* A span refused at its start (spans_capped): its later records
		 * are the same loss, not counted again. */
		if (t->tr->capped == capped && !(!s && t->tr->capped))
			x->st.late++;
		return;
	}
	if (type == RF_EV_TRACE_SPAN_START) {
		if (!s->name)
			x->st.spans++;
		s->parent = get_u64(r, "parent_id");
		char *name = dup_text(r, "name"), *ty = dup_text(r, "span_type");
		rf_tspan_set_name(s, name ? name : "(unnamed)", ty ? ty : "UNKNOWN");
		free(name);
		free(ty);
		s->start_ns = get_ns(r, "start_ns");
		const msgpack_object *in = rf_obj_get(r, "inputs");
		if (in && in->type != MSGPACK_OBJECT_NIL) {
			rf_tspan_inputs(s, rf_obj_to_json(in));
		}
		merge_obj(s->attrs, rf_obj_get(r, "attributes"), false);
		if (!s->parent) {
			t->tr->root = sid;
			char *exp = dup_text(r, "experiment");
			if (exp)
				snprintf(t->exp_name, sizeof t->exp_name, "%s", exp);
			free(exp);
			merge_obj(t->tags, rf_obj_get(r, "tags"), true);
			merge_obj(t->metadata, rf_obj_get(r, "metadata"), true);
			json_object_set_new(t->tags, "mlflow.traceName", json_string(s->name));
		}
	} else if (type == RF_EV_TRACE_SPAN_EVENT) {
		char *name = dup_text(r, "name");
		json_t *a = json_object();
		merge_obj(a, rf_obj_get(r, "attributes"), false);
		rf_tspan_event(s, name ? name : "event", get_ns(r, "time_ns"), a);
		free(name);
	} else { /* RF_EV_TRACE_SPAN_END */
		/* Inputs set after the start (span.set_inputs) come with the end. */
		const msgpack_object *in = rf_obj_get(r, "inputs");
		if (in && in->type != MSGPACK_OBJECT_NIL) {
			rf_tspan_inputs(s, rf_obj_to_json(in));
		}
		const msgpack_object *out = rf_obj_get(r, "outputs");
		if (out && out->type != MSGPACK_OBJECT_NIL) {
			rf_tspan_outputs(s, rf_obj_to_json(out));
		}
		merge_obj(s->attrs, rf_obj_get(r, "attributes"), false);
		char *st = dup_text(r, "status"), *msg = dup_text(r, "status_message");
		s->status = !st || !strcasecmp(st, "OK") ? RF_TSPAN_OK
			    : !strcasecmp(st, "UNSET")   ? RF_TSPAN_UNSET
							 : RF_TSPAN_ERROR;
		if (st && (!strcasecmp(st, "CANCELLED") || !strcasecmp(st, "TIMEOUT")))
			/* OTLP and MLflow know OK/ERROR/UNSET only: keep the detail. */
			rf_tspan_attr(s, "ringflow.status", json_string(st));
		if (msg) {
			free(s->status_msg);
			s->status_msg = msg;
		}
		free(st);
		log_level(s);
		rf_tspan_end(t->tr, s, get_ns(r, "end_ns"));
		if (!s->parent)
			rf_traces_complete(x, t, s->end_ns, "span not ended before its trace");
	}
}

void rf_traces_record(rf_traces *x, int type, const msgpack_object *root)
{
	/* A spill file comes in as one long batch, with no pump between its
	 * records: open traces are weighed and complete ones over the budget
	 * go to disk here. */
	rf_trace_spool_record(x);
	if (type >= RF_EV_TRACE_SPAN_START && type <= RF_EV_TRACE_UPDATE)
		general(x, type, root);
	else if (type == RF_EV_TRACE_ASSESSMENT || type == RF_EV_TRACE_TAG)
		rf_trace_ops_record(x, type, root);
	else
		rf_trace_inspect(x, type, root);
}
