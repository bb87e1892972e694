/*
 * test_trace - the C tracing API (ringflow_trace.h) writes records 24-27
 * that decode (msgpack-c, the sidecar's decoder) into what docs/EVENTS.md
 * says:
 *  - a nested trace: ids, parents, names, types, times, inputs/outputs as a
 *    map or a single value, attributes merged, events, an exception, tags
 *    and metadata, statuses, a msgpack blob re-encoded (redacted inside),
 *    an invalid blob reported; inputs set after start go on the end record;
 *  - sampling decided at the root: rate 0 writes nothing, 1 everything,
 *    0.5 about half of the roots and never part of a tree;
 *  - enable/disable, decided at the root too;
 *  - per-thread current-span stacks (4 threads), explicit parents ended on
 *    another thread, out-of-order ends;
 *  - ids: unique, nonzero; a forked child does not repeat its parent's;
 *  - assessments and tags (records 28, 29): on a span's trace, on a trace
 *    named by id, on the current span's; MLflow's defaults; nothing for an
 *    unrecorded trace; -EINVAL without a trace, name or key.
 */
#include <math.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "rf_test_got.h"
#include "rf_test_ring.h"
#include "ringflow.h"

/* Every record this test writes decodes. */
static void drain(rf_ring *c, struct got *g)
{
	rf_test_drain(c, g, 4096);
	CHECK_EQ(g->malformed, 0);
}

static long long jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* The trace id as rf_obj_to_json renders bin: {"$bin": "<hex>"}. */
static const char *tid(json_t *o)
{
	return jstr(json_object_get(o, "trace_id"), "$bin");
}

/* Index of the record of `type` for span `sid` (-1 if none). */
static int find(struct got *g, int type, long long sid)
{
	for (int i = 0; i < g->n; i++)
		if (g->types[i] == type && jint(g->data[i], "span_id") == sid)
			return i;
	return -1;
}

static int find_named(struct got *g, int type, const char *name)
{
	for (int i = 0; i < g->n; i++)
		if (g->types[i] == type && jstr(g->data[i], "name") && !strcmp(jstr(g->data[i], "name"), name))
			return i;
	return -1;
}

