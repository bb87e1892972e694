/*
 * test_trace_pace - the in-flight limit of trace requests
 * (sidecar/trace/rf_trace_pace.c) against simulated servers: W workers
 * serving FIFO, 25 ms (+-20%) per request, the client keeping `limit`
 * requests in flight.  The limit must settle where the server is used and
 * nothing much queues: 2-4 for one worker (more would only queue), W+1..W+3
 * for W workers, with throughput near W x one worker's; a server that turns
 * slower does not make it grow; it never leaves [RF_PACE_MIN, RF_PACE_MAX].
 */
#include "rf_trace_pace.h"
#include "rf_test.h"

#define SERVICE_US 25000

static uint64_t rng = 88172645463325252ull;
static uint64_t xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct sim {
	int workers;
	uint64_t free_at[64]; /* when each worker is next free (us) */
	uint64_t now_us;
	uint64_t done;
};

/* Run `us` of simulated time; returns the limit at the end. */
static int run(struct rf_trace_pace *p, struct sim *s, uint64_t us, uint64_t service_us, int *lo,
	       int *hi)
{
	/* in-flight requests: their answer times */
	uint64_t due[RF_PACE_MAX + 1], sent[RF_PACE_MAX + 1];
	int alone[RF_PACE_MAX + 1];
	int n = 0;
	uint64_t end = s->now_us + us;
	*lo = RF_PACE_MAX, *hi = 0;
	while (s->now_us < end) {
		while (n < rf_trace_pace_limit(p)) { /* send: the earliest free worker takes it (FIFO) */
			int w = 0;
			for (int i = 1; i < s->workers; i++)
				if (s->free_at[i] < s->free_at[w])
					w = i;
			uint64_t start = s->free_at[w] > s->now_us ? s->free_at[w] : s->now_us;
			uint64_t svc = service_us * 8 / 10 + xorshift() % (service_us * 4 / 10 + 1);
			s->free_at[w] = start + svc;
			alone[n] = n == 0;
			sent[n] = s->now_us, due[n] = start + svc, n++;
		}
		int first = 0; /* the next answer */
		for (int i = 1; i < n; i++)
			if (due[i] < due[first])
				first = i;
		s->now_us = due[first];
		rf_trace_pace_answer(p, due[first] - sent[first], alone[first], s->now_us / 1000);
		s->done++;
		due[first] = due[n - 1], sent[first] = sent[n - 1], alone[first] = alone[n - 1], n--;
		CHECK(p->limit >= RF_PACE_MIN && p->limit <= RF_PACE_MAX);
		if (s->now_us > end - us / 2 && !p->probing) { /* settled: the second half */
			*lo = p->limit < *lo ? p->limit : *lo;
			*hi = p->limit > *hi ? p->limit : *hi;
		}
	}
	return p->limit;
}

static double rate(int workers, int *lo, int *hi)
{
	struct rf_trace_pace p;
	rf_trace_pace_init(&p);
	struct sim s = {.workers = workers};
	run(&p, &s, 60000000, SERVICE_US, lo, hi);
	return (double)s.done / 60.0;
}

int main(void)
{
	int lo, hi;
	double one = rate(1, &lo, &hi);
	printf("test_trace_pace: 1 worker: %.1f answers/s, limit %d-%d\n", one, lo, hi);
	CHECK(lo >= RF_PACE_MIN && hi <= 4);
	CHECK(one > 0.9 * 1e6 / SERVICE_US);
	for (int w = 2; w <= 8; w *= 2) {
		double r = rate(w, &lo, &hi);
		printf("test_trace_pace: %d workers: %.1f answers/s (%.2fx one), limit %d-%d\n", w, r,
		       r / one, lo, hi);
		CHECK(lo >= w && hi <= w + 4);
		CHECK(r > 0.85 * w * one);
	}

	/* The server turns 3x slower (a bigger database, another client):
	 * one worker's limit must not grow for it. */
	struct rf_trace_pace p;
	rf_trace_pace_init(&p);
	struct sim s = {.workers = 1};
	run(&p, &s, 30000000, SERVICE_US, &lo, &hi);
	run(&p, &s, 60000000, 3 * SERVICE_US, &lo, &hi);
	printf("test_trace_pace: 1 worker turned 3x slower: limit %d-%d\n", lo, hi);
	CHECK(lo >= RF_PACE_MIN && hi <= 4);
	return RF_T_PASS;
}
