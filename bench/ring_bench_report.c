/*
 * ring_bench_report.c - measuring and reporting for ring_bench: the timer
 * (rdtsc calibrated against CLOCK_MONOTONIC, or clock_gettime), histogram
 * percentiles, and the one JSON line per configuration.
 */
#include "ring_bench.h"

const char *const transport_name[] = { "ring", "unix_dgram" };

bool g_use_tsc;
double g_ns_per_tick = 1.0;
double g_timer_overhead_ns, g_timer_res_ns = NAN;

void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void timer_calibrate(void)
{
	if (!g_use_tsc) {
		g_ns_per_tick = 1.0;
		return;
	}
	uint64_t m0 = mono_ns(), c0 = ticks();
	sleep_ns(100 * 1000 * 1000);
	uint64_t m1 = mono_ns(), c1 = ticks();
	if (c1 <= c0) { /* a TSC that does not move: fall back */
		g_use_tsc = false;
		g_ns_per_tick = 1.0;
		return;
	}
	g_ns_per_tick = (double)(m1 - m0) / (double)(c1 - c0);
}

/* Representative value (middle) of bucket i. */
double h_value(unsigned i)
{
	if (i < 2 * H_SUB)
		return (double)i;
	unsigned g = i / H_SUB - 1;
	uint64_t low = ((uint64_t)(H_SUB + i % H_SUB)) << g;
	return (double)low + (double)((1ull << g) - 1) / 2.0;
}

double percentile(const uint64_t *hist, uint64_t n, double q)
{
	if (n == 0)
		return NAN;
	uint64_t rank = (uint64_t)ceil(q * (double)n);
	if (rank < 1)
		rank = 1;
	uint64_t cum = 0;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		cum += hist[i];
		if (cum >= rank)
			return h_value(i) * g_ns_per_tick;
	}
	return NAN;
}

static void print_num(const char *key, double v, int prec)
{
	if (isfinite(v))
		printf(",\"%s\":%.*f", key, prec, v);
	else
		printf(",\"%s\":null", key);
}

static int cmp_rps(const void *a, const void *b)
{
	const struct result *x = *(const struct result *const *)a;
	const struct result *y = *(const struct result *const *)b;
	double u = isfinite(x->rps) ? x->rps : -1, v = isfinite(y->rps) ? y->rps : -1;
	return u < v ? -1 : u > v;
}

/* One JSON line for `n` runs of a configuration: the figures of the run with
 * the median throughput, loss and errors summed over every run. */
int report(const struct opts *o, enum transport tr, unsigned producers,
	   unsigned threads, size_t bytes, struct result *runs, unsigned n)
{
	const struct result *sorted[MAX_REPEAT];
	uint64_t lost = 0, corrupt = 0, ooo = 0, eagain = 0;
	bool ok = true;
	const char *err = NULL;
	for (unsigned i = 0; i < n; i++) {
		sorted[i] = &runs[i];
		lost += runs[i].lost;
		corrupt += runs[i].corrupt;
		ooo += runs[i].out_of_order;
		eagain += runs[i].eagain;
		ok = ok && runs[i].ok;
		if (!err && runs[i].errmsg[0])
			err = runs[i].errmsg;
	}
	qsort(sorted, n, sizeof sorted[0], cmp_rps);
	const struct result *r = sorted[(n - 1) / 2]; /* lower median for even n */

	printf("{\"bench\":\"ring\",\"transport\":\"%s\",\"producers\":%u,\"threads\":%u,"
	       "\"record_bytes\":%zu,\"records\":%" PRIu64,
	       transport_name[tr], producers, threads, bytes, r->consumed);
	print_num("records_per_s", r->rps, 0);
	print_num("mb_per_s", r->rps * (double)bytes / 1e6, 1);
	print_num("p50_ns", r->p50, 1);
	print_num("p99_ns", r->p99, 1);
	print_num("p999_ns", r->p999, 1);
	print_num("max_ns", r->pmax, 0);
	print_num("mean_ns", r->mean, 1);
	printf(",\"lost\":%" PRIu64 ",\"committed\":%" PRIu64 ",\"corrupt\":%" PRIu64
	       ",\"out_of_order\":%" PRIu64 ",\"eagain\":%" PRIu64,
	       lost, r->committed, corrupt, ooo, eagain);
	print_num("wall_s", r->wall_s, 4);
	printf(",\"repeat\":%u,\"records_per_s_runs\":[", n);
	for (unsigned i = 0; i < n; i++) {
		if (i)
			putchar(',');
		if (isfinite(runs[i].rps))
			printf("%.0f", runs[i].rps);
		else
			printf("null");
	}
	printf("]");
	printf(",\"samples\":%" PRIu64 ",\"sample_every\":%u,\"timer\":\"%s\"", r->samples,
	       o->sample_every, g_use_tsc ? "rdtsc" : "clock_gettime");
	print_num("timer_overhead_ns", g_timer_overhead_ns, 1);
	print_num("timer_resolution_ns", g_timer_res_ns, 1);
	if (o->records)
		printf(",\"mode\":\"count\",\"records_per_thread\":%" PRIu64, o->records);
	else
		printf(",\"mode\":\"duration\",\"seconds\":%.3f", o->seconds);
	if (tr == T_RING) {
		printf(",\"capacity\":%zu,\"full_wait_ns\":%" PRIu64 ",\"spilled_records\":%" PRIu64,
		       o->capacity, o->full_wait_ns, r->spilled_recs);
		if (r->have_rstats)
			printf(",\"spilled\":%" PRIu64 ",\"dropped\":%" PRIu64
			       ",\"claim_timeouts\":%" PRIu64 ",\"abandoned\":%" PRIu64
			       ",\"wakeups\":%" PRIu64,
			       r->rstats.spilled, r->rstats.dropped, r->rstats.claim_timeouts,
			       r->rstats.abandoned, r->rstats.wakeups);
	} else {
		printf(",\"sndbuf\":%d,\"rcvbuf\":%d", r->sndbuf, r->rcvbuf);
	}
	printf(",\"ok\":%s", ok ? "true" : "false");
	if (err)
		printf(",\"error\":\"%s\"", err);
	printf("}\n");
	fflush(stdout);
	return ok ? 0 : 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Median cost of one timer read, measured back to back. */
double measure_timer_overhead(void)
{
	enum { N = 20001 };
	static uint64_t d[N];
	for (unsigned i = 0; i < N; i++) {
		uint64_t a = ticks();
		uint64_t b = ticks();
		d[i] = b - a;
	}
	qsort(d, N, sizeof d[0], cmp_u64);
	for (unsigned i = 0; i < N; i++)
		if (d[i]) { /* smallest step the timer shows */
			g_timer_res_ns = (double)d[i] * g_ns_per_tick;
			break;
		}
	return (double)d[N / 2] * g_ns_per_tick;
}
