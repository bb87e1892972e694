/*
 * trace_bench - the C tracing API's cost in the calling thread.
 *
 *   trace_bench [--size 10k|1m] [--traces N] [--repeats R]
 *
 * Each trace is a root CHAIN span and spans-1 LLM children, each child with
 * a string input and a string output; sizes are chosen so a trace is about
 * 10 KB (10 spans, ~1 KB each) or 1 MB (100 spans, ~10 KB each).  A consumer
 * thread drains the ring (a private one of the default 16 MiB) as the
 * sidecar would, so the ring never fills; the ring is written three times
 * over before measuring, so its pages are mapped, as in a running program.
 * Caller cost = CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID) in
 * the traced code minus the same code with tracing disabled, per span.  Prints one JSON line per size:
 * {"bench":"trace","lang":"c","impl":"ringflow","trace_bytes":...,
 *  "ns_per_span":..., ...} with the median of R repeats.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rf_ring.h"
#include "ringflow.h"

static _Atomic bool stop;
static _Atomic uint64_t consumed_bytes, consumed_recs;

static int on_rec(const struct rf_ring_rec *rec, void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&consumed_bytes, rec->len, memory_order_relaxed);
	atomic_fetch_add_explicit(&consumed_recs, 1, memory_order_relaxed);
	return 0;
}

static void *consumer(void *arg)
{
	rf_ring *c = arg;
	while (!atomic_load(&stop) || rf_ring_consume(c, on_rec, NULL, 4096) > 0) {
		int n = rf_ring_consume(c, on_rec, NULL, 4096);
		if (n == 0)
			rf_ring_wait(c, 1000000);
	}
	return NULL;
}

static void one_trace(int spans, int i);
static int cmp_d(const void *a, const void *b);

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread (excludes time other processes on this
 * shared machine take the CPU away, includes everything the thread does). */
