/*
 * rf_spans.c - trace/span store and OTLP/JSON encoding (see rf_spans.h).
 *
 * Hand-written: the span index (a small open-addressing table; a trace has
 * tens to thousands of spans) and the OTLP mapping itself, which is a few
 * JSON objects built with jansson.  No OpenTelemetry C SDK is packaged in
 * Debian, and its exporter would add threads and its own batching.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_spans.h"

uint64_t rf_hash64(uint64_t seed, const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	/* splitmix64's finaliser: FNV alone mixes the last bytes poorly. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

static uint64_t hash_kind(uint64_t seed, const char *kind, const char *id)
{
	uint64_t h = rf_hash64(seed, kind, strlen(kind));
	return rf_hash64(h, id, strlen(id));
}

uint64_t rf_tspan_id_of(const char *kind, const char *id)
{
	uint64_t h = hash_kind(0x5a17, kind, id);
	return h ? h : 1; /* 0 means "no span" in OTLP */
}

void rf_ttrace_id_of(uint8_t out[16], const char *kind, const char *id)
{
	uint64_t a = hash_kind(0x7e1, kind, id), b = hash_kind(0x7e2, kind, id);
	for (int i = 0; i < 8; i++) {
		out[i] = (uint8_t)(a >> (56 - 8 * i));
		out[8 + i] = (uint8_t)(b >> (56 - 8 * i));
	}
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = 0;
}

void rf_ttrace_id_str(const uint8_t id[16], char out[36])
{
	memcpy(out, "tr-", 3);
	hex(id, 16, out + 3);
}

static void span_hex(uint64_t id, char out[17])
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(id >> (56 - 8 * i));
	hex(b, 8, out);
}

struct rf_ttrace *rf_ttrace_new(const uint8_t id[16])
{
	struct rf_ttrace *tr = calloc(1, sizeof *tr);
	if (tr)
		memcpy(tr->id, id, 16);
	return tr;
}

void rf_tspan_release(struct rf_tspan *s)
{
	free(s->name);
	free(s->type);
	free(s->status_msg);
	json_decref(s->attrs);
	json_decref(s->inputs);
	json_decref(s->outputs);
	json_decref(s->events);
	s->name = s->type = s->status_msg = NULL;
	s->attrs = s->inputs = s->outputs = s->events = NULL;
}

void rf_ttrace_free(struct rf_ttrace *tr)
{
	if (!tr)
		return;
	for (size_t i = 0; i < tr->n; i++)
		rf_tspan_release(&tr->spans[i]);
	free(tr->spans);
	free(tr->index);
	free(tr);
}

static size_t slot_of(uint64_t id, size_t cap)
{
	return (size_t)(id * 0x9e3779b97f4a7c15ULL >> 7) & (cap - 1);
}

static int index_grow(struct rf_ttrace *tr)
{
	size_t cap = tr->index_cap ? tr->index_cap * 2 : 32;
	uint32_t *ix = calloc(cap, sizeof *ix);
	if (!ix)
		return -1;
	for (size_t i = 0; i < tr->n; i++) {
		size_t j = slot_of(tr->spans[i].id, cap);
		while (ix[j])
			j = (j + 1) & (cap - 1);
		ix[j] = (uint32_t)i + 1;
	}
	free(tr->index);
	tr->index = ix;
	tr->index_cap = cap;
	return 0;
}

struct rf_tspan *rf_ttrace_span(struct rf_ttrace *tr, uint64_t id, bool create)
{
	if (tr->index_cap) {
		for (size_t j = slot_of(id, tr->index_cap); tr->index[j];
		     j = (j + 1) & (tr->index_cap - 1))
			if (tr->spans[tr->index[j] - 1].id == id)
				return &tr->spans[tr->index[j] - 1];
	}
	if (!create || !id)
		return NULL;
	if (tr->n >= RF_TRACE_SPANS_MAX) {
		tr->capped++;
		return NULL;
	}
	if (tr->n == tr->cap) {
		size_t cap = tr->cap ? tr->cap * 2 : 8;
		struct rf_tspan *s = realloc(tr->spans, cap * sizeof *s);
		if (!s)
			return NULL;
		tr->spans = s;
		tr->cap = cap;
	}
	/* Keep the table at most half full. */
	if ((tr->n + 1) * 2 > tr->index_cap && index_grow(tr))
		return NULL;
	struct rf_tspan *s = &tr->spans[tr->n];
	memset(s, 0, sizeof *s);
	s->id = id;
	s->attrs = json_object();
	size_t j = slot_of(id, tr->index_cap);
	while (tr->index[j])
		j = (j + 1) & (tr->index_cap - 1);
	tr->index[j] = (uint32_t)++tr->n;
	return s;
}