static void test_nested(rf_ring *cons, struct got *g)
{
	uint64_t t0 = (uint64_t)time(NULL) * 1000000000ull;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "docs", 4);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "two", 3);
	msgpack_pack_str_with_body(&pk, "api_key", 7);
	msgpack_pack_str_with_body(&pk, "sk-123", 6);

	CHECK(rf_span_current() == NULL);
	rf_span *root = rf_span_start("agent", RF_SPAN_AGENT,
				      RF_KVS(RF_STR("question", "why?"), RF_INT("k", 3),
					     RF_MSGPACK("filters", sb.data, sb.size)));
	CHECK(rf_span_recording(root));
	CHECK(rf_span_current() == root);
	char tbuf[36], sbuf[17];
	CHECK(!strncmp(rf_span_trace_id(root, tbuf), "tr-", 3) && strlen(tbuf) == 35);
	CHECK_EQ(strlen(rf_span_id_hex(root, sbuf)), 16);
	CHECK_EQ(rf_trace_update(NULL, RF_KVS(RF_STR("session", "s-42"), RF_INT("turn", 7)),
				 RF_KVS(RF_STR("user", "ann"))), 0);

	rf_span *tool = rf_span_start("search", RF_SPAN_TOOL, NULL, 0);
	CHECK(rf_span_current() == tool);
	rf_span_set_inputs(tool, RF_KVS(RF_STR(NULL, "late input")));
	rf_span_set_attrs(tool, RF_KVS(RF_STR("a", "first"), RF_DOUBLE("score", 0.5)));
	rf_span_set_attrs(tool, RF_KVS(RF_STR("a", "second"), RF_BOOL("hit", true),
				       RF_STR("token", "secret!")));
	CHECK_EQ(rf_span_add_event(tool, "cache_miss", RF_KVS(RF_STR("key", "why?"))), 0);
	rf_span *llm = rf_span_start("my_model", "MY_CUSTOM_TYPE", NULL, 0);
	rf_span_record_exception(llm, "TimeoutError", "model took too long", "at frame 1\nat frame 2");
	rf_span_end(llm, NULL, 0);
	CHECK(rf_span_current() == tool);
	rf_span_set_outputs(tool, RF_KVS(RF_STR("ignored", "replaced at end")));
	static const uint8_t bad[] = {0x92, 0x01}; /* an array of 2 with 1 element */
	rf_span_end(tool, RF_KVS(RF_INT("hits", 2), RF_MSGPACK("bad", bad, sizeof bad)));
	rf_span *c = rf_span_start("cancelled_step", RF_SPAN_CHAIN, NULL, 0);
	rf_span_set_status(c, RF_STATUS_CANCELLED, "user stop");
	rf_span_end(c, NULL, 0);
	rf_span_end(root, RF_KVS(RF_STR(NULL, "because")));
	CHECK(rf_span_current() == NULL);
	msgpack_sbuffer_destroy(&sb);

	drain(cons, g);
	/* 4 spans: 4 starts, 4 ends, 2 events, 1 update. */
	int count[32] = {0};
	for (int i = 0; i < g->n; i++)
		count[g->types[i]]++;
	CHECK_EQ(count[RF_EV_TRACE_SPAN_START], 4);
	CHECK_EQ(count[RF_EV_TRACE_SPAN_END], 4);
	CHECK_EQ(count[RF_EV_TRACE_SPAN_EVENT], 2);
	CHECK_EQ(count[RF_EV_TRACE_UPDATE], 1);
	const char *trace = tid(g->data[0]);
	CHECK(trace && strlen(trace) == 32);
	CHECK(!strcmp(trace, tbuf + 3)); /* the id MLflow shows is tr-<this> */
	for (int i = 0; i < g->n; i++) {
		CHECK(!strcmp(tid(g->data[i]), trace));
		CHECK_EQ(jint(g->data[i], "v"), RF_SCHEMA_VERSION);
	}
	int rs = find_named(g, RF_EV_TRACE_SPAN_START, "agent");
	int ts = find_named(g, RF_EV_TRACE_SPAN_START, "search");
	int ls = find_named(g, RF_EV_TRACE_SPAN_START, "my_model");
	int cs = find_named(g, RF_EV_TRACE_SPAN_START, "cancelled_step");
	CHECK(rs >= 0 && ts >= 0 && ls >= 0 && cs >= 0);
	json_t *R = g->data[rs], *T = g->data[ts], *L = g->data[ls], *C = g->data[cs];
	long long rid = jint(R, "span_id"), tid_ = jint(T, "span_id"), lid = jint(L, "span_id");
	char hex[17];
	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)rid);
	CHECK(!strcmp(hex, sbuf));
	CHECK(json_object_get(R, "parent_id") == NULL); /* absent on the root */
	CHECK_EQ(jint(T, "parent_id"), rid);
	CHECK_EQ(jint(L, "parent_id"), tid_);
	CHECK_EQ(jint(C, "parent_id"), rid);
	CHECK(!strcmp(jstr(R, "span_type"), "AGENT"));
	CHECK(!strcmp(jstr(T, "span_type"), "TOOL"));
	CHECK(!strcmp(jstr(L, "span_type"), "MY_CUSTOM_TYPE"));
	CHECK(jint(R, "start_ns") >= (long long)t0 && jint(T, "start_ns") >= jint(R, "start_ns"));
	json_t *in = json_object_get(R, "inputs");
	CHECK(!strcmp(jstr(in, "question"), "why?"));
	CHECK_EQ(jint(in, "k"), 3);
	json_t *filters = json_object_get(in, "filters");
	CHECK_EQ(json_array_size(json_object_get(filters, "docs")), 2);
	CHECK(!strcmp(json_string_value(json_array_get(json_object_get(filters, "docs"), 1)), "two"));
	CHECK(!strcmp(jstr(filters, "api_key"), "[REDACTED]")); /* inside the blob */
	CHECK(json_object_get(T, "inputs") == NULL);
	/* Ends. */
	json_t *RE = g->data[find(g, RF_EV_TRACE_SPAN_END, rid)];
	json_t *TE = g->data[find(g, RF_EV_TRACE_SPAN_END, tid_)];
	json_t *LE = g->data[find(g, RF_EV_TRACE_SPAN_END, lid)];
	json_t *CE = g->data[find(g, RF_EV_TRACE_SPAN_END, jint(C, "span_id"))];
	CHECK(!strcmp(jstr(RE, "outputs"), "because"));
	CHECK(json_object_get(RE, "status") == NULL); /* absent = OK */
	CHECK(jint(RE, "end_ns") >= jint(TE, "end_ns"));
	CHECK(!strcmp(jstr(TE, "inputs"), "late input"));
	json_t *tout = json_object_get(TE, "outputs");
	CHECK_EQ(jint(tout, "hits"), 2);
	CHECK(!strcmp(jstr(tout, "bad"), "[invalid msgpack]"));
	CHECK(json_object_get(tout, "ignored") == NULL);
	json_t *ta = json_object_get(TE, "attributes");
	CHECK_EQ(json_object_size(ta), 4);
	CHECK(!strcmp(jstr(ta, "a"), "second"));
	CHECK(json_real_value(json_object_get(ta, "score")) == 0.5);
	CHECK(json_is_true(json_object_get(ta, "hit")));
	CHECK(!strcmp(jstr(ta, "token"), "[REDACTED]"));
	CHECK(!strcmp(jstr(LE, "status"), "ERROR"));
	CHECK(!strcmp(jstr(LE, "status_message"), "TimeoutError: model took too long"));
	CHECK(!strcmp(jstr(CE, "status"), "CANCELLED"));
	CHECK(!strcmp(jstr(CE, "status_message"), "user stop"));
	/* Events. */
	json_t *ev = g->data[find_named(g, RF_EV_TRACE_SPAN_EVENT, "cache_miss")];
	CHECK_EQ(jint(ev, "span_id"), tid_);
	CHECK(!strcmp(jstr(json_object_get(ev, "attributes"), "key"), "why?"));
	CHECK(jint(ev, "time_ns") >= jint(T, "start_ns"));
	json_t *ex = g->data[find_named(g, RF_EV_TRACE_SPAN_EVENT, "exception")];
	CHECK_EQ(jint(ex, "span_id"), lid);
	json_t *ea = json_object_get(ex, "attributes");
	CHECK(!strcmp(jstr(ea, "exception.type"), "TimeoutError"));
	CHECK(!strcmp(jstr(ea, "exception.message"), "model took too long"));
	CHECK(strstr(jstr(ea, "exception.stacktrace"), "frame 2"));
	/* Update: tags and metadata as strings. */
	for (int i = 0; i < g->n; i++)
		if (g->types[i] == RF_EV_TRACE_UPDATE) {
			json_t *tags = json_object_get(g->data[i], "tags");
			CHECK(!strcmp(jstr(tags, "session"), "s-42"));
			CHECK(!strcmp(jstr(tags, "turn"), "7"));
			CHECK(!strcmp(jstr(json_object_get(g->data[i], "metadata"), "user"), "ann"));
		}
	struct rf_trace_stats st;
	rf_trace_stats(&st);
	CHECK_EQ(st.errors, 0);
	CHECK_EQ(st.bad_values, 1); /* the invalid blob, counted */
	printf("nested: 4 spans, parents, types, inputs/outputs, attributes, events, exception, "
	       "tags, statuses, blob redacted, invalid blob counted\n");
	rf_test_got_reset(g);
}

