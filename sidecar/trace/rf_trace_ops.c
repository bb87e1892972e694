/*
 * rf_trace_ops.c - assessments and tags on a trace (records 28, 29:
 * MLflow's log_feedback / log_expectation / log_assessment, set_trace_tag
 * and delete_trace_tag, from ringflow.tracing or rf_trace_log_feedback()).
 *
 * A trace this sidecar still holds, whose info has not been sent, takes the
 * assessment or tag into its StartTraceV3 (no extra request).  Otherwise (the
 * trace was uploaded already, or is not ours) the operation is queued and
 * sent as its own call once the trace is no longer held: CreateAssessment,
 * SetTraceTag or DeleteTraceTag.  Operations on one trace go in record
 * order, one at a time.  A missing trace (404; for a tag, the server's
 * foreign-key refusal: its info may still be on its way from another
 * producer) is retried a few times a second apart; every refusal is counted (traces_failed) with its message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "rf_clock.h"
#include "rf_decode.h"
#include "rf_trace_ops.h"
#include "ringflow.h"

#define OPS_MAX 10000        /* queued operations (more: refused, counted) */
#define OPS_MAX_INFLIGHT 4
#define OPS_SCAN 256         /* queue entries looked at per pump */
#define OP_404_TRIES 5       /* a trace not (yet) in MLflow: tries, 1 s apart */

enum { OP_ASSESS = 1, OP_TAG_SET, OP_TAG_DEL };

struct xop {
	struct xop *next;
	int kind;
	bool inflight;
	int tries;
	uint64_t retry_at;
	char trace[160];   /* MLflow trace id ("tr-<32 hex>" or the caller's) */
	json_t *body;      /* the request body */
};

/* "tr-<32 lowercase hex>" -> 16 bytes. */
static bool parse_tr(const char *s, uint8_t bin[16])
{
	static const char hx[] = "0123456789abcdef";
	if (strlen(s) != 35 || strncmp(s, "tr-", 3))
		return false;
	for (int i = 0; i < 16; i++) {
		const char *a = memchr(hx, s[3 + 2 * i], 16), *b = memchr(hx, s[4 + 2 * i], 16);
		if (!a || !b || !s[3 + 2 * i] || !s[4 + 2 * i])
			return false;
		bin[i] = (uint8_t)((a - hx) << 4 | (b - hx));
	}
	return true;
}

/* The trace id of a record: 16 bytes (ringflow's, bin) or MLflow's text
 * form.  has_bin: the 16 bytes are known (a trace this sidecar may hold). */
static bool trace_of(const msgpack_object *r, char out[160], uint8_t bin[16], bool *has_bin)
{
	const msgpack_object *o = rf_obj_get(r, "trace_id");
	*has_bin = false;
	if (o && o->type == MSGPACK_OBJECT_BIN && o->via.bin.size == 16) {
		memcpy(bin, o->via.bin.ptr, 16);
		rf_ttrace_id_str(bin, out);
		*has_bin = true;
		return true;
	}
	const char *s;
	size_t n;
	if (!rf_obj_str(o, &s, &n) || n == 0 || n >= 160)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false; /* ids are printable ASCII; anything else is refused */
	memcpy(out, s, n);
	out[n] = 0;
	*has_bin = parse_tr(out, bin);
	return true;
}

static json_t *str_of(const msgpack_object *r, const char *k)
{
	const char *s;
	size_t n;
	bool trunc;
	return rf_obj_text(rf_obj_get(r, k), &s, &n, &trunc) ? json_stringn(s, n) : NULL;
}

/* A span id: uint64 (ringflow's) or 16 hex digits. */
static json_t *span_of(const msgpack_object *r)
{
	const msgpack_object *o = rf_obj_get(r, "span_id");
	char hx[17];
	if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64) {
		snprintf(hx, sizeof hx, "%016llx", (unsigned long long)o->via.u64);
		return json_string(hx);
	}
	json_t *s = str_of(r, "span_id");
	if (s && (!json_string_length(s) || json_string_length(s) > 32)) {
		json_decref(s);
		s = NULL;
	}
	return s;
}