static uint64_t now_ns(void)
{
	return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* Median wall time per trace of n traces: robust to preemption, which on a
 * loaded machine lands in a few traces' windows, not in most. */
static double median_trace_ns(int n, int spans)
{
	static double *t;
	static int cap;
	if (cap < n) {
		free(t);
		t = malloc(sizeof *t * (size_t)n);
		cap = n;
	}
	for (int i = 0; i < n; i++) {
		uint64_t a = clock_ns(CLOCK_MONOTONIC);
		one_trace(spans, i);
		t[i] = (double)(clock_ns(CLOCK_MONOTONIC) - a);
	}
	qsort(t, (size_t)n, sizeof *t, cmp_d);
	return t[n / 2];
}

static char *in_text, *out_text;
static volatile uint64_t sink;

/* The traced program: what an application does around its spans. */
static void one_trace(int spans, int i)
{
	rf_span *root = rf_span_start("pipeline", RF_SPAN_CHAIN, RF_KVS(RF_INT("request", i)));
	for (int k = 1; k < spans; k++) {
		rf_span *s = rf_span_start("generate", RF_SPAN_LLM,
					   RF_KVS(RF_STR("prompt", in_text), RF_INT("step", k)));
		sink += (uint64_t)k; /* the "work" */
		rf_span_end(s, RF_KVS(RF_STR(NULL, out_text)));
	}
	rf_span_end(root, RF_KVS(RF_STR(NULL, "done")));
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *size = "10k";
	int traces = 0, repeats = 5;
	bool no_consumer = false;
	size_t text_arg = 0;
	int spans_arg = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size = argv[++i];
		else if (!strcmp(argv[i], "--traces") && i + 1 < argc)
			traces = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--text") && i + 1 < argc) /* bytes of input and of output */
			text_arg = (size_t)atol(argv[++i]);
		else if (!strcmp(argv[i], "--spans") && i + 1 < argc)
			spans_arg = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-consumer")) /* diagnosis: ring must hold it all */
			no_consumer = true;
		else if (!strcmp(argv[i], "--repeats") && i + 1 < argc)
			repeats = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: trace_bench [--size 10k|1m] [--traces N] [--repeats R]\n");
			return 2;
		}
	}
	bool big = !strcmp(size, "1m");
	int spans = spans_arg ? spans_arg : big ? 100 : 10;
	size_t text = text_arg ? text_arg : big ? 5000 : 450; /* input and output per child span */
	if (!traces)
		traces = (int)(200000000 / ((size_t)spans * (2 * text + 150))) + 1;
	in_text = malloc(text + 1);
	out_text = malloc(text + 1);
	for (size_t i = 0; i < text; i++) {
		in_text[i] = (char)('a' + i % 26);
		out_text[i] = (char)('A' + i % 26);
	}
	in_text[text] = out_text[text] = 0;

	char ring[64];
	snprintf(ring, sizeof ring, "/rf-trace-bench-%d", (int)getpid());
	rf_ring *cons;
	struct rf_ring_opts ro = {.capacity = 16u << 20, .flags = RF_RING_CREATE | RF_RING_CONSUMER,
				  .full_policy = RF_RING_FULL_WAIT, .full_wait_ns = 10000000000ull};
	if (rf_ring_open(&cons, ring, &ro)) {
		fprintf(stderr, "trace_bench: %s\n", rf_ring_errmsg());
		return 1;
	}
	rf_producer *p;
	struct rf_producer_opts po = {.ring = ring, .full_policy = RF_RING_FULL_WAIT,
				      .full_wait_ns = 10000000000ull};
	if (rf_producer_open(&p, &po)) {
		fprintf(stderr, "trace_bench: %s\n", rf_errmsg());
		return 1;
	}
	rf_trace_set_producer(p);
	rf_trace_set_sample_rate(1.0);
	pthread_t th;
	if (!no_consumer)
		pthread_create(&th, NULL, consumer, cons);

	double *ns = calloc((size_t)repeats, sizeof *ns), *base = calloc((size_t)repeats, sizeof *base);
	double *wall = calloc((size_t)repeats, sizeof *wall), *wbase = calloc((size_t)repeats, sizeof *wbase);
	uint64_t bytes0 = 0, bytes1 = 0, recs0 = 0, recs1 = 0;
	int warm = (int)((48u << 20) / ((size_t)spans * 2 * text + 200)) + 1;
	for (int w = 0; w < warm; w++) /* claim-size hints, the ring's pages */
		one_trace(spans, w);
	struct rf_producer_stats ps;
	for (int r = 0; r < repeats; r++) {
		rf_trace_enable(false);
		uint64_t t0 = now_ns();
		for (int i = 0; i < traces; i++)
			one_trace(spans, i);
		base[r] = (double)(now_ns() - t0) / ((double)traces * spans);
		rf_trace_enable(true);
		/* start with a drained ring */
		do {
			rf_producer_stats(p, &ps);
		} while (!no_consumer && atomic_load(&consumed_recs) < ps.records);
		bytes0 = atomic_load(&consumed_bytes);
		recs0 = atomic_load(&consumed_recs);
		t0 = now_ns();
		for (int i = 0; i < traces; i++)
			one_trace(spans, i);
		ns[r] = (double)(now_ns() - t0) / ((double)traces * spans) - base[r];
		do { /* the bytes of these traces, once the consumer has them all */
			rf_producer_stats(p, &ps);
		} while (!no_consumer && atomic_load(&consumed_recs) < ps.records);
		bytes1 = atomic_load(&consumed_bytes);
		recs1 = atomic_load(&consumed_recs);
		int m = traces < 20000 ? traces : 20000;
		wall[r] = median_trace_ns(m, spans) / spans;
		rf_trace_enable(false);
		wbase[r] = median_trace_ns(m, spans) / spans;
		wall[r] -= wbase[r];
		rf_trace_enable(true);
	}
	atomic_store(&stop, true);
	if (!no_consumer)
		pthread_join(th, NULL);
	struct rf_producer_stats st;
	rf_producer_stats(p, &st);
	struct rf_trace_stats ts;
	rf_trace_stats(&ts);
	qsort(ns, (size_t)repeats, sizeof *ns, cmp_d);
	qsort(base, (size_t)repeats, sizeof *base, cmp_d);
	qsort(wall, (size_t)repeats, sizeof *wall, cmp_d);
	/* Bytes of the last repeat's records (payloads + 8-byte headers). */
	double per_trace = (double)(bytes1 - bytes0 + 8 * (recs1 - recs0)) / traces;
	printf("{\"bench\":\"trace\",\"lang\":\"c\",\"impl\":\"ringflow\",\"size\":\"%s\","
	       "\"trace_bytes\":%.0f,\"spans_per_trace\":%d,\"traces\":%d,\"repeats\":%d,"
	       "\"ns_per_span\":%.1f,\"ns_per_span_runs\":[%.1f,%.1f],\"cpu_ns_per_span\":%.1f,"
	       "\"cpu_ns_per_span_runs\":[%.1f,%.1f],\"ns_untraced_per_span\":%.2f,"
	       "\"records_errors\":%llu,\"ring_spilled\":%llu}\n",
	       size, per_trace, spans, traces, repeats, wall[repeats / 2], wall[0], wall[repeats - 1],
	       ns[repeats / 2], ns[0], ns[repeats - 1], wbase[repeats / 2], (unsigned long long)(st.errors + ts.errors),
	       (unsigned long long)st.ring_spilled);
	rf_trace_set_producer(NULL);
	rf_producer_close(p);
	rf_ring_close(cons);
	rf_ring_unlink(ring);
	free(ns);
	free(base);
	free(wall);
	free(wbase);
	free(in_text);
	free(out_text);
	return st.errors + ts.errors ? 1 : 0;
}
