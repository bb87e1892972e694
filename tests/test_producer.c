/*
 * test_producer - libringflow: records encoded in place, decoded with msgpack-c.
 *
 *  - every record type round-trips (the synthetic evaluation's records);
 *  - all value kinds, nesting, a record that outgrows its claim, truncation
 *    with the original size, redaction by key, by "Bearer" and by secret value;
 *  - errors are reported, never half-written: too large, too deep;
 *  - thread-safe (4 threads) and fork-safe (a child keeps emitting).
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "rf_test_got.h"
#include "rf_test_ring.h"
#include "ringflow.h"

static void test_every_type(const char *ring, rf_ring *cons, struct got *g)
{
	/* The example program emits one evaluation with every record type. */
	/* The example binary of the same build variant: ../examples/ beside us. */
	char exe[512], cmd[1024];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	CHECK(n > 0);
	exe[n] = 0;
	*strrchr(exe, '/') = 0;
	snprintf(cmd, sizeof cmd, "RINGFLOW_RING=%s %s/../examples/synthetic_eval 3 >/dev/null", ring,
		 exe);
	CHECK_EQ(system(cmd), 0);
	rf_test_drain(cons, g, 1024);
	CHECK_EQ(g->malformed, 0);
	int seen[RF_EV_MAX_BUILTIN + 1] = {0};
	for (int i = 0; i < g->n; i++) {
		CHECK(g->types[i] >= 1 && g->types[i] <= RF_EV_MAX_BUILTIN);
		seen[g->types[i]]++;
		CHECK_EQ(json_integer_value(json_object_get(g->data[i], "v")), RF_SCHEMA_VERSION);
	}
	/* The Inspect types; the tracing ones (24-27) are test_trace's. */
	for (int t = 1; t < RF_EV_TRACE_SPAN_START; t++) {
		if (!seen[t])
			fprintf(stderr, "type %s missing\n", rf_event_name(t));
		CHECK(seen[t] > 0);
	}
	CHECK_EQ(seen[RF_EV_MODEL_CALL], 6);
	CHECK_EQ(seen[RF_EV_SAMPLE_END], 3);
	/* Spot-check fields through the decoder. */
	for (int i = 0; i < g->n; i++) {
		json_t *d = g->data[i];
		if (g->types[i] == RF_EV_TASK_START) {
			CHECK(!strcmp(jstr(json_object_get(d, "model_args"), "api_key"), "[REDACTED]"));
			CHECK_EQ(json_integer_value(json_object_get(json_object_get(d, "dataset"), "samples")), 3);
			CHECK_EQ(json_array_size(json_object_get(d, "scorers")), 2);
		}
		if (g->types[i] == RF_EV_SCORE && !strcmp(jstr(d, "scorer"), "rubric"))
			CHECK(json_real_value(json_object_get(json_object_get(d, "value"), "style")) == 0.5);
		if (g->types[i] == RF_EV_MODEL_CALL) {
			CHECK(!strcmp(jstr(d, "model"), "mockllm/model"));
			CHECK(json_integer_value(json_object_get(d, "input_tokens")) >= 100);
			CHECK(json_real_value(json_object_get(d, "completed")) >
			      json_real_value(json_object_get(d, "timestamp")));
		}
	}
	printf("every type: %d records, all %d types decoded\n", g->n, RF_EV_TRACE_SPAN_START - 1);
	rf_test_got_reset(g);
}