/* MLflow's Assessment (proto JSON) from record 28; NULL if it has no name. */
static json_t *assessment(const msgpack_object *r, const char *trace)
{
	json_t *name = str_of(r, "name"), *kind = str_of(r, "kind");
	bool expect = kind && !strcmp(json_string_value(kind), "expectation");
	json_decref(kind);
	if (!name || !json_string_length(name)) {
		json_decref(name);
		return NULL;
	}
	json_t *a = json_object();
	json_object_set_new(a, "assessment_name", name);
	json_object_set_new(a, "trace_id", json_string(trace));
	json_t *id = str_of(r, "assessment_id");
	if (id && json_string_length(id) && json_string_length(id) < 64)
		json_object_set_new(a, "assessment_id", id);
	else
		json_decref(id);
	json_t *st = str_of(r, "source_type"), *sid = str_of(r, "source_id");
	json_object_set_new(a, "source",
			    json_pack("{s:o,s:o}", "source_type",
				      st ? st : json_string(expect ? "HUMAN" : "CODE"), "source_id",
				      sid ? sid : json_string("default")));
	int64_t ns = 0;
	rf_obj_int(rf_obj_get(r, "time_ns"), &ns);
	if (ns <= 0)
		ns = (int64_t)rf_realtime_ns();
	char t0[40];
	rf_rfc3339(ns, t0);
	json_object_set_new(a, "create_time", json_string(t0));
	json_object_set_new(a, "last_update_time", json_string(t0));
	const msgpack_object *v = rf_obj_get(r, "value");
	json_t *val = v ? rf_obj_to_json(v) : json_null();
	if (expect) {
		/* As MLflow's ExpectationValue: lists and maps as JSON text. */
		if (json_is_array(val) || json_is_object(val)) {
			char *txt = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
			json_object_set_new(a, "expectation",
					    json_pack("{s:{s:s,s:s}}", "serialized_value",
						      "serialization_format", "JSON_FORMAT", "value",
						      txt ? txt : "null"));
			free(txt);
			json_decref(val);
		} else {
			json_object_set_new(a, "expectation", json_pack("{s:o}", "value", val));
		}
	} else {
		json_t *fb = json_pack("{s:o}", "value", val);
		const msgpack_object *e = rf_obj_get(r, "error");
		if (e && e->type == MSGPACK_OBJECT_MAP) {
			json_t *err = json_object(), *c = str_of(e, "error_code"),
			       *m = str_of(e, "error_message"), *s = str_of(e, "stack_trace");
			json_object_set_new(err, "error_code", c ? c : json_string("ASSESSMENT_ERROR"));
			if (m)
				json_object_set_new(err, "error_message", m);
			if (s)
				json_object_set_new(err, "stack_trace", s);
			json_object_set_new(fb, "error", err);
		}
		json_object_set_new(a, "feedback", fb);
	}
	json_t *why = str_of(r, "rationale");
	if (why)
		json_object_set_new(a, "rationale", why);
	json_t *sp = span_of(r);
	if (sp)
		json_object_set_new(a, "span_id", sp);
	const msgpack_object *md = rf_obj_get(r, "metadata");
	if (md && md->type == MSGPACK_OBJECT_MAP) {
		json_t *j = rf_obj_to_json(md), *out = json_object(), *x;
		const char *k;
		json_object_foreach(j, k, x)
		{
			if (json_is_string(x)) {
				json_object_set(out, k, x);
			} else {
				char *txt = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
				json_object_set_new(out, k, json_string(txt ? txt : ""));
				free(txt);
			}
		}
		json_decref(j);
		json_object_set_new(a, "metadata", out);
	}
	return a;
}

static void queue(rf_traces *x, int kind, const char *trace, json_t *body)
{
	if (x->nops >= OPS_MAX) {
		x->st.traces_failed++;
		rf_traces_err(x, "trace %s: more than %d assessment/tag calls queued: one dropped",
			      trace, OPS_MAX);
		json_decref(body);
		return;
	}
	struct xop *o = calloc(1, sizeof *o);
	if (!o) {
		x->st.traces_failed++;
		json_decref(body);
		return;
	}
	o->kind = kind;
	snprintf(o->trace, sizeof o->trace, "%s", trace);
	o->body = body;
	if (x->ops_tail)
		x->ops_tail->next = o;
	else
		x->ops = o;
	x->ops_tail = o;
	x->nops++;
}

void rf_trace_ops_record(rf_traces *x, int type, const msgpack_object *r)
{
	char trace[160];
	uint8_t bin[16];
	bool has_bin;
	if (!trace_of(r, trace, bin, &has_bin)) {
		rf_traces_err(x, "trace %s record without a valid trace_id skipped",
			      type == RF_EV_TRACE_ASSESSMENT ? "assessment" : "tag");
		x->st.late++; /* counted with the records that could not be placed */
		return;
	}
	/* A trace held here whose info is not sent yet takes it in. */
	struct xtrace *t = has_bin ? rf_traces_get(x, bin, false) : NULL;
	if (t && t->info_state != INFO_NOT_SENT)
		t = NULL; /* info in flight: a call of its own once it is answered */
	if (type == RF_EV_TRACE_ASSESSMENT) {
		json_t *a = assessment(r, trace);
		if (!a) {
			rf_traces_err(x, "trace %s: assessment without a name skipped", trace);
			x->st.late++;
			return;
		}
		if (!t) {
			queue(x, OP_ASSESS, trace, json_pack("{s:o}", "assessment", a));
			return;
		}
		/* The same id again (a replayed journal) replaces, never duplicates. */
		const char *aid = json_string_value(json_object_get(a, "assessment_id"));
		size_t i;
		json_t *old;
		json_array_foreach(t->assessments, i, old)
		{
			const char *oid = json_string_value(json_object_get(old, "assessment_id"));
			if (aid && oid && !strcmp(aid, oid)) {
				json_array_remove(t->assessments, i);
				break;
			}
		}
		json_array_append_new(t->assessments, a);
		return;
	}
	json_t *key = str_of(r, "key"), *val = str_of(r, "value");
	if (!key || !json_string_length(key)) {
		rf_traces_err(x, "trace %s: tag without a key skipped", trace);
		x->st.late++;
		json_decref(key);
		json_decref(val);
		return;
	}
	if (t) {
		if (val)
			json_object_set_new(t->tags, json_string_value(key), val);
		else
			json_object_del(t->tags, json_string_value(key));
		json_decref(key);
		return;
	}
	queue(x, val ? OP_TAG_SET : OP_TAG_DEL, trace,
	      val ? json_pack("{s:o,s:o}", "key", key, "value", val) : json_pack("{s:o}", "key", key));
}

