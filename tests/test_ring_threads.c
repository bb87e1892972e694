/*
 * test_ring_threads - producers and the consumer as threads of one process,
 * so ThreadSanitizer sees both sides of every handshake: claim/commit vs
 * consume, head/head_cache, the spill path's lock and marker, thread-exit slot
 * release.  Small ring, random sizes, spill policy: verifies per-thread order,
 * no loss, no duplicate, intact payloads.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <zlib.h>

#include "rf_ring.h"
#include "rf_test.h"

#define THREADS 4
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define PER_THREAD 20000
#else
#define PER_THREAD 200000
#endif

struct payload {
	uint32_t thread;
	uint32_t crc;
	uint64_t seq;
};

static rf_ring *prod;
static _Atomic int producers_left = THREADS;

static void *producer(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	uint64_t x = 0x9e3779b97f4a7c15ull * (id + 1);
	for (uint64_t seq = 0; seq < PER_THREAD; seq++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t len = sizeof(struct payload) + (x % 16 == 0 ? x % 3000 : x % 200);
		struct rf_ring_claim c;
		int rc = rf_ring_claim(prod, 1 + (int32_t)(x % 3), len, &c);
		if (rc) {
			fprintf(stderr, "claim: %s\n", rf_ring_errmsg());
			exit(RF_T_FAIL);
		}
		if (x % 97 == 0) { /* aborted claims are never delivered */
			rf_ring_abort(prod, &c);
			seq--;
			continue;
		}
		uint8_t *d = c.data;
		for (size_t i = sizeof(struct payload); i < len; i++)
			d[i] = (uint8_t)(seq * 31 + i);
		struct payload p = {id, 0, seq};
		p.crc = (uint32_t)crc32(0, d + sizeof p, (uInt)(len - sizeof p));
		memcpy(d, &p, sizeof p);
		if (rf_ring_commit(prod, &c)) {
			fprintf(stderr, "commit: %s\n", rf_ring_errmsg());
			exit(RF_T_FAIL);
		}
	}
	atomic_fetch_sub(&producers_left, 1);
	return NULL;
}

struct verify {
	uint64_t next[THREADS];
	uint64_t total, spilled;
};

static int on_rec(const struct rf_ring_rec *rec, void *arg)
{
	struct verify *v = arg;
	struct payload p;
	CHECK(rec->len >= sizeof p);
	memcpy(&p, rec->data, sizeof p);
	CHECK(p.thread < THREADS);
	CHECK_EQ(p.seq, v->next[p.thread]);
	const uint8_t *d = rec->data;
	CHECK_EQ(p.crc, (uint32_t)crc32(0, d + sizeof p, (uInt)(rec->len - sizeof p)));
	v->next[p.thread]++;
	v->total++;
	if (rec->flags & RF_RING_REC_SPILLED)
		v->spilled++;
	return 0;
}

int main(void)
{
	char name[64], spool[128];
	rf_test_ring_name(name, sizeof name, "threads");
	rf_test_spool_dir(spool, sizeof spool, "threads");
	struct rf_ring_opts o = {.capacity = 1u << 17, .flags = RF_RING_CREATE | RF_RING_CONSUMER,
				 .spool_dir = spool, .full_wait_ns = 200000};
	rf_ring *cons;
	CHECK_EQ(rf_ring_open(&cons, name, &o), 0);
	/* One handle (one mapping) for both sides: ThreadSanitizer tracks
	 * virtual addresses, and two mappings of one segment would hide every
	 * handshake from it. */
	prod = cons;
	pthread_t th[THREADS];
	for (uintptr_t i = 0; i < THREADS; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, producer, (void *)i), 0);
	struct verify v = {0};
	uint64_t want = (uint64_t)THREADS * PER_THREAD, idle_since = 0;
	while (v.total < want) {
		int got = rf_ring_consume(cons, on_rec, &v, 1024);
		CHECK(got >= 0);
		if (got == 0) {
			if (atomic_load(&producers_left) == 0) {
				/* The producers' last burst may have ended on the
				 * spill file: seal it (its marker goes in the ring). */
				rf_ring_flush_spill(prod);
				if (!idle_since)
					idle_since = rf_test_now_ns();
				CHECK(rf_test_now_ns() - idle_since < 10000000000ull);
			}
			rf_ring_wait(cons, 10000000);
		} else {
			idle_since = 0;
		}
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	struct rf_ring_stats st;
	rf_ring_stats(cons, &st);
	printf("threads: %llu records from %d threads in order, %llu via spill, %llu wakeups\n",
	       (unsigned long long)v.total, THREADS, (unsigned long long)v.spilled,
	       (unsigned long long)st.wakeups);
	CHECK_EQ(st.head, st.tail);
	CHECK_EQ(st.dropped + st.spill_failed + st.spill_corrupt + st.abandoned, 0);
	CHECK_EQ(st.spill_ingested, st.spilled);
	CHECK_EQ(v.spilled, st.spilled);
	rf_ring_close(cons);
	rf_ring_unlink(name);
	rf_test_rm_rf(spool);
	return RF_T_PASS;
}