static void test_values(rf_producer *p, rf_ring *cons, struct got *g)
{
	rf_rec r;
	CHECK_EQ(rf_rec_begin(p, &r, RF_EV_TOOL_CALL, 64), 0); /* a tiny claim: must move */
	rf_rec_str(&r, "s", "héllo");
	rf_rec_int(&r, "neg", -1234567890123ll);
	rf_rec_int(&r, "big", INT64_MAX);
	rf_rec_double(&r, "pi", 3.25);
	rf_rec_double(&r, "nan", NAN);
	rf_rec_bool(&r, "t", true);
	rf_rec_nil(&r, "none");
	rf_rec_bin(&r, "bin", "\x01\x02", 2);
	static const uint8_t packed[] = {0x92, 0x01, 0xa1, 'x'}; /* [1, "x"] */
	rf_rec_msgpack(&r, "raw", packed, sizeof packed);
	rf_rec_map_begin(&r, "nested");
	rf_rec_array_begin(&r, "list");
	for (int i = 0; i < 100; i++)
		rf_rec_int(&r, NULL, i);
	rf_rec_array_end(&r);
	rf_rec_map_begin(&r, "empty");
	rf_rec_map_end(&r);
	rf_rec_map_end(&r);
	/* Redaction: by key (also a whole nested value), by prefix, by value. */
	rf_rec_str(&r, "api_key", "sk-live-123");
	rf_rec_str(&r, "OPENAI_API_KEY", "anything");
	rf_rec_str(&r, "x-api-key", "k");
	rf_rec_map_begin(&r, "credentials");
	rf_rec_str(&r, "user", "u");
	rf_rec_map_end(&r);
	rf_rec_str(&r, "header", "Bearer abc.def");
	CHECK_EQ(rf_producer_add_secret(p, "CANARY-SECRET-42"), 0);
	rf_rec_str(&r, "prompt", "please use CANARY-SECRET-42 now");
	rf_rec_int(&r, "max_tokens", 5);      /* *_tokens are counts, kept */
	rf_rec_int(&r, "input_tokens", 7);
	/* Truncation keeps the original size and a valid UTF-8 prefix. */
	size_t big = 40000;
	char *text = malloc(big + 1);
	for (size_t i = 0; i < big; i += 2)
		memcpy(text + i, "\xc3\xa9", 2); /* é */
	text[big] = 0;
	rf_rec_str(&r, "long", text);
	free(text);
	CHECK_EQ(rf_rec_end(&r), 0);

	rf_test_drain(cons, g, 1024);
	CHECK_EQ(g->n, 1);
	json_t *d = g->data[0];
	CHECK(!strcmp(jstr(d, "s"), "héllo"));
	CHECK_EQ(json_integer_value(json_object_get(d, "neg")), -1234567890123ll);
	CHECK_EQ(json_integer_value(json_object_get(d, "big")), INT64_MAX);
	CHECK(json_real_value(json_object_get(d, "pi")) == 3.25);
	CHECK(!strcmp(jstr(d, "nan"), "NaN"));
	CHECK(json_is_true(json_object_get(d, "t")));
	CHECK(json_is_null(json_object_get(d, "none")));
	CHECK(!strcmp(jstr(json_object_get(d, "bin"), "$bin"), "0102"));
	CHECK_EQ(json_integer_value(json_array_get(json_object_get(d, "raw"), 0)), 1);
	json_t *nested = json_object_get(d, "nested");
	CHECK_EQ(json_array_size(json_object_get(nested, "list")), 100);
	CHECK_EQ(json_integer_value(json_array_get(json_object_get(nested, "list"), 99)), 99);
	CHECK_EQ(json_object_size(json_object_get(nested, "empty")), 0);
	const char *red[] = {"api_key", "OPENAI_API_KEY", "x-api-key", "credentials", "header",
			     "prompt"};
	for (size_t i = 0; i < sizeof red / sizeof *red; i++) {
		if (!jstr(d, red[i]) || strcmp(jstr(d, red[i]), "[REDACTED]"))
			fprintf(stderr, "not redacted: %s\n", red[i]);
		CHECK(jstr(d, red[i]) && !strcmp(jstr(d, red[i]), "[REDACTED]"));
	}
	CHECK_EQ(json_integer_value(json_object_get(d, "max_tokens")), 5);
	CHECK_EQ(json_integer_value(json_object_get(d, "input_tokens")), 7);
	json_t *lng = json_object_get(d, "long");
	CHECK(json_is_true(json_object_get(lng, "truncated")));
	CHECK_EQ(json_integer_value(json_object_get(lng, "bytes")), big);
	const char *prefix = jstr(lng, "text"); /* jansson validated the UTF-8 */
	CHECK(prefix && strlen(prefix) <= 16384 && strlen(prefix) >= 16382);
	struct rf_producer_stats st;
	rf_producer_stats(p, &st);
	CHECK(st.redacted >= 6);
	CHECK_EQ(st.truncated, 1);
	printf("values: all kinds, nesting, move out of a small claim, redaction, truncation\n");
	rf_test_got_reset(g);
}

static void test_errors(rf_producer *p, rf_ring *cons, struct got *g)
{
	struct rf_producer_stats before, after;
	rf_producer_stats(p, &before);
	rf_rec r;
	/* Too deep. */
	CHECK_EQ(rf_rec_begin(p, &r, RF_EV_LOG, 0), 0);
	for (int i = 0; i < RF_REC_MAX_DEPTH + 2; i++)
		rf_rec_map_begin(&r, "d");
	CHECK_EQ(rf_rec_end(&r), -E2BIG);
	CHECK(strstr(rf_errmsg(), "nested too deeply"));
	/* Larger than the ring's maximum record. */
	CHECK_EQ(rf_rec_begin(p, &r, RF_EV_LOG, 0), 0);
	char *chunk = calloc(1, 8000);
	memset(chunk, 'a', 7999);
	for (int i = 0; i < 400; i++)
		rf_rec_bin(&r, NULL, chunk, 7999);
	free(chunk);
	CHECK_EQ(rf_rec_end(&r), -EMSGSIZE);
	/* Unbalanced. */
	CHECK_EQ(rf_rec_begin(p, &r, RF_EV_LOG, 0), 0);
	rf_rec_array_begin(&r, "a");
	CHECK_EQ(rf_rec_end(&r), -EINVAL);
	/* A good record still goes through afterwards; the failed ones never. */
	CHECK_EQ(rf_rec_begin(p, &r, RF_EV_LOG, 0), 0);
	rf_rec_str(&r, "message", "after errors");
	CHECK_EQ(rf_rec_end(&r), 0);
	rf_test_drain(cons, g, 1024);
	CHECK_EQ(g->n, 1);
	CHECK(!strcmp(jstr(g->data[0], "message"), "after errors"));
	rf_producer_stats(p, &after);
	CHECK_EQ(after.errors - before.errors, 3);
	printf("errors: too deep, too large, unbalanced reported and counted; nothing half-written\n");
	rf_test_got_reset(g);
}