/* n traces of a root and 3 children (one nested); returns how many were recorded. */
static int make_traces(int n)
{
	int rec = 0;
	for (int i = 0; i < n; i++) {
		rf_span *r = rf_span_start("root", RF_SPAN_CHAIN, RF_KVS(RF_INT("i", i)));
		rec += rf_span_recording(r);
		rf_span *a = rf_span_start("a", RF_SPAN_TOOL, NULL, 0);
		rf_span *b = rf_span_start("b", RF_SPAN_LLM, NULL, 0);
		rf_span_add_event(b, "e", NULL, 0);
		rf_span_end(b, NULL, 0);
		rf_span_end(a, NULL, 0);
		rf_span *c = rf_span_start_with(r, "c", RF_SPAN_PARSER, NULL, 0);
		rf_span_end(c, NULL, 0);
		rf_trace_update(r, RF_KVS(RF_STR("t", "v")), NULL, 0);
		rf_span_end(r, NULL, 0);
		CHECK(rf_span_current() == NULL);
	}
	return rec;
}

/* Every trace in g is whole: 4 starts, 4 ends, 1 event, 1 update. */
static int check_whole(struct got *g)
{
	json_t *per = json_object();
	for (int i = 0; i < g->n; i++) {
		const char *t = tid(g->data[i]);
		json_t *c = json_object_get(per, t);
		json_object_set_new(per, t, json_integer((c ? json_integer_value(c) : 0) + 1));
	}
	const char *k;
	json_t *v;
	json_object_foreach(per, k, v) CHECK_EQ(json_integer_value(v), 10);
	int n = (int)json_object_size(per);
	json_decref(per);
	return n;
}

