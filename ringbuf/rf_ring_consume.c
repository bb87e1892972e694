/*
 * rf_ring_consume.c - the consumer side: batches, dead-claim recovery, waits.
 *
 * The consumer reads committed records from head in order, hands them to the
 * caller, zeroes the space they used (free space is always zero: that is how
 * "0 = not yet written" stays reliable) and publishes the new head with one
 * release store per batch.
 *
 * A record at head that stays uncommitted (len <= 0) past stall_check_ns is
 * examined: if no live thread holds a claim that could cover it, the claimant
 * died between claim and commit and the record becomes padding (counted in
 * `abandoned`).  A live claimant, however slow, is always waited for.
 */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rf_arch.h"
#include "rf_err.h"
#include "rf_ring_int.h"

/* Is any live thread claiming a position below `end`?  Conservative: a live
 * thread with any such position (even a stale one from a failed CAS) makes
 * us wait; that state lasts only a few instructions. */
static bool rf_ring_claimants_alive(rf_ring *r, uint64_t end)
{
	for (uint32_t i = 0; i < RF_RING_SLOTS; i++) {
		struct rf_ring_slot *s = slot_at(r, i);
		uint64_t owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
		if (!owner)
			continue;
		/* Acquire: pairs with the producer's release store of IDLE after
		 * its commit in finish(): idle here means len > 0 is visible. */
		uint64_t pos = atomic_load_explicit(&s->pos, memory_order_acquire);
		if (pos == RF_POS_IDLE || pos >= end)
			continue;
		uint64_t start = atomic_load_explicit(&s->start_time, memory_order_relaxed);
		if (rf_thread_alive((pid_t)(owner >> 32), (pid_t)(uint32_t)owner, start))
			return true;
	}
	return false;
}

/* End of the all-zero run starting at head (a claimant that died before its
 * first header store wrote nothing), stopping at tail or the buffer's end. */
static uint64_t zero_run_end(rf_ring *r, uint64_t head, uint64_t tail)
{
	uint64_t limit = head + (r->cap - (head & r->mask));
	if (limit > head + r->max_claim) /* never pad more than one claim at a time */
		limit = head + r->max_claim;
	if (limit > tail)
		limit = tail;
	uint64_t p = head;
	/* Acquire: pairs with the release stores of committed and padding
	 * headers (finish(), rf_ring_claim_ring()); an in-progress header is a
	 * relaxed store, and any non-zero value is all this needs: it ends the
	 * run, and its claimant's slot is what decides. */
	while (p < limit && atomic_load_explicit(rf_rec_len(r, p), memory_order_acquire) == 0)
		p += RF_RING_ALIGN;
	return p;
}

/* The record at head is not committed.  Returns 1 if it was turned into
 * padding (the claimant is dead), 0 to keep waiting, -1 if its header is
 * one no claimant wrote (an impossible length) and no live thread claims
 * there: damage, for rf_ring_skip_corrupt(). */