static rf_producer *shared;
static atomic_int emitters_done; /* threads that returned, failed or not */

static void *emit_2000(int id)
{
	for (int i = 0; i < 2000; i++) {
		rf_rec r;
		if (rf_rec_begin(shared, &r, RF_EV_MODEL_CALL, 0))
			return (void *)1;
		rf_rec_int(&r, "thread", id);
		rf_rec_int(&r, "seq", i);
		rf_rec_str(&r, "pad", i % 7 ? "x" : "a somewhat longer string to vary sizes....");
		if (rf_rec_end(&r))
			return (void *)1;
	}
	return NULL;
}

static void *emitter(void *arg)
{
	void *res = emit_2000((int)(intptr_t)arg);
	atomic_fetch_add(&emitters_done, 1);
	return res;
}

static void test_threads_and_fork(rf_producer *p, rf_ring *cons, struct got *g)
{
	shared = p;
	pthread_t th[4];
	for (intptr_t i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, emitter, (void *)i), 0);
	int next[5] = {0};
	int total = 0;
	for (bool last = false; total < 8000 && !last;) {
		/* Once every thread returned, their last spilled records are
		 * flushed into the ring's order and one more drain reads the
		 * rest: a lost record fails the test instead of hanging it. */
		last = atomic_load(&emitters_done) == 4;
		if (last && rf_producer_flush(p) == -ENOSPC)
			last = false; /* the ring is still full: drain, then again */
		rf_test_drain(cons, g, 1024);
		for (int i = 0; i < g->n; i++) {
			int t = (int)json_integer_value(json_object_get(g->data[i], "thread"));
			CHECK(t >= 0 && t < 4);
			CHECK_EQ(json_integer_value(json_object_get(g->data[i], "seq")), next[t]);
			next[t]++;
		}
		total += g->n;
		rf_test_got_reset(g);
	}
	for (int i = 0; i < 4; i++) {
		void *res;
		pthread_join(th[i], &res);
		CHECK(res == NULL);
	}
	CHECK_EQ(total, 8000);
	/* Fork: the child keeps using the parent's handle (re-registers itself). */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		rf_rec r;
		for (int i = 0; i < 100; i++) {
			if (rf_rec_begin(p, &r, RF_EV_LOG, 0))
				_exit(1);
			rf_rec_str(&r, "who", "child");
			rf_rec_int(&r, "seq", i);
			if (rf_rec_end(&r))
				_exit(1);
		}
		rf_producer_close(p);
		_exit(0);
	}
	rf_rec r;
	CHECK_EQ(rf_rec_begin(p, &r, RF_EV_LOG, 0), 0);
	rf_rec_str(&r, "who", "parent");
	CHECK_EQ(rf_rec_end(&r), 0);
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	rf_test_drain(cons, g, 1024);
	int child = 0, parent = 0;
	for (int i = 0; i < g->n; i++) {
		const char *who = jstr(g->data[i], "who");
		if (!strcmp(who, "child")) {
			CHECK_EQ(json_integer_value(json_object_get(g->data[i], "seq")), child);
			child++;
		} else {
			parent++;
		}
	}
	CHECK_EQ(child, 100);
	CHECK_EQ(parent, 1);
	printf("threads: 4 x 2000 records in per-thread order; fork: child's 100 + parent's 1\n");
	rf_test_got_reset(g);
}

int main(void)
{
	char ring[64];
	rf_ring *cons = rf_test_open_consumer(ring, "producer", 1u << 20);
	static struct got g;
	test_every_type(ring, cons, &g);
	rf_producer *p;
	struct rf_producer_opts po = {.ring = ring};
	CHECK_EQ(rf_producer_open(&p, &po), 0);
	test_values(p, cons, &g);
	test_errors(p, cons, &g);
	test_threads_and_fork(p, cons, &g);
	rf_producer_close(p);
	rf_ring_close(cons);
	rf_ring_unlink(ring);
	return RF_T_PASS;
}
