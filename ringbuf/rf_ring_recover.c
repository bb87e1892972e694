/*
 * rf_ring_recover.c - the consumer's way past damaged records.
 *
 * Every process that maps the ring can write anywhere in it: a buggy or
 * hostile same-user producer (or a group member on a 0660 ring) can leave a
 * committed header whose length makes no sense, a reserved type, or a
 * padding record laid over committed records.  None of that may stop the
 * consumer, and none of it may pass silently.
 *
 * Record boundaries the consumer can trust without reading a header: the
 * start of each lap of the buffer (records never straddle its end), tail
 * (every value tail takes is the end of a claim) and the position in a
 * claimant's slot (a value once read from tail).  From a damaged header at
 * `pos`, the nearest such boundary above it is the target; between them, the
 * first position from which a chain of well-formed headers lands exactly on
 * the target is where delivery goes on (found backwards in one pass, so the
 * work is linear in the distance).  What lies before it is skipped and
 * counted (`corrupt`, `corrupt_bytes`).  The skipped bytes are freed with the
 * batch, so a restarted consumer never meets the same damage again.
 */
#include <errno.h>
#include <stdlib.h>

#include "rf_err.h"
#include "rf_ring_int.h"

bool rf_ring_type_ok(int32_t type)
{
	return (type >= 1 && type <= RF_RING_TYPE_MAX) || type == RF_RING_REC_PAD ||
	       type == RF_RING_REC_SPILL_MARK;
}

/* The nearest trusted boundary in (pos, limit]; limit (the end of the lap
 * or tail, whichever is lower) is one. */
static uint64_t next_boundary(rf_ring *r, uint64_t pos, uint64_t limit)
{
	uint64_t t = limit;
	for (uint32_t i = 0; i < RF_RING_SLOTS; i++) {
		struct rf_ring_slot *s = slot_at(r, i);
		if (!atomic_load_explicit(&s->owner, memory_order_relaxed))
			continue;
		/* Acquire: pairs with the producer's release store of pos in
		 * take_slot() / after its commit, as in claimants_alive(). */
		uint64_t p = atomic_load_explicit(&s->pos, memory_order_acquire);
		if (p > pos && p < t && !(p & (RF_RING_ALIGN - 1)))
			t = p;
	}
	return t;
}

/* Extent of a well-formed header at q (committed, or claimed when `claims`),
 * 0 if there is none. */
static uint64_t header_extent(rf_ring *r, uint64_t q, bool claims, bool *user)
{
	/* Acquire: pairs with the producers' release store of len (finish()). */
	int32_t len = atomic_load_explicit(rf_rec_len(r, q), memory_order_acquire);
	int32_t type = atomic_load_explicit(rf_rec_type(r, q), memory_order_relaxed);
	uint64_t n;
	if (len > 0)
		n = (uint64_t)len;
	else if (len < 0 && claims)
		n = (uint64_t)-(int64_t)len;
	else
		return 0;
	if (n < RF_RING_HDR_BYTES || n > r->max_claim || !rf_ring_type_ok(type))
		return 0;
	*user = len > 0 && type >= 1;
	return rf_align8(n);
}

/* The first q in (pos, target] from which well-formed headers chain exactly
 * to target (target itself when none does).  With `need_user`, only chains
 * of committed records holding at least one user record count (what a
 * padding record must not hide). */
static uint64_t first_chain(rf_ring *r, uint64_t pos, uint64_t target, bool claims,
			    bool need_user)
{
	uint64_t words = (target - pos) / RF_RING_ALIGN; /* <= capacity / 8 */
	if (words < 2)
		return target;
	/* Two bits per word: reaches target; a user record on the way. */
	uint8_t *reach = calloc(words / 4 + 1, 1);
	if (!reach)
		return target;
#define RF_BIT(i, b) ((reach[(i) / 4] >> (((i) % 4) * 2 + (b))) & 1u)
#define RF_SET(i, b) (reach[(i) / 4] |= (uint8_t)(1u << (((i) % 4) * 2 + (b))))
	RF_SET(words, 0);
	uint64_t best = target;
	for (uint64_t i = words - 1; i >= 1; i--) {
		bool user = false;
		uint64_t n = header_extent(r, pos + i * RF_RING_ALIGN, claims, &user);
		uint64_t j = i + n / RF_RING_ALIGN;
		if (n && j <= words && RF_BIT(j, 0)) {
			RF_SET(i, 0);
			if (user || RF_BIT(j, 1))
				RF_SET(i, 1);
			if (!need_user || RF_BIT(i, 1))
				best = pos + i * RF_RING_ALIGN;
		}
	}
#undef RF_BIT
#undef RF_SET
	free(reach);
	return best;
}

static void count(rf_ring *r, uint64_t bytes)
{
	atomic_fetch_add_explicit(&r->shm->corrupt, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->shm->corrupt_bytes, bytes, memory_order_relaxed);
}

uint64_t rf_ring_skip_corrupt(rf_ring *r, uint64_t pos, uint64_t limit, const char *why,
			      int64_t val)
{
	uint64_t target = next_boundary(r, pos, limit);
	uint64_t q = first_chain(r, pos, target, true, false);
	count(r, q - pos);
	rf_err_set(EPROTO, "ring %s: %s (%lld) at position %llu; %llu bytes skipped to the next "
		   "whole record at %llu", r->name, why, (long long)val, (unsigned long long)pos,
		   (unsigned long long)(q - pos), (unsigned long long)q);
	return q;
}

uint64_t rf_ring_check_pad(rf_ring *r, uint64_t pos, uint64_t end)
{
	/* Padding made by the library holds zeros (the end-of-buffer fill),
	 * an aborted or unused part of one claim, or a dead claim's bytes:
	 * never a chain of committed records ending where the padding ends. */
	if (end - pos <= RF_RING_ALIGN)
		return end;
	uint64_t q = first_chain(r, pos, end, false, true);
	if (q == end)
		return end;
	count(r, q - pos);
	rf_err_set(EPROTO, "ring %s: padding at position %llu (%llu bytes) covers committed "
		   "records from %llu: delivered, and the padding's own %llu bytes counted as "
		   "corrupt", r->name, (unsigned long long)pos, (unsigned long long)(end - pos),
		   (unsigned long long)q, (unsigned long long)(q - pos));
	return q;
}
