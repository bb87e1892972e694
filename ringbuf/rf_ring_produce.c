/*
 * rf_ring_produce.c - the producer side: claim, commit, abort.
 *
 * Hot path (ring has room, consumer awake): one relaxed store to this thread's
 * slot, one CAS on tail, the header store, the caller's payload writes, two
 * release stores and one full fence at commit.  No syscall, no malloc.
 *
 * Claimant registry: each producing thread owns a 64-byte slot in the segment
 * holding (pid, tid, start time) and the position it is claiming.  The slot is
 * written before the tail CAS and cleared after the commit, so at any moment
 * every claimed-but-uncommitted record is covered by a slot; the consumer uses
 * this to tell a dead claimant from a slow one (rf_ring_consume.c).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rf_err.h"
#include "rf_ring_int.h"

/* ---- per-thread slot cache ---- */

#define RF_TLS_RINGS 8

struct rf_tls_slot {
	uint64_t ring_id;
	uint32_t slot;
	uint32_t fork_gen;
};

static __thread struct rf_tls_slot rf_tls[RF_TLS_RINGS];
static __thread pid_t rf_tls_tid;
static __thread uint32_t rf_tls_fork_gen;

static _Atomic uint32_t rf_fork_gen = 1;
static pthread_once_t rf_once = PTHREAD_ONCE_INIT;
static pthread_key_t rf_key;

/* Open handles, so a thread-exit destructor never touches an unmapped ring. */
static pthread_mutex_t rf_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static rf_ring *rf_reg[64];

static void on_fork_child(void)
{
	/* The child's threads have new tids: every cached slot is stale. */
	atomic_fetch_add_explicit(&rf_fork_gen, 1, memory_order_relaxed);
	pthread_mutex_init(&rf_reg_lock, NULL);
}

static uint64_t my_owner(void)
{
	return (uint64_t)(uint32_t)getpid() << 32 | (uint32_t)rf_tls_tid;
}

static void release_tls_slots(void *unused)
{
	(void)unused;
	if (rf_tls_fork_gen != atomic_load_explicit(&rf_fork_gen, memory_order_relaxed))
		return;
	uint64_t me = my_owner();
	pthread_mutex_lock(&rf_reg_lock);
	for (int i = 0; i < RF_TLS_RINGS; i++) {
		for (size_t k = 0; rf_tls[i].ring_id && k < 64; k++) {
			rf_ring *r = rf_reg[k];
			if (r && r->id == rf_tls[i].ring_id) {
				uint64_t exp = me;
				struct rf_ring_slot *s = slot_at(r, rf_tls[i].slot);
				atomic_compare_exchange_strong(&s->owner, &exp, 0);
			}
		}
		rf_tls[i].ring_id = 0;
	}
	pthread_mutex_unlock(&rf_reg_lock);
}

static void init_once(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
	pthread_key_create(&rf_key, release_tls_slots);
}

static void registry_add(rf_ring *r)
{
	pthread_mutex_lock(&rf_reg_lock);
	for (size_t k = 0; k < 64; k++)
		if (!rf_reg[k] || rf_reg[k] == r) {
			rf_reg[k] = r;
			break;
		}
	pthread_mutex_unlock(&rf_reg_lock);
}

void rf_ring_release_slots(rf_ring *r)
{
	pthread_mutex_lock(&rf_reg_lock);
	for (size_t k = 0; k < 64; k++)
		if (rf_reg[k] == r)
			rf_reg[k] = NULL;
	pthread_mutex_unlock(&rf_reg_lock);
	/* Free every slot this process took on this ring, whichever thread. */
	uint32_t pid = (uint32_t)getpid();
	for (uint32_t i = 0; i < RF_RING_SLOTS; i++) {
		struct rf_ring_slot *s = slot_at(r, i);
		uint64_t o = atomic_load_explicit(&s->owner, memory_order_relaxed);
		if (o && (uint32_t)(o >> 32) == pid)
			atomic_compare_exchange_strong(&s->owner, &o, 0);
	}
}