static void test_sampling(rf_ring *cons, struct got *g)
{
	struct rf_trace_stats a, b;
	CHECK_EQ(rf_trace_set_sample_rate(1.5), -EINVAL);
	CHECK_EQ(rf_trace_set_sample_rate(-0.1), -EINVAL);
	CHECK_EQ(rf_trace_set_sample_rate(0.0), 0);
	rf_trace_stats(&a);
	CHECK_EQ(make_traces(200), 0);
	drain(cons, g);
	CHECK_EQ(g->n, 0);
	rf_trace_stats(&b);
	CHECK_EQ(b.sampled_out - a.sampled_out, 200);
	CHECK_EQ(b.spans - a.spans, 0);

	CHECK_EQ(rf_trace_set_sample_rate(1.0), 0);
	CHECK_EQ(make_traces(200), 200);
	drain(cons, g);
	CHECK_EQ(check_whole(g), 200);
	rf_test_got_reset(g);

	CHECK_EQ(rf_trace_set_sample_rate(0.5), 0);
	int n = 0, recorded = 0;
	for (int round = 0; round < 4; round++) { /* in rounds: the ring holds ~1 MiB */
		recorded += make_traces(500);
		drain(cons, g);
		n += check_whole(g);
		rf_test_got_reset(g);
	}
	CHECK_EQ(n, recorded);
	CHECK(n > 850 && n < 1150); /* 2000 roots at 0.5: 11 sigma either way */
	CHECK_EQ(rf_trace_set_sample_rate(1.0), 0);
	printf("sampling: rate 0 -> nothing, 1 -> all 200 whole, 0.5 -> %d of 2000 roots, all whole\n", n);
}

static void test_enable(rf_ring *cons, struct got *g)
{
	rf_trace_enable(false);
	CHECK(!rf_trace_enabled());
	CHECK_EQ(make_traces(50), 0);
	/* Enabled mid-trace: the trace stays unrecorded (decided at its root). */
	rf_span *r = rf_span_start("off", NULL, NULL, 0);
	rf_trace_enable(true);
	rf_span *c = rf_span_start("child", NULL, NULL, 0);
	CHECK(!rf_span_recording(c));
	rf_span_end(c, NULL, 0);
	rf_span_end(r, NULL, 0);
	CHECK(rf_span_current() == NULL);
	drain(cons, g);
	CHECK_EQ(g->n, 0);
	/* Disabled mid-trace: the trace completes. */
	r = rf_span_start("on", NULL, NULL, 0);
	rf_trace_enable(false);
	c = rf_span_start("child", NULL, NULL, 0);
	CHECK(rf_span_recording(c));
	rf_span_end(c, NULL, 0);
	rf_span_end(r, NULL, 0);
	rf_trace_enable(true);
	drain(cons, g);
	CHECK_EQ(g->n, 4);
	rf_test_got_reset(g);
	printf("enable/disable: off writes nothing; a trace keeps its root's decision\n");
}

static _Atomic int finished;

static void *thread_traces(void *arg)
{
	(void)arg;
	for (int i = 0; i < 300; i++) {
		rf_span *r = rf_span_start("t_root", NULL, NULL, 0);
		for (int j = 0; j < 3; j++) {
			rf_span *a = rf_span_start("t_child", NULL, NULL, 0);
			rf_span *b = rf_span_start("t_grandchild", NULL, NULL, 0);
			if (rf_span_current() != b)
				return (void *)1;
			rf_span_end(b, NULL, 0);
			rf_span_end(a, NULL, 0);
		}
		rf_span_end(r, NULL, 0);
		if (rf_span_current() != NULL)
			return (void *)1;
	}
	return NULL;
}