static int recover_head(rf_ring *r, uint64_t head)
{
	uint64_t now = rf_now_ns();
	if (r->stall_pos != head) {
		r->stall_pos = head;
		r->stall_since = now;
		r->stall_next_check = now + r->stall_check_ns;
		return 0;
	}
	if (now < r->stall_next_check)
		return 0;
	r->stall_next_check = now + r->stall_check_ns;

	/* Acquire: pairs with the producers' release CAS on tail; every slot
	 * store made before a claim below tail is now visible. */
	uint64_t tail = atomic_load_explicit(&r->shm->tail, memory_order_acquire);
	if (tail == head)
		return 0;
	int32_t len = atomic_load_explicit(rf_rec_len(r, head), memory_order_acquire);
	if (len > 0)
		return 1; /* committed meanwhile */
	uint64_t end;
	if (len < 0) {
		end = head + rf_align8((uint64_t)-(int64_t)len);
	} else {
		end = zero_run_end(r, head, tail);
		if (end == head)
			return 0;
	}
	if (end > tail || end - head > r->cap - (head & r->mask) || end - head > r->max_claim) {
		/* Never pad beyond what was claimed; a live claimant at head
		 * rewrites its header when it commits. */
		if (rf_ring_claimants_alive(r, head + RF_RING_ALIGN))
			return 0;
		r->stall_pos = RF_POS_IDLE;
		return atomic_load_explicit(rf_rec_len(r, head), memory_order_acquire) == len ? -1 : 0;
	}
	if (rf_ring_claimants_alive(r, end))
		return 0;
	/* Re-check after the slot scan: a claimant that committed (and went
	 * idle) while we scanned has a header now.  Acquire: pairs with the
	 * producer's release store of len in finish(). */
	int32_t again = atomic_load_explicit(rf_rec_len(r, head), memory_order_acquire);
	if (again != len)
		return again > 0;
	if (len == 0 && zero_run_end(r, head, tail) < end)
		return 0;
	atomic_store_explicit(rf_rec_type(r, head), RF_RING_REC_PAD, memory_order_relaxed);
	/* Release: pairs with our own later acquire load in the batch loop;
	 * keeps the padding header consistent for a restarted consumer too. */
	atomic_store_explicit(rf_rec_len(r, head), (int32_t)(end - head), memory_order_release);
	atomic_fetch_add_explicit(&r->shm->abandoned, 1, memory_order_relaxed);
	r->stall_pos = RF_POS_IDLE;
	return 1;
}

/* Deliver a batch within one lap segment [head, end of buffer) (and below
 * `limit`).  Returns the position after the last record taken; *n counts
 * deliveries, *stop asks to end.  Freeing is release_range()'s job. */
static uint64_t consume_segment(rf_ring *r, uint64_t head, uint64_t limit, rf_ring_handler fn,
				void *arg, unsigned max, unsigned *n, int *stop, int *rc)
{
	uint64_t seg_end = head + (r->cap - (head & r->mask));
	/* Never into bytes of this batch not yet zeroed (the first segment). */
	if (seg_end > limit)
		seg_end = limit;
	uint64_t pos = head;

	while (*n < max && pos < seg_end && !*stop) {
		/* Acquire: pairs with the producer's release store of len in
		 * finish() (or of padding in claim): payload is visible. */
		int32_t len = atomic_load_explicit(rf_rec_len(r, pos), memory_order_acquire);
		if (len <= 0) {
			if (pos != head)
				break;
			int rec = recover_head(r, pos);
			if (rec == 0)
				break;
			if (rec < 0)
				pos = rf_ring_skip_corrupt(r, pos, seg_end, "claimed record header "
							   "with an impossible length", len);
			continue;
		}
		uint64_t size = rf_align8((uint64_t)len);
		int32_t type = atomic_load_explicit(rf_rec_type(r, pos), memory_order_relaxed);
		if ((uint64_t)len < RF_RING_HDR_BYTES || size > r->max_claim || size > seg_end - pos) {
			/* A live claimant at pos commits over whatever was forged. */
			if (rf_ring_claimants_alive(r, pos + RF_RING_ALIGN))
				break;
			pos = rf_ring_skip_corrupt(r, pos, seg_end, "corrupt record header: length",
						   len);
			continue;
		}
		if (!rf_ring_type_ok(type)) {
			/* A length that fits but a type no claim can have: this
			 * record alone is lost. */
			atomic_fetch_add_explicit(&r->shm->corrupt, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&r->shm->corrupt_bytes, size, memory_order_relaxed);
			rf_err_set(EPROTO, "ring %s: record of reserved type %d at position %llu "
				   "skipped", r->name, type, (unsigned long long)pos);
			pos += size;
			continue;
		}
		if (type == RF_RING_REC_PAD) {
			pos = rf_ring_check_pad(r, pos, pos + size);
			continue;
		}
		const uint8_t *payload = r->data + (pos & r->mask) + RF_RING_HDR_BYTES;
		uint32_t plen = (uint32_t)len - RF_RING_HDR_BYTES;
		if (type == RF_RING_REC_SPILL_MARK) {
			int got = rf_spill_ingest_marker(r, pos, payload, plen, fn, arg);
			if (got < 0) {
				*rc = got;
				break; /* marker stays: retried on the next call */
			}
			*n += (unsigned)got;
			*stop = 1; /* free the marker, then remove its file */
		} else {
			struct rf_ring_rec rec = {.pos = pos, .type = type, .len = plen,
						  .data = payload};
			*stop = fn(&rec, arg);
			(*n)++;
		}
		pos += size;
	}
	return pos;
}