/* Take a free slot, or one whose owner is dead.  Slow path: once per thread. */
static int take_slot(rf_ring *r, uint32_t *out)
{
	pthread_once(&rf_once, init_once);
	uint32_t gen = atomic_load_explicit(&rf_fork_gen, memory_order_relaxed);
	if (rf_tls_fork_gen != gen) {
		memset(rf_tls, 0, sizeof rf_tls);
		rf_tls_tid = rf_gettid();
		rf_tls_fork_gen = gen;
	}
	uint64_t me = my_owner();
	uint64_t start = rf_thread_start_time(getpid(), rf_tls_tid);
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < RF_RING_SLOTS; i++) {
			struct rf_ring_slot *s = slot_at(r, i);
			uint64_t o = atomic_load_explicit(&s->owner, memory_order_relaxed);
			if (o != 0) {
				if (pass == 0)
					continue;
				uint64_t st = atomic_load_explicit(&s->start_time, memory_order_relaxed);
				if (rf_thread_alive((pid_t)(o >> 32), (pid_t)(uint32_t)o, st))
					continue;
			}
			/* Any in-flight claim of a dead previous owner is recovered
			 * by the consumer from the record headers alone. */
			if (!atomic_compare_exchange_strong(&s->owner, &o, me))
				continue;
			atomic_store_explicit(&s->start_time, start, memory_order_relaxed);
			/* Release: pairs with the consumer's acquire load of pos in
			 * claimants_alive(); start_time is visible with the slot. */
			atomic_store_explicit(&s->pos, RF_POS_IDLE, memory_order_release);
			*out = i;
			return 0;
		}
	}
	return rf_err_set(EUSERS, "ring %s: all %u producer slots are held by live threads",
			  r->name, RF_RING_SLOTS);
}

static inline struct rf_ring_slot *my_slot(rf_ring *r)
{
	uint32_t gen = atomic_load_explicit(&rf_fork_gen, memory_order_relaxed);
	if (__builtin_expect(rf_tls_fork_gen == gen, 1)) {
		for (int i = 0; i < RF_TLS_RINGS; i++)
			if (rf_tls[i].ring_id == r->id)
				return slot_at(r, rf_tls[i].slot);
	}
	uint32_t idx;
	if (take_slot(r, &idx))
		return NULL;
	registry_add(r);
	pthread_setspecific(rf_key, rf_tls); /* arms the thread-exit release */
	int victim = 0;
	for (int i = 0; i < RF_TLS_RINGS; i++)
		if (rf_tls[i].ring_id == 0) {
			victim = i;
			break;
		}
	rf_tls[victim].ring_id = r->id;
	rf_tls[victim].slot = idx;
	rf_tls[victim].fork_gen = gen;
	return slot_at(r, idx);
}

/* ---- claim / commit ---- */

