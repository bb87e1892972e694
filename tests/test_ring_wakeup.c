/*
 * test_ring_wakeup - the parked-consumer handshake never loses a wakeup.
 *
 * Ping-pong between a producer thread and a consumer thread that waits with
 * a 5 s park timeout.  The producer sends one record, then waits for the
 * consumer's acknowledgement; it varies its pause before each send so the
 * record lands while the consumer spins, yields, is about to park, or sleeps.
 * A lost wakeup (the classic bug when either side's full fence is missing)
 * leaves the consumer asleep with a record ready until its timeout: any round
 * trip near the timeout is a lost wakeup.  Also runs under TSan, where the
 * threads share one process.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "rf_arch.h"
#include "rf_ring.h"
#include "rf_test.h"

#define PARK_TIMEOUT_NS 5000000000ull

static rf_ring *cons;
static _Atomic uint64_t acked;
static _Atomic int done;
static _Atomic uint64_t timeouts_with_data;

static int on_rec(const struct rf_ring_rec *rec, void *arg)
{
	(void)arg;
	uint64_t v;
	memcpy(&v, rec->data, 8);
	atomic_store_explicit(&acked, v, memory_order_release);
	return 0;
}

static void *consumer(void *arg)
{
	(void)arg;
	while (!atomic_load(&done)) {
		uint64_t t0 = rf_test_now_ns();
		int ready = rf_ring_wait(cons, PARK_TIMEOUT_NS);
		if (ready && rf_test_now_ns() - t0 >= PARK_TIMEOUT_NS)
			atomic_fetch_add(&timeouts_with_data, 1); /* slept through a record */
		if (rf_ring_consume(cons, on_rec, NULL, 64) < 0)
			return (void *)1;
	}
	return NULL;
}

int main(void)
{
	char name[64];
	rf_test_ring_name(name, sizeof name, "wake");
	struct rf_ring_opts o = {.capacity = 1u << 16, .flags = RF_RING_CREATE | RF_RING_CONSUMER};
	CHECK_EQ(rf_ring_open(&cons, name, &o), 0);
	/* One handle for both threads: ThreadSanitizer tracks virtual
	 * addresses, so a second mapping would hide the handshake from it. */
	rf_ring *prod = cons;
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, consumer, NULL), 0);

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	const uint64_t rounds = 2000;
#else
	const uint64_t rounds = 20000;
#endif
	uint64_t worst = 0, stuck = 0, seed = 88172645463325252ull;
	for (uint64_t i = 1; i <= rounds; i++) {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		/* Pauses from none to past the consumer's spin/yield phase. */
		unsigned pause = (unsigned)(seed % 8);
		if (pause >= 6)
			usleep((useconds_t)(20 + seed % 200));
		else
			for (unsigned k = 0; k < pause * 500; k++)
				rf_cpu_relax();
		uint64_t t0 = rf_test_now_ns();
		CHECK_EQ(rf_ring_write(prod, 1, &i, sizeof i), 0);
		while (atomic_load_explicit(&acked, memory_order_acquire) != i) {
			if (rf_test_now_ns() - t0 > 3 * PARK_TIMEOUT_NS) {
				fprintf(stderr, "record %llu never consumed\n", (unsigned long long)i);
				return RF_T_FAIL;
			}
			sched_yield();
		}
		uint64_t rt = rf_test_now_ns() - t0;
		if (rt > worst)
			worst = rt;
		if (rt >= PARK_TIMEOUT_NS / 2)
			stuck++;
	}
	atomic_store(&done, 1);
	uint64_t one = 0;
	CHECK_EQ(rf_ring_write(prod, 1, &one, sizeof one), 0); /* wake it to exit */
	void *res;
	pthread_join(th, &res);
	CHECK(res == NULL);
	struct rf_ring_stats st;
	rf_ring_stats(cons, &st);
	printf("wakeup: %llu round trips, %llu futex wakes, worst %.1f us, lost wakeups %llu\n",
	       (unsigned long long)rounds, (unsigned long long)st.wakeups, (double)worst / 1e3,
	       (unsigned long long)(stuck + atomic_load(&timeouts_with_data)));
	CHECK_EQ(stuck, 0);
	CHECK_EQ(atomic_load(&timeouts_with_data), 0);
	CHECK(st.wakeups > 0); /* the consumer really parked and was woken */
	rf_ring_close(cons);
	rf_ring_unlink(name);
	return RF_T_PASS;
}