void rf_tspan_set_name(struct rf_tspan *s, const char *name, const char *type)
{
	if (name) {
		free(s->name);
		s->name = strdup(name);
	}
	if (type) {
		free(s->type);
		s->type = strdup(type);
	}
}

void rf_tspan_attr(struct rf_tspan *s, const char *key, json_t *v)
{
	if (v && s->attrs)
		json_object_set_new(s->attrs, key, v);
	else
		json_decref(v);
}

void rf_tspan_inputs(struct rf_tspan *s, json_t *v)
{
	json_decref(s->inputs);
	s->inputs = v;
}

void rf_tspan_outputs(struct rf_tspan *s, json_t *v)
{
	json_decref(s->outputs);
	s->outputs = v;
}

void rf_tspan_event(struct rf_tspan *s, const char *name, int64_t time_ns, json_t *attrs)
{
	if (!s->events)
		s->events = json_array();
	json_array_append_new(s->events, json_pack("{s:s,s:I,s:o}", "name", name, "time_ns",
						   (json_int_t)time_ns, "attributes",
						   attrs ? attrs : json_object()));
}

void rf_tspan_error(struct rf_tspan *s, const char *type, const char *msg, int64_t time_ns)
{
	s->status = RF_TSPAN_ERROR;
	free(s->status_msg);
	s->status_msg = strdup(msg ? msg : "");
	rf_tspan_event(s, "exception", time_ns,
		      json_pack("{s:s,s:s}", "exception.type", type ? type : "Error",
				"exception.message", msg ? msg : ""));
}

void rf_tspan_end(struct rf_ttrace *tr, struct rf_tspan *s, int64_t end_ns)
{
	if (!s->end_ns && !s->sent)
		tr->unsent_ended++;
	s->end_ns = end_ns > s->start_ns ? end_ns : s->start_ns;
	if (!s->end_ns)
		s->end_ns = 1; /* never 0: that means open */
}

size_t rf_ttrace_close_open(struct rf_ttrace *tr, int64_t end_ns, const char *msg)
{
	size_t n = 0;
	for (size_t i = 0; i < tr->n; i++) {
		struct rf_tspan *s = &tr->spans[i];
		if (s->end_ns || s->sent)
			continue;
		if (!s->name)
			rf_tspan_set_name(s, "(span never started)", "UNKNOWN");
		if (!s->start_ns)
			s->start_ns = end_ns;
		rf_tspan_error(s, "SpanNotEnded", msg, end_ns);
		rf_tspan_end(tr, s, end_ns);
		n++;
	}
	return n;
}

/* ---- OTLP/JSON ---- */

json_t *rf_otlp_anyvalue(json_t *v)
{
	char buf[32];
	switch (json_typeof(v)) {
	case JSON_STRING:
		return json_pack("{s:O}", "stringValue", v);
	case JSON_INTEGER:
		/* int64 is a string in proto3 JSON */
		snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
		return json_pack("{s:s}", "intValue", buf);
	case JSON_REAL:
		return json_pack("{s:O}", "doubleValue", v);
	case JSON_TRUE:
	case JSON_FALSE:
		return json_pack("{s:b}", "boolValue", json_is_true(v));
	case JSON_ARRAY: {
		json_t *vals = json_array();
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) json_array_append_new(vals, rf_otlp_anyvalue(e));
		return json_pack("{s:{s:o}}", "arrayValue", "values", vals);
	}
	case JSON_OBJECT: {
		json_t *vals = json_array();
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e)
			json_array_append_new(vals, json_pack("{s:s,s:o}", "key", k, "value",
							      rf_otlp_anyvalue(e)));
		return json_pack("{s:{s:o}}", "kvlistValue", "values", vals);
	}
	default:
		return json_object(); /* null: an empty AnyValue */
	}
}