static void *thread_main(void *arg) /* counts a finished thread, passed or failed */
{
	void *res = thread_traces(arg);
	atomic_fetch_add(&finished, 1);
	return res;
}

struct xend {
	rf_span *s;
};

static void *end_elsewhere(void *arg)
{
	struct xend *x = arg;
	rf_span_add_event(x->s, "from_other_thread", NULL, 0);
	rf_span_end(x->s, RF_KVS(RF_STR(NULL, "done")));
	return NULL;
}

static void test_threads(rf_ring *cons, struct got *g)
{
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, thread_main, NULL), 0);
	int total = 0;
	json_t *span_trace = json_object(), *span_parent = json_object(), *root_of = json_object();
	for (int last = 0; last < 2;) { /* drain while they run, then once after */
		last += last || atomic_load(&finished) == 4;
		drain(cons, g);
		for (int i = 0; i < g->n; i++) {
			if (g->types[i] != RF_EV_TRACE_SPAN_START)
				continue;
			char k[32];
			snprintf(k, sizeof k, "%lld", jint(g->data[i], "span_id"));
			CHECK(!json_object_get(span_trace, k)); /* span ids unique */
			json_object_set_new(span_trace, k, json_string(tid(g->data[i])));
			json_object_set_new(span_parent, k, json_integer(jint(g->data[i], "parent_id")));
			if (!strcmp(jstr(g->data[i], "name"), "t_root")) {
				CHECK(!json_object_get(root_of, tid(g->data[i]))); /* trace ids unique */
				json_object_set_new(root_of, tid(g->data[i]), json_true());
			}
			total++;
		}
		rf_test_got_reset(g);
	}
	for (int i = 0; i < 4; i++) {
		void *res;
		CHECK_EQ(pthread_join(th[i], &res), 0);
		CHECK(res == NULL);
	}
	drain(cons, g);
	CHECK_EQ(g->n, 0);
	CHECK_EQ(total, 4 * 300 * 7);
	CHECK_EQ(json_object_size(root_of), 1200);
	/* Every child's parent is a span of the same trace. */
	const char *k;
	json_t *v;
	json_object_foreach(span_parent, k, v) {
		if (!json_integer_value(v))
			continue;
		char pk[32];
		snprintf(pk, sizeof pk, "%lld", (long long)json_integer_value(v));
		json_t *pt = json_object_get(span_trace, pk);
		CHECK(pt && !strcmp(json_string_value(pt), json_string_value(json_object_get(span_trace, k))));
	}
	json_decref(span_trace);
	json_decref(span_parent);
	json_decref(root_of);

	/* Explicit parent, ended on another thread; out-of-order implicit ends. */
	rf_span *r = rf_span_start("cb_root", NULL, NULL, 0);
	struct xend x = {rf_span_start_with(r, "callback", RF_SPAN_TOOL, NULL, 0)};
	CHECK(rf_span_current() == r);
	pthread_t t;
	CHECK_EQ(pthread_create(&t, NULL, end_elsewhere, &x), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	rf_span *a = rf_span_start("a", NULL, NULL, 0);
	rf_span *b = rf_span_start("b", NULL, NULL, 0);
	rf_span_end(a, NULL, 0); /* before its child */
	CHECK(rf_span_current() == b);
	rf_span *d = rf_span_start("d", NULL, NULL, 0);
	rf_span_end(d, NULL, 0);
	rf_span_end(b, NULL, 0);
	CHECK(rf_span_current() == r);
	rf_span_end(r, NULL, 0);
	CHECK(rf_span_current() == NULL);
	drain(cons, g);
	int cbs = find_named(g, RF_EV_TRACE_SPAN_START, "callback");
	int ds = find_named(g, RF_EV_TRACE_SPAN_START, "d");
	CHECK_EQ(jint(g->data[cbs], "parent_id"), jint(g->data[find_named(g, RF_EV_TRACE_SPAN_START, "cb_root")], "span_id"));
	CHECK_EQ(jint(g->data[ds], "parent_id"), jint(g->data[find_named(g, RF_EV_TRACE_SPAN_START, "b")], "span_id"));
	CHECK(!strcmp(jstr(g->data[find(g, RF_EV_TRACE_SPAN_END, jint(g->data[cbs], "span_id"))], "outputs"), "done"));
	rf_test_got_reset(g);
	printf("threads: 4 x 300 traces nested per thread, ids unique; explicit parent ended on "
	       "another thread; out-of-order end\n");
}