/* Free [from, to): zero it (free space is always zero) and publish head with
 * one store.  The range may wrap once. */
static void release_range(rf_ring *r, uint64_t from, uint64_t to)
{
	if (to == from)
		return;
	uint64_t cap = r->cap, off = from & r->mask, len = to - from;
	uint64_t first = len < cap - off ? len : cap - off;
	/* Release: pairs with the acquire load in rf_ring_finish_free() of a
	 * consumer that takes over after we die inside the memset below. */
	atomic_store_explicit(&r->shm->free_to, to, memory_order_release);
	memset(r->data + off, 0, first);
	if (len > first)
		memset(r->data, 0, len - first);
	/* Release: pairs with the producers' acquire load of head in
	 * rf_ring_claim_ring(): the zeroing above is visible before the space
	 * can be claimed again. */
	atomic_store_explicit(&r->shm->head, to, memory_order_release);
	r->head = to;
	r->stall_pos = RF_POS_IDLE;
	if (r->pending_unlink[0]) {
		unlink(r->pending_unlink);
		r->pending_unlink[0] = 0;
	}
}

/* What moves head needs the consumer's handle and no records held (their
 * later release would store head = held_to, behind the new head). */
static int may_move_head(rf_ring *r, const char *op)
{
	if (!(r->flags & RF_RING_CONSUMER))
		return rf_err_set(EINVAL, "ring %s: %s on a handle not opened as consumer",
				  r->name, op);
	if (r->held_to)
		return rf_err_set(EBUSY, "ring %s: records still held: call rf_ring_release() "
				  "first", r->name);
	return 0;
}

/* The consumer's view of head and tail.  Head is the consumer's own value
 * (only it moves head); the segment's copy is rewritten if another process
 * changed it.  Tail is the producers': one outside [head, head + capacity] or
 * not a record boundary was forged, and is put back to head once no live
 * thread is claiming (a claim on a forged tail went wherever it went).
 * Returns the bound of this batch. */
static uint64_t batch_bounds(rf_ring *r, uint64_t *headp)
{
	struct rf_ring_shm *h = r->shm;
	uint64_t head = r->head;
	rf_ring_check_desc(r);
	if (atomic_load_explicit(&h->head, memory_order_relaxed) != head) {
		atomic_fetch_add_explicit(&h->hdr_changed, 1, memory_order_relaxed);
		/* Release: pairs with the producers' acquire load of head, as
		 * every store of head does (the space below it is zero). */
		atomic_store_explicit(&h->head, head, memory_order_release);
	}
	*headp = head;
	/* Acquire: pairs with the producers' release CAS on tail. */
	uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
	if (tail >= head && tail - head <= r->cap && !(tail & (RF_RING_ALIGN - 1)))
		return tail;
	if (tail != r->bad_tail) {
		r->bad_tail = tail;
		atomic_fetch_add_explicit(&h->hdr_changed, 1, memory_order_relaxed);
	}
	if (!rf_ring_claimants_alive(r, UINT64_MAX)) {
		/* Release on success: pairs with the producers' acquire loads of
		 * tail (via their CAS); nothing was written for positions past
		 * head that any live thread will commit. */
		atomic_compare_exchange_strong_explicit(&h->tail, &tail, head, memory_order_release,
							memory_order_relaxed);
	}
	return head;
}