struct opcall {
	rf_traces *x;
	struct xop *o;
};

static void unlink_op(rf_traces *x, struct xop *o)
{
	struct xop *prev = NULL;
	for (struct xop *p = x->ops; p; prev = p, p = p->next)
		if (p == o) {
			if (prev)
				prev->next = o->next;
			else
				x->ops = o->next;
			if (x->ops_tail == o)
				x->ops_tail = prev;
			break;
		}
	x->nops--;
	json_decref(o->body);
	free(o);
}

static void on_op(int ok, long status, json_t *resp, const char *msg, void *arg)
{
	(void)resp;
	struct opcall *c = arg;
	rf_traces *x = c->x;
	struct xop *o = c->o;
	free(c);
	x->ops_inflight--;
	o->inflight = false;
	if (ok) {
		if (o->kind == OP_ASSESS)
			x->st.assessments++;
	} else if ((status == 404 || (status == 400 && msg && strcasestr(msg, "foreign key"))) &&
		   ++o->tries < OP_404_TRIES) {
		/* A missing trace: 404, or for a tag the database's foreign key. */
		o->retry_at = rf_traces_now_ms() + 1000; /* the trace may still be on its way */
		return;
	} else {
		x->st.traces_failed++;
		rf_traces_err(x, "trace %s: %s refused: HTTP %ld: %.300s", o->trace,
			      o->kind == OP_ASSESS ? "assessment" : "tag", status, msg ? msg : "");
	}
	unlink_op(x, o);
}

static bool send_op(rf_traces *x, struct xop *o)
{
	char *enc = curl_easy_escape(NULL, o->trace, 0), path[512];
	if (!enc)
		return false;
	if (o->kind == OP_ASSESS)
		snprintf(path, sizeof path, "/api/3.0/mlflow/traces/%s/assessments", enc);
	else
		snprintf(path, sizeof path, "/api/2.0/mlflow/traces/%s/tags", enc);
	curl_free(enc);
	char *body = json_dumps(o->body, JSON_COMPACT);
	if (!body)
		return false;
	struct opcall *c = malloc(sizeof *c);
	if (!c) {
		free(body);
		return false;
	}
	*c = (struct opcall){x, o};
	o->inflight = true;
	x->ops_inflight++;
	const char *method = o->kind == OP_ASSESS ? "POST" : o->kind == OP_TAG_SET ? "PATCH" : "DELETE";
	/* Tags are idempotent; an assessment carries its own id, so a repeat is
	 * refused rather than duplicated: retried on transient answers only. */
	if (rf_mlflow_call(x->m, method, path, body, strlen(body), "application/json", NULL,
			   o->kind == OP_ASSESS ? RF_HTTP_RETRY_SAFE : RF_HTTP_RETRY_ALL, on_op, c))
		on_op(0, 0, NULL, "request not queued", c);
	return true;
}

void rf_trace_ops_pump(rf_traces *x)
{
	uint64_t now = rf_traces_now_ms();
	size_t seen = 0;
	for (struct xop *o = x->ops, *n; o && x->ops_inflight < OPS_MAX_INFLIGHT && seen < OPS_SCAN;
	     o = n, seen++) {
		n = o->next;
		if (o->inflight || now < o->retry_at)
			continue;
		/* One at a time per trace, in record order. */
		bool blocked = false;
		for (struct xop *p = x->ops; p != o; p = p->next)
			if (!strcmp(p->trace, o->trace)) {
				blocked = true;
				break;
			}
		if (blocked)
			continue;
		/* A trace still held here (or in the trace spool): after its
		 * info is answered. */
		uint8_t bin[16];
		bool held = parse_tr(o->trace, bin) &&
			    (rf_traces_get(x, bin, false) || rf_trace_spool_may_hold(x, bin));
		if (held)
			continue;
		if (!send_op(x, o)) {
			x->st.traces_failed++;
			rf_traces_err(x, "trace %s: out of memory for a call", o->trace);
			unlink_op(x, o);
		}
	}
}

bool rf_trace_ops_idle(rf_traces *x)
{
	return !x->ops && !x->ops_inflight;
}

void rf_trace_ops_free(rf_traces *x)
{
	for (struct xop *o = x->ops, *n; o; o = n) {
		n = o->next;
		json_decref(o->body);
		free(o);
	}
	x->ops = x->ops_tail = NULL;
	x->nops = 0;
}