static json_t *kv_list(json_t *obj)
{
	json_t *a = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
		json_array_append_new(a, json_pack("{s:s,s:o}", "key", k, "value", rf_otlp_anyvalue(v)));
	return a;
}

static json_t *ns_str(int64_t ns)
{
	char b[24];
	snprintf(b, sizeof b, "%lld", (long long)ns);
	return json_string(b);
}

json_t *rf_otlp_span(const struct rf_ttrace *tr, const struct rf_tspan *s)
{
	char tid[33], sid[17], pid[17];
	hex(tr->id, 16, tid);
	span_hex(s->id, sid);
	json_t *attrs = json_deep_copy(s->attrs);
	json_object_set_new(attrs, "mlflow.spanType", json_string(s->type ? s->type : "UNKNOWN"));
	if (s->inputs)
		json_object_set(attrs, "mlflow.spanInputs", s->inputs);
	if (s->outputs)
		json_object_set(attrs, "mlflow.spanOutputs", s->outputs);
	json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:o,s:o,s:o}", "traceId", tid, "spanId", sid, "name",
			      s->name ? s->name : "(unnamed)", "kind", 1 /* INTERNAL */,
			      "startTimeUnixNano", ns_str(s->start_ns), "endTimeUnixNano",
			      ns_str(s->end_ns), "attributes", kv_list(attrs));
	json_decref(attrs);
	uint64_t parent = s->parent;
	if (parent && parent != s->id) {
		/* An unknown parent (its record was refused or never sent) would
		 * orphan the span; hang it under the root instead. */
		struct rf_ttrace *t = (struct rf_ttrace *)tr;
		if (!rf_ttrace_span(t, parent, false))
			parent = tr->root != s->id ? tr->root : 0;
		if (parent) {
			span_hex(parent, pid);
			json_object_set_new(o, "parentSpanId", json_string(pid));
		}
	}
	json_t *st = json_pack("{s:i}", "code", (int)s->status);
	if (s->status_msg && *s->status_msg)
		json_object_set_new(st, "message", json_string(s->status_msg));
	json_object_set_new(o, "status", st);
	if (s->events) {
		json_t *evs = json_array();
		size_t i;
		json_t *e;
		json_array_foreach(s->events, i, e)
		{
			json_t *ev = json_pack(
				"{s:O,s:o,s:o}", "name", json_object_get(e, "name"), "timeUnixNano",
				ns_str(json_integer_value(json_object_get(e, "time_ns"))), "attributes",
				kv_list(json_object_get(e, "attributes")));
			json_array_append_new(evs, ev);
		}
		json_object_set_new(o, "events", evs);
	}
	return o;
}

json_t *rf_otlp_request(json_t *spans)
{
	return json_pack("{s:[{s:{s:[]},s:[{s:{s:s,s:s},s:o}]}]}", "resourceSpans", "resource",
			 "attributes", "scopeSpans", "scope", "name", "ringflow", "version", "0.1",
			 "spans", spans);
}

char *rf_otlp_body(const char *spans, size_t len, bool service_name)
{
	json_t *req = rf_otlp_request(json_array());
	if (req && service_name)
		json_array_append_new(
			json_object_get(json_object_get(json_array_get(json_object_get(req, "resourceSpans"), 0),
							"resource"),
					"attributes"),
			json_pack("{s:s,s:{s:s}}", "key", "service.name", "value", "stringValue", "ringflow"));
	char *shell = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	/* The one empty "spans" array of the document this file made. */
	static const char mark[] = "\"spans\":[]";
	char *at = shell ? strstr(shell, mark) : NULL, *out = NULL;
	if (at) {
		size_t head = (size_t)(at - shell) + sizeof mark - 2, tail = strlen(at + sizeof mark - 2);
		if ((out = malloc(head + len + tail + 1))) {
			memcpy(out, shell, head);
			memcpy(out + head, spans, len);
			memcpy(out + head + len, at + sizeof mark - 2, tail + 1);
		}
	}
	free(shell);
	return out;
}