static int consume(rf_ring *r, rf_ring_handler fn, void *arg, unsigned max, bool hold)
{
	int rc = may_move_head(r, "consume");
	if (rc)
		return rc;
	struct rf_ring_shm *h = r->shm;
	atomic_store_explicit(&h->heartbeat_ns, rf_realtime_ns(), memory_order_relaxed);
	pid_t me = getpid();
	if (me != r->consumer_pid) {
		/* A forked child consumes (ringflowd --detach): it holds the
		 * inherited locks, so it is the consumer now. */
		r->consumer_pid = me;
		atomic_store_explicit(&h->consumer_start, rf_thread_start_time(me, me),
				      memory_order_relaxed);
		atomic_store_explicit(&h->consumer_pid, (int32_t)me, memory_order_relaxed);
	}
	uint64_t head;
	const uint64_t tail = batch_bounds(r, &head);
	unsigned n = 0;
	int stop = 0; /* rc is 0 here: the check above passed */
	/* Never past tail: a header beyond it was not written by a claimant. */
	const uint64_t limit = tail;
	uint64_t pos = consume_segment(r, head, limit, fn, arg, max, &n, &stop, &rc);
	/* Reached the end of the buffer: go on from its start (second segment),
	 * up to where this batch began: that space is freed only at the end. */
	if (!rc && !stop && n < max && pos != head && (pos & r->mask) == 0)
		pos = consume_segment(r, pos, limit, fn, arg, max, &n, &stop, &rc);
	if (hold && pos != head) {
		r->held_from = head;
		r->held_to = pos;
	} else {
		release_range(r, head, pos);
	}
	if (rc)
		return rc;
	/* Spill files of producers that died or left while the ring was full:
	 * ingested once the ring is drained, i.e. after all their ring records. */
	if (n == 0 && pos == tail) {
		uint64_t now = rf_now_ns();
		if (now >= r->orphan_next_scan) {
			r->orphan_next_scan = now + 100000000ull;
			int got = rf_spill_ingest_orphans(r, fn, arg);
			if (got < 0)
				return got;
			n += (unsigned)got;
		}
	}
	return (int)n;
}

int rf_ring_consume(rf_ring *r, rf_ring_handler fn, void *arg, unsigned max)
{
	return consume(r, fn, arg, max, false);
}

int rf_ring_consume_held(rf_ring *r, rf_ring_handler fn, void *arg, unsigned max)
{
	return consume(r, fn, arg, max, true);
}

int rf_ring_release(rf_ring *r)
{
	if (!r->held_to)
		return 0;
	release_range(r, r->held_from, r->held_to);
	r->held_from = r->held_to = 0;
	return 0;
}

int rf_ring_resume(rf_ring *r, uint64_t target)
{
	/* A producer moving head would free records nobody read. */
	int rc = may_move_head(r, "resume");
	if (rc)
		return rc;
	uint64_t head;
	uint64_t tail = batch_bounds(r, &head);
	if (target <= head || target > tail)
		return 0;
	/* Walk record by record: target must be a record boundary, and every
	 * record before it must be committed (it was, when it was processed). */
	uint64_t pos = head;
	while (pos < target) {
		/* Acquire: pairs with the producer's release store of len. */
		int32_t len = atomic_load_explicit(rf_rec_len(r, pos), memory_order_acquire);
		if (len <= 0 || (uint64_t)len < RF_RING_HDR_BYTES)
			return rf_err_set(EINVAL, "ring %s: resume position %llu is not after "
					  "committed records", r->name, (unsigned long long)target);
		uint64_t next = pos + rf_align8((uint64_t)len);
		uint64_t seg_end = pos + (r->cap - (pos & r->mask));
		if (next > seg_end)
			return rf_err_set(EPROTO, "ring %s: corrupt record header at position "
					  "%llu (length %d)", r->name, (unsigned long long)pos,
					  len);
		pos = next;
	}
	if (pos != target)
		return rf_err_set(EINVAL, "ring %s: resume position %llu is not a record boundary",
				  r->name, (unsigned long long)target);
	release_range(r, head, target);
	return 0;
}