int rf_ring_claim_ring(rf_ring *r, int32_t type, size_t len, struct rf_ring_claim *c,
		       uint64_t wait_ns)
{
	struct rf_ring_shm *h = r->shm;
	struct rf_ring_slot *slot = my_slot(r);
	if (!slot)
		return -EUSERS;
	/* One outstanding claim per thread per ring: the slot describes one. */
	if (atomic_load_explicit(&slot->pos, memory_order_relaxed) != RF_POS_IDLE)
		return rf_err_set(EBUSY, "ring %s: this thread already holds a claim (commit or "
				  "abort it first)", r->name);
	const uint64_t cap = r->cap; /* validated at open; the segment's copy is not trusted */
	const uint64_t need = RF_RING_HDR_BYTES + len;
	const uint64_t size = rf_align8(need);
	uint64_t deadline = 0;
	unsigned step = 0;

	/* Acquire: pairs with the release store of head_cache below (made by
	 * whichever producer last refreshed it after acquiring head), so the
	 * consumer's zeroing of the space is visible before we write it. */
	uint64_t head = atomic_load_explicit(&h->head_cache, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
	uint64_t pad;
	for (;;) {
		/* Positions are multiples of 8 (claims are); one that is not was
		 * written by someone else, and would put a header across the end
		 * of the data area. */
		if (__builtin_expect(tail & (RF_RING_ALIGN - 1), 0)) {
			atomic_store_explicit(&slot->pos, RF_POS_IDLE, memory_order_relaxed);
			atomic_fetch_add_explicit(&h->hdr_changed, 1, memory_order_relaxed);
			return rf_err_set(EPROTO, "ring %s: tail %llu in shared memory is not a "
					  "record boundary (rewritten by another process)",
					  r->name, (unsigned long long)tail);
		}
		uint64_t to_end = cap - (tail & r->mask);
		pad = size > to_end ? to_end : 0;
		if (tail + pad + size - head > cap) {
			/* Acquire: pairs with the consumer's release store of head
			 * in rf_ring_consume(), after it zeroed the freed space. */
			head = atomic_load_explicit(&h->head, memory_order_acquire);
			/* Release: pairs with the acquire load of head_cache above. */
			atomic_store_explicit(&h->head_cache, head, memory_order_release);
			if (tail + pad + size - head > cap) {
				/* No claim in flight while we wait or give up: a
				 * failed CAS may have left a position in the slot,
				 * and a live thread advertising one below a dead
				 * claim would keep the consumer from recovering it
				 * (and so keep this wait from ever ending). */
				atomic_store_explicit(&slot->pos, RF_POS_IDLE, memory_order_relaxed);
				if (wait_ns == 0)
					return -ENOSPC;
				uint64_t now = rf_now_ns();
				if (!deadline)
					deadline = now + wait_ns;
				else if (now >= deadline)
					return -ENOSPC;
				rf_backoff(&step);
				tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
				continue;
			}
		}
		/* Relaxed: published by the release CAS just below; the consumer
		 * acquires tail before it reads slots (release sequence on tail). */
		atomic_store_explicit(&slot->pos, tail, memory_order_relaxed);
		/* Release on success: pairs with the consumer's acquire load of
		 * tail in recover_head(); makes the slot store above visible. */
		if (atomic_compare_exchange_weak_explicit(&h->tail, &tail, tail + pad + size,
							  memory_order_release,
							  memory_order_relaxed))
			break;
	}
	if (pad) {
		/* The claim also covers the tail fragment: fill it with padding.
		 * Release: pairs with the consumer's acquire load of len. */
		atomic_store_explicit(rf_rec_type(r, tail), RF_RING_REC_PAD, memory_order_relaxed);
		atomic_store_explicit(rf_rec_len(r, tail), (int32_t)pad, memory_order_release);
	}
	uint64_t pos = tail + pad;
	/* Negative length = claimed, in progress.  Relaxed: it carries no data;
	 * the consumer only learns that the record is not ready yet. */
	atomic_store_explicit(rf_rec_type(r, pos), type, memory_order_relaxed);
	atomic_store_explicit(rf_rec_len(r, pos), -(int32_t)need, memory_order_relaxed);
	c->data = r->data + (pos & r->mask) + RF_RING_HDR_BYTES;
	c->len = (uint32_t)len;
	c->_flags = 0;
	c->_pos = pos;
	return 0;
}

int rf_ring_claim(rf_ring *r, int32_t type, size_t len, struct rf_ring_claim *c)
{
	if (type < 1 || type > RF_RING_TYPE_MAX || !c)
		return rf_err_set(EINVAL, "ring %s: record type %d outside 1..%d", r->name, type,
				  RF_RING_TYPE_MAX);
	if (len > r->max_record)
		return rf_err_set(EMSGSIZE, "ring %s: record of %zu bytes exceeds the maximum "
				  "%llu", r->name, len, (unsigned long long)r->max_record);
	/* Once spilling, stay on the spill file until a marker can be placed,
	 * so one producer's records never overtake each other. */
	if (__builtin_expect(atomic_load_explicit(&r->spill.active, memory_order_relaxed), 0) &&
	    rf_spill_try_leave(r) != 0)
		return rf_spill_claim(r, type, len, c);

	uint64_t wait = r->full_policy == RF_RING_FULL_DROP ? 0 : r->full_wait_ns;
	uint64_t broken = atomic_load_explicit(&r->spill.broken_until, memory_order_relaxed);
	if (__builtin_expect(broken != 0, 0)) {
		if (rf_now_ns() < broken)
			wait = 0;
		else
			atomic_store_explicit(&r->spill.broken_until, 0, memory_order_relaxed);
	}
	int rc = rf_ring_claim_ring(r, type, len, c, wait);
	if (__builtin_expect(rc != -ENOSPC, 1))
		return rc;
	switch (r->full_policy) {
	case RF_RING_FULL_DROP:
		atomic_fetch_add_explicit(&r->shm->dropped, 1, memory_order_relaxed);
		return rf_err_set(ENOBUFS, "ring %s full: record dropped (drop policy)", r->name);
	case RF_RING_FULL_WAIT:
		atomic_fetch_add_explicit(&r->shm->claim_timeouts, 1, memory_order_relaxed);
		return rf_err_set(EAGAIN, "ring %s full for %llu ns", r->name,
				  (unsigned long long)r->full_wait_ns);
	default:
		return rf_spill_claim(r, type, len, c);
	}
}

void rf_ring_wake_consumer(rf_ring *r)
{
	struct rf_ring_shm *h = r->shm;
	/* Full fence: pairs with the consumer's seq_cst fence in rf_ring_wait()
	 * between its store of parked = 1 and its re-check of the head record.
	 * Either we see parked = 1 here, or the consumer sees our commit. */
	atomic_thread_fence(memory_order_seq_cst);
	if (__builtin_expect(atomic_load_explicit(&h->parked, memory_order_relaxed) == 0, 1))
		return;
	/* Exchange: of many committers, only one makes the syscall. */
	if (atomic_exchange_explicit(&h->parked, 0, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&h->wakeups, 1, memory_order_relaxed);
		syscall(SYS_futex, &h->parked, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	}
}

static int finish(rf_ring *r, struct rf_ring_claim *c, bool abort, size_t used)
{
	if (!c || !c->data)
		return rf_err_set(EINVAL, "ring %s: commit of a claim that is not held", r->name);
	if (used > c->len)
		return rf_err_set(EINVAL, "ring %s: commit of %zu bytes exceeds the claim of %u",
				  r->name, used, c->len);
	if (c->_flags & RF_CLAIM_SPILL) {
		c->len = (uint32_t)used;
		int rc = rf_spill_commit(r, c, abort);
		c->data = NULL;
		return rc;
	}
	uint64_t pos = c->_pos;
	uint32_t need = RF_RING_HDR_BYTES + c->len;
	if (abort)
		atomic_store_explicit(rf_rec_type(r, pos), RF_RING_REC_PAD, memory_order_relaxed);
	if (used < c->len) {
		/* Shrink: the unused aligned tail of the claim becomes padding.
		 * Release: pairs with the consumer's acquire load of len; it is
		 * written before the record's own len, so it is never seen as
		 * unwritten space after the record is visible. */
		uint64_t keep = rf_align8(RF_RING_HDR_BYTES + (uint64_t)used);
		uint64_t size = rf_align8(need);
		if (keep < size) {
			/* The release store of the padding's len below pairs with the
			 * consumer's acquire load of len (as every header does). */
			atomic_store_explicit(rf_rec_type(r, pos + keep), RF_RING_REC_PAD,
					      memory_order_relaxed);
			atomic_store_explicit(rf_rec_len(r, pos + keep), (int32_t)(size - keep),
					      memory_order_release);
		}
		need = RF_RING_HDR_BYTES + (uint32_t)used;
	}
	/* Release: pairs with the consumer's acquire load of len in
	 * rf_ring_consume(): the payload and type are visible before len > 0. */
	atomic_store_explicit(rf_rec_len(r, pos), (int32_t)need, memory_order_release);
	/* Release: pairs with the consumer's acquire load of slot->pos in
	 * claimants_alive(); a consumer that sees the slot idle sees len > 0. */
	struct rf_ring_slot *slot = my_slot(r);
	atomic_store_explicit(&slot->pos, RF_POS_IDLE, memory_order_release);
	c->data = NULL;
	rf_ring_wake_consumer(r);
	return 0;
}

int rf_ring_commit(rf_ring *r, struct rf_ring_claim *c)
{
	return finish(r, c, false, c ? c->len : 0);
}

int rf_ring_commit_len(rf_ring *r, struct rf_ring_claim *c, size_t len)
{
	return finish(r, c, false, len);
}

int rf_ring_abort(rf_ring *r, struct rf_ring_claim *c)
{
	return finish(r, c, true, c ? c->len : 0);
}

int rf_ring_flush_spill(rf_ring *r)
{
	if (__builtin_expect(!atomic_load_explicit(&r->spill.active, memory_order_relaxed), 1))
		return 0;
	return rf_spill_try_leave(r) ? -ENOSPC : 0;
}

int rf_ring_write(rf_ring *r, int32_t type, const void *data, size_t len)
{
	struct rf_ring_claim c;
	int rc = rf_ring_claim(r, type, len, &c);
	if (rc)
		return rc;
	memcpy(c.data, data, len);
	return rf_ring_commit(r, &c);
}
