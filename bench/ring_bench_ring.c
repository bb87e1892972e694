/*
 * ring_bench_ring.c - the ring workload of ring_bench: producer threads
 * claim, fill in place and commit; the consumer process drains with
 * rf_ring_consume / rf_ring_wait and checks every record.
 */
#include "ring_bench.h"

static inline __attribute__((always_inline)) enum send_result
ring_send(struct thread_arg *a, void *ctx, uint64_t seq)
{
	(void)ctx;
	const size_t bytes = a->run->bytes;
	struct rf_ring_claim c;
	int rc = rf_ring_claim(a->ring, REC_TYPE, bytes, &c);
	if (rc == -EAGAIN)
		return SEND_FULL;
	if (rc < 0) {
		sh_fail(a->run->sh, "rf_ring_claim: %s (%s)", strerror(-rc), rf_ring_errmsg());
		return SEND_FAIL;
	}
	rec_fill(c.data, bytes, a->tid, seq);
	rc = rf_ring_commit(a->ring, &c);
	if (rc < 0) {
		sh_fail(a->run->sh, "rf_ring_commit: %s (%s)", strerror(-rc), rf_ring_errmsg());
		return SEND_FAIL;
	}
	return SEND_OK;
}

void *ring_producer_thread(void *p)
{
	producer_loop(p, ring_send, NULL);
	return NULL;
}

static int ring_handler(const struct rf_ring_rec *rec, void *arg)
{
	struct verifier *v = arg;
	if (rec->flags & RF_RING_REC_SPILLED)
		v->spilled++;
	rec_check(v, rec->data, rec->len);
	return 0;
}

void ring_consumer_process(struct run *run)
{
	struct shared *sh = run->sh;
	struct verifier v = { .sh = sh, .bytes = run->bytes, .nthreads = run->nthreads };
	rf_ring *ring = NULL;
	bool ok = true;

	child_setup();
	struct rf_ring_opts ro = {
		.capacity = run->o->capacity,
		.flags = RF_RING_CREATE | RF_RING_CONSUMER,
		.full_policy = RF_RING_FULL_WAIT,
		.full_wait_ns = run->o->full_wait_ns,
	};
	int rc = rf_ring_open(&ring, run->name, &ro);
	if (rc < 0) {
		sh_fail(sh, "consumer: rf_ring_open(%s, CREATE|CONSUMER): %s (%s)", run->name,
			strerror(-rc), rf_ring_errmsg());
		atomic_store(&sh->consumer_state, -1);
		_exit(1);
	}
	atomic_store(&sh->consumer_state, 1);

	uint64_t last_progress = mono_ns();
	for (;;) {
		int n = rf_ring_consume(ring, ring_handler, &v, run->o->batch);
		if (n < 0) {
			sh_fail(sh, "rf_ring_consume: %s (%s)", strerror(-n), rf_ring_errmsg());
			ok = false;
			break;
		}
		if (n > 0) {
			last_progress = 0;
			continue;
		}
		int idle = consumer_idle(sh, run, v.consumed, &last_progress, "record");
		if (idle) {
			ok = idle > 0;
			break;
		}
		rf_ring_wait(ring, 1000 * 1000);
	}
	if (rf_ring_stats(ring, &sh->rstats) == 0)
		sh->have_rstats = 1;
	rf_ring_close(ring);
	consumer_finish(sh, &v, ok);
	_exit(ok ? 0 : 1);
}