void rf_ring_finish_free(rf_ring *r)
{
	struct rf_ring_shm *h = r->shm;
	uint64_t head = atomic_load_explicit(&h->head, memory_order_relaxed);
	/* Acquire: pairs with the release store of free_to in release_range(). */
	uint64_t to = atomic_load_explicit(&h->free_to, memory_order_acquire);
	/* Acquire: pairs with the producers' release CAS on tail. */
	uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
	/* Only a predecessor's release can be completed: whole records, never
	 * past tail (a forged free_to would zero records nobody read). */
	if (head & (RF_RING_ALIGN - 1))
		return; /* a forged head: batch_bounds() puts it back */
	r->head = head;
	if (to > head && to - head <= r->cap && to <= tail && !(to & (RF_RING_ALIGN - 1)))
		release_range(r, head, to);
}

static bool head_ready(rf_ring *r)
{
	uint64_t head = r->head;
	/* Acquire: pairs with the producers' release CAS on tail; a header at
	 * or past tail was not written by a claimant and is no record. */
	if (atomic_load_explicit(&r->shm->tail, memory_order_acquire) == head)
		return false;
	/* Acquire: pairs with the producer's release store of len. */
	return atomic_load_explicit(rf_rec_len(r, head), memory_order_acquire) > 0;
}

int rf_ring_wait(rf_ring *r, uint64_t timeout_ns)
{
	struct rf_ring_shm *h = r->shm;
	uint64_t start = rf_now_ns();
	/* Spin, then yield: cheap while records arrive steadily. */
	for (int i = 0; i < 200; i++) {
		if (head_ready(r))
			return 1;
		if (i < 100)
			rf_cpu_relax();
		else
			sched_yield();
	}
	for (;;) {
		uint64_t now = rf_now_ns();
		if (now - start >= timeout_ns)
			return head_ready(r);
		uint64_t left = timeout_ns - (now - start);
		/* Claims in flight: wake up in time to check their claimants. */
		uint64_t head = r->head;
		if (atomic_load_explicit(&h->tail, memory_order_relaxed) != head &&
		    left > r->stall_check_ns)
			left = r->stall_check_ns;
		atomic_store_explicit(&h->parked, 1, memory_order_relaxed);
		/* Full fence: pairs with the producer's seq_cst fence in
		 * rf_ring_wake_consumer().  Our parked = 1 store is ordered
		 * before the re-check, so a commit we miss here sees parked. */
		atomic_thread_fence(memory_order_seq_cst);
		if (head_ready(r)) {
			atomic_store_explicit(&h->parked, 0, memory_order_relaxed);
			return 1;
		}
		struct timespec ts = {(time_t)(left / 1000000000ull), (long)(left % 1000000000ull)};
		syscall(SYS_futex, &h->parked, FUTEX_WAIT, 1, &ts, NULL, 0);
		atomic_store_explicit(&h->parked, 0, memory_order_relaxed);
		if (head_ready(r))
			return 1;
		if (atomic_load_explicit(&h->tail, memory_order_relaxed) != r->head)
			return 1; /* let consume() run stall recovery */
	}
}

int rf_ring_park(rf_ring *r, uint32_t **uaddr, uint32_t *val)
{
	struct rf_ring_shm *h = r->shm;
	atomic_store_explicit(&h->parked, 1, memory_order_relaxed);
	/* Full fence: pairs with the producer's seq_cst fence in
	 * rf_ring_wake_consumer(), exactly as in rf_ring_wait(). */
	atomic_thread_fence(memory_order_seq_cst);
	if (head_ready(r)) {
		atomic_store_explicit(&h->parked, 0, memory_order_relaxed);
		return 0;
	}
	*uaddr = (uint32_t *)&h->parked;
	*val = 1;
	return 1;
}

void rf_ring_unpark(rf_ring *r)
{
	atomic_store_explicit(&r->shm->parked, 0, memory_order_relaxed);
}