static void test_fork(rf_ring *cons, struct got *g)
{
	rf_span *warm = rf_span_start("warm", NULL, NULL, 0); /* seeds this thread's generator */
	rf_span_end(warm, NULL, 0);
	drain(cons, g);
	rf_test_got_reset(g);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		rf_span_end(rf_span_start("same", NULL, NULL, 0), NULL, 0);
		_exit(0);
	}
	rf_span_end(rf_span_start("same", NULL, NULL, 0), NULL, 0);
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	drain(cons, g);
	CHECK_EQ(g->n, 4);
	const char *t1 = NULL;
	for (int i = 0; i < g->n; i++)
		if (g->types[i] == RF_EV_TRACE_SPAN_START) {
			if (!t1)
				t1 = tid(g->data[i]);
			else
				CHECK(strcmp(t1, tid(g->data[i])));
		}
	rf_test_got_reset(g);
	printf("fork: the child's ids differ from the parent's\n");
}

static void test_assess(rf_ring *cons, struct got *g)
{
	rf_test_got_reset(g);
	rf_span *root = rf_span_start("judged", RF_SPAN_CHAIN, NULL, 0);
	rf_span *child = rf_span_start("step", RF_SPAN_TOOL, NULL, 0);
	rf_kv meta[] = {RF_STR("judge", "j1"), RF_INT("round", 2)};
	CHECK_EQ(rf_trace_log_assessment(NULL, NULL, /* the current span's trace */
					 &(struct rf_assessment){
						 .name = "relevance",
						 .value = &RF_DOUBLE(NULL, 0.75),
						 .rationale = "on topic",
						 .source_type = "LLM_JUDGE",
						 .source_id = "gpt-judge",
						 .metadata = meta,
						 .nmeta = 2,
						 .span = child,
					 }),
		 0);
	CHECK_EQ(rf_trace_log_assessment(root, NULL,
					 &(struct rf_assessment){.kind = RF_ASSESS_EXPECTATION,
								 .name = "expected",
								 .value = &RF_STR(NULL, "42")}),
		 0);
	CHECK_EQ(rf_trace_log_assessment(root, NULL,
					 &(struct rf_assessment){.name = "judge_failed",
								 .error_code = "RATE_LIMIT",
								 .error_message = "429"}),
		 0);
	CHECK_EQ(rf_trace_set_tag(root, NULL, "stage", "prod"), 0);
	CHECK_EQ(rf_trace_delete_tag(NULL, NULL, "stage"), 0);
	char id[36];
	rf_span_trace_id(root, id);
	rf_span_end(child, NULL, 0);
	rf_span_end(root, NULL, 0);
	/* After the trace ended: by its id (any MLflow trace id works). */
	CHECK_EQ(rf_trace_set_tag(NULL, id, "late", "yes"), 0);
	CHECK_EQ(rf_trace_set_tag(NULL, "tr-not-ours", "k", "v"), 0);
	/* No trace, no name, no key. */
	CHECK_EQ(rf_trace_set_tag(NULL, NULL, "k", "v"), -EINVAL);
	CHECK_EQ(rf_trace_log_assessment(NULL, id, &(struct rf_assessment){.name = ""}), -EINVAL);
	CHECK_EQ(rf_trace_set_tag(NULL, id, NULL, "v"), -EINVAL);
	/* An unrecorded trace takes nothing. */
	rf_trace_enable(false);
	rf_span *off = rf_span_start("off", NULL, NULL, 0);
	CHECK_EQ(rf_trace_set_tag(off, NULL, "k", "v"), 0);
	CHECK_EQ(rf_trace_log_assessment(NULL, NULL, &(struct rf_assessment){.name = "x"}), 0);
	rf_span_end(off, NULL, 0);
	rf_trace_enable(true);
	drain(cons, g);

	int na = 0, nt = 0;
	json_t *a[3] = {0}, *t[4] = {0};
	const char *root_tid = NULL;
	long long child_sid = 0;
	for (int i = 0; i < g->n; i++) {
		json_t *d = g->data[i];
		if (g->types[i] == RF_EV_TRACE_ASSESSMENT && na < 3)
			a[na++] = d;
		else if (g->types[i] == RF_EV_TRACE_TAG && nt < 4)
			t[nt++] = d;
		else if (g->types[i] == RF_EV_TRACE_SPAN_START && !strcmp(jstr(d, "name"), "judged"))
			root_tid = tid(d);
		else if (g->types[i] == RF_EV_TRACE_SPAN_START && !strcmp(jstr(d, "name"), "step"))
			child_sid = jint(d, "span_id");
	}
	CHECK_EQ(na, 3);
	CHECK_EQ(nt, 4);
	CHECK(root_tid && child_sid);
	CHECK(!strcmp(tid(a[0]), root_tid));
	CHECK(!strcmp(jstr(a[0], "kind"), "feedback"));
	CHECK(!strcmp(jstr(a[0], "name"), "relevance"));
	CHECK(fabs(json_real_value(json_object_get(a[0], "value")) - 0.75) < 1e-12);
	CHECK(!strcmp(jstr(a[0], "rationale"), "on topic"));
	CHECK(!strcmp(jstr(a[0], "source_type"), "LLM_JUDGE"));
	CHECK(!strcmp(jstr(a[0], "source_id"), "gpt-judge"));
	CHECK(!strcmp(jstr(json_object_get(a[0], "metadata"), "round"), "2")); /* as text */
	CHECK_EQ(jint(a[0], "span_id"), child_sid);
	CHECK(jint(a[0], "time_ns") > 0);
	CHECK(!strncmp(jstr(a[0], "assessment_id"), "a-", 2));
	CHECK_EQ(strlen(jstr(a[0], "assessment_id")), 34);
	CHECK(strcmp(jstr(a[0], "assessment_id"), jstr(a[1], "assessment_id")));
	CHECK(!strcmp(jstr(a[1], "kind"), "expectation"));
	CHECK(!strcmp(jstr(a[1], "value"), "42"));
	CHECK(!json_object_get(a[1], "source_type")); /* the sidecar applies MLflow's default */
	CHECK(!json_object_get(a[2], "value"));
	CHECK(!strcmp(jstr(json_object_get(a[2], "error"), "error_code"), "RATE_LIMIT"));
	CHECK(!strcmp(jstr(json_object_get(a[2], "error"), "error_message"), "429"));
	CHECK(!strcmp(tid(t[0]), root_tid) && !strcmp(jstr(t[0], "key"), "stage"));
	CHECK(!strcmp(jstr(t[0], "value"), "prod"));
	CHECK(!strcmp(tid(t[1]), root_tid) && !json_object_get(t[1], "value")); /* delete */
	CHECK(!strcmp(jstr(t[2], "trace_id"), id) && !strcmp(jstr(t[2], "value"), "yes"));
	CHECK(!strcmp(jstr(t[3], "trace_id"), "tr-not-ours"));
	rf_test_got_reset(g);
}

int main(void)
{
	char ring[64];
	rf_ring *cons = rf_test_open_consumer(ring, "trace", 4u << 20);
	rf_producer *p;
	struct rf_producer_opts po = {.ring = ring};
	CHECK_EQ(rf_producer_open(&p, &po), 0);
	rf_trace_set_producer(p);
	CHECK_EQ(rf_trace_set_sample_rate(1.0), 0);
	rf_trace_enable(true);
	static struct got g;
	test_nested(cons, &g);
	test_sampling(cons, &g);
	test_enable(cons, &g);
	test_threads(cons, &g);
	test_fork(cons, &g);
	test_assess(cons, &g);
	rf_trace_set_producer(NULL);
	rf_producer_close(p);
	rf_ring_close(cons);
	rf_ring_unlink(ring);
	return RF_T_PASS;
}
