/*
 * test_spans.c - the sidecar's span store and OTLP/JSON encoding
 * (sidecar/trace/rf_spans.c): deterministic ids, span lookup across growth,
 * parents that are missing, spans closed as ERROR, AnyValue mapping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_spans.h"
#include "rf_test.h"

static const char *attr_str(json_t *span, const char *key, const char *field)
{
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(span, "attributes"), i, a)
	{
		if (!strcmp(json_string_value(json_object_get(a, "key")), key))
			return json_string_value(json_object_get(json_object_get(a, "value"), field));
	}
	return NULL;
}

static void test_ids(void)
{
	uint8_t a[16], b[16], c[16];
	rf_ttrace_id_of(a, "sample", "uuid-1");
	rf_ttrace_id_of(b, "sample", "uuid-1");
	rf_ttrace_id_of(c, "sample", "uuid-2");
	CHECK(!memcmp(a, b, 16)); /* a replayed record lands on the same trace */
	CHECK(memcmp(a, c, 16) != 0);
	CHECK(rf_tspan_id_of("event", "e1") == rf_tspan_id_of("event", "e1"));
	CHECK(rf_tspan_id_of("event", "e1") != rf_tspan_id_of("ispan", "e1"));
	char s[36];
	rf_ttrace_id_str(a, s);
	CHECK(strlen(s) == 35 && !strncmp(s, "tr-", 3));
}

static void test_store_and_otlp(void)
{
	uint8_t id[16];
	rf_ttrace_id_of(id, "sample", "x");
	struct rf_ttrace *tr = rf_ttrace_new(id);
	CHECK(tr);
	uint64_t root = rf_tspan_id_of("sample", "x");
	tr->root = root;
	/* Enough spans to grow the index several times; lookups stay right. */
	for (int i = 0; i < 300; i++) {
		char k[16];
		snprintf(k, sizeof k, "e%d", i);
		struct rf_tspan *s = rf_ttrace_span(tr, rf_tspan_id_of("event", k), true);
		CHECK(s && s->id == rf_tspan_id_of("event", k));
		s->parent = i % 2 ? root : rf_tspan_id_of("ispan", "never-seen");
		rf_tspan_set_name(s, k, "LLM");
		s->start_ns = 1000 + i;
	}
	CHECK(tr->n == 300);
	for (int i = 0; i < 300; i++) {
		char k[16];
		snprintf(k, sizeof k, "e%d", i);
		struct rf_tspan *s = rf_ttrace_span(tr, rf_tspan_id_of("event", k), false);
		CHECK(s && !strcmp(s->name, k));
	}
	CHECK(!rf_ttrace_span(tr, 12345, false));
	struct rf_tspan *r = rf_ttrace_span(tr, root, true);
	rf_tspan_set_name(r, "sample:x", "CHAIN");
	r->start_ns = 500;
	r->inputs = json_pack("{s:s}", "input", "hi");
	rf_tspan_attr(r, "n", json_integer(7));
	rf_tspan_end(tr, r, 400); /* before its start: clamped, never negative */
	CHECK(r->end_ns == 500);

	/* Every open span is closed as ERROR with an exception event. */
	size_t closed = rf_ttrace_close_open(tr, 9000, "never ended");
	CHECK(closed == 300);
	struct rf_tspan *e0 = rf_ttrace_span(tr, rf_tspan_id_of("event", "e0"), false);
	CHECK(e0->status == RF_TSPAN_ERROR && e0->end_ns == 9000);
	CHECK(json_array_size(e0->events) == 1);

	json_t *o = rf_otlp_span(tr, e0);
	/* Its parent is not in the trace: it hangs under the root, not orphaned. */
	char hexroot[17];
	snprintf(hexroot, sizeof hexroot, "%016llx", (unsigned long long)root);
	CHECK(!strcmp(json_string_value(json_object_get(o, "parentSpanId")), hexroot));
	CHECK(json_integer_value(json_object_get(json_object_get(o, "status"), "code")) == 2);
	CHECK(!strcmp(json_string_value(json_object_get(o, "startTimeUnixNano")), "1000"));
	CHECK(!strcmp(attr_str(o, "mlflow.spanType", "stringValue"), "LLM"));
	CHECK(strlen(json_string_value(json_object_get(o, "traceId"))) == 32);
	json_decref(o);

	o = rf_otlp_span(tr, r);
	CHECK(!json_object_get(o, "parentSpanId")); /* the root */
	CHECK(!strcmp(attr_str(o, "n", "intValue"), "7")); /* int64 as a string (proto3 JSON) */
	size_t i;
	json_t *a;
	bool kv = false;
	json_array_foreach(json_object_get(o, "attributes"), i, a)
	{
		if (!strcmp(json_string_value(json_object_get(a, "key")), "mlflow.spanInputs"))
			kv = json_object_get(json_object_get(a, "value"), "kvlistValue") != NULL;
	}
	CHECK(kv); /* structured inputs as a kvlist, not pre-encoded JSON */
	json_t *req = rf_otlp_request(json_pack("[o]", o));
	CHECK(json_array_size(json_object_get(req, "resourceSpans")) == 1);
	json_decref(req);

	/* A sent span keeps its id (children still find it), not its payload. */
	rf_tspan_release(r);
	r->sent = true;
	CHECK(rf_ttrace_span(tr, root, false) == r && !r->name);
	rf_ttrace_free(tr);
}

int main(void)
{
	test_ids();
	test_store_and_otlp();
	printf("test_spans: ok\n");
	return RF_T_PASS;
}
