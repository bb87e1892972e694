/*
 * rf_ring_int.h - private: the shared-memory layout and the handle.
 *
 * Segment layout (all offsets fixed by RF_RING_VERSION):
 *
 *   0       +--------------------------------------------+
 *           | descriptor (read-mostly, 128 B)            |  magic, version, sizes
 *   128     | tail        (producers CAS)                |  each hot field on its
 *   256     | head_cache  (producers, advisory)          |  own 128 B slot: no
 *   384     | head        (consumer release-stores)      |  false sharing, and no
 *   512     | consumer    (parked futex word, pid, beat) |  adjacent-line prefetch
 *   640     | counters    (spilled, dropped, ...)        |  pairs either
 *   1024    | spool_dir[256]                             |
 *   4096    | slots[RF_RING_SLOTS] x 64 B                |  claimant registry
 *   69632   +--------------------------------------------+
 *           | data area: capacity bytes (power of two)   |  records
 *           +--------------------------------------------+
 *
 * Every record starts 8-byte aligned with an 8-byte header:
 *
 *   int32 len   > 0 committed: header + payload bytes (unaligned)
 *               < 0 claimed, not yet committed: -(header + payload)
 *               = 0 not written (free space is always zero)
 *   int32 type  user type >= 1, or RF_RING_REC_PAD / RF_RING_REC_SPILL_MARK
 *
 * The next record starts at align8(|len|).
 */
#ifndef RF_RING_INT_H
#define RF_RING_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rf_clock.h"
#include "rf_ring.h"

#define RF_RING_MAGIC 0x31474e4952465200ull /* "\0RFRING1" little-endian */
#define RF_RING_VERSION 1u
#define RF_RING_SLOTS 1024u
#define RF_RING_SLOTS_OFF 4096u
#define RF_RING_DATA_OFF (RF_RING_SLOTS_OFF + RF_RING_SLOTS * 64u)

#define RF_RING_REC_PAD (-1)        /* skip: end-of-buffer fill, abort, dead claim */
#define RF_RING_REC_SPILL_MARK (-2) /* payload: struct rf_spill_mark */

#define RF_POS_IDLE UINT64_MAX /* slot has no claim in flight */

#define RF_CACHELINE_PAIR 128
#define RF_PATH_MAX 512 /* spool dir (256) + file name (96) + suffixes */

struct rf_ring_slot {
	/* (pid << 32 | tid) of the owning thread, 0 = free.  CAS to take. */
	_Atomic uint64_t owner;
	/* Owner's start time (clock ticks since boot, /proc stat field 22):
	 * tells a recycled tid from the original owner. */
	_Atomic uint64_t start_time;
	/* Ring position this thread is claiming or holds uncommitted, or
	 * RF_POS_IDLE.  Set before the tail CAS, cleared after commit. */
	_Atomic uint64_t pos;
	uint8_t _pad[64 - 24];
};

struct rf_ring_shm {
	/* descriptor: written once by the creator, magic last (release) */
	_Atomic uint64_t magic;
	uint32_t version;
	uint32_t data_off;
	uint64_t capacity;
	uint64_t max_record;
	uint32_t slot_count;
	uint32_t flags;
	uint64_t created_ns;
	uint8_t _pad0[RF_CACHELINE_PAIR - 48];

	_Atomic uint64_t tail;
	uint8_t _pad1[RF_CACHELINE_PAIR - 8];

	_Atomic uint64_t head_cache;
	uint8_t _pad2[RF_CACHELINE_PAIR - 8];

	_Atomic uint64_t head;
	/* Where the consumer is freeing up to, stored before it zeroes a batch:
	 * a consumer killed mid-zeroing is completed by its successor (head is
	 * then never behind a half-zeroed batch). */
	_Atomic uint64_t free_to;
	uint8_t _pad3[RF_CACHELINE_PAIR - 16];

	_Atomic uint32_t parked; /* futex word: 1 = consumer asleep or about to */
	_Atomic int32_t consumer_pid;
	_Atomic uint64_t heartbeat_ns;
	/* The consumer's start time (/proc stat field 22), with its pid: what
	 * liveness checks when the consumer's lock cannot be probed. */
	_Atomic uint64_t consumer_start;
	uint8_t _pad4[RF_CACHELINE_PAIR - 24];

	/* Loss and recovery counters: slow paths only, so one line for all. */
	_Atomic uint64_t spilled;
	_Atomic uint64_t spill_failed;
	_Atomic uint64_t dropped;
	_Atomic uint64_t claim_timeouts;
	_Atomic uint64_t abandoned;
	_Atomic uint64_t spill_ingested;
	_Atomic uint64_t spill_corrupt;
	_Atomic uint64_t wakeups;
	_Atomic uint64_t spill_seq; /* names spill files uniquely */
	_Atomic uint64_t corrupt;       /* corrupt record headers the consumer skipped */
	_Atomic uint64_t corrupt_bytes; /* ring bytes skipped with them (records lost) */
	_Atomic uint64_t hdr_changed;   /* descriptor, head or tail found forged */
	uint8_t _pad5[384 - 96];

	char spool_dir[256];
};

_Static_assert(sizeof(struct rf_ring_slot) == 64, "slot is one cache line");
_Static_assert(sizeof(struct rf_ring_shm) <= RF_RING_SLOTS_OFF, "header fits");
_Static_assert(__builtin_offsetof(struct rf_ring_shm, tail) == 128, "layout");
_Static_assert(__builtin_offsetof(struct rf_ring_shm, head) == 384, "layout");
_Static_assert(__builtin_offsetof(struct rf_ring_shm, spool_dir) == 1024, "layout");

/* Process-wide spill state of one handle (slow path, under `lock`). */
struct rf_spill_w {
	pthread_mutex_t lock;
	/* After a failed spill (disk full, unwritable spool), claims on a full
	 * ring neither wait nor retry the disk until this monotonic time: a
	 * broken spool must not cost the producer full_wait_ns per record. */
	_Atomic uint64_t broken_until;
	_Atomic int active; /* producers route claims to the spill file */
	int fd;
	char name[96];      /* basename inside the spool dir */
	uint64_t records;
	uint64_t bytes;
};

struct rf_ring {
	struct rf_ring_shm *shm;
	uint8_t *data;
	/* The descriptor as validated at open.  Everything in the segment can be
	 * rewritten by any process that maps it (a same-user producer, a group
	 * member on a 0660 ring): sizes and bounds come from here, never from
	 * the segment again (rf_ring_check_desc() reports a changed one). */
	uint64_t cap;
	uint64_t mask;
	uint64_t max_record;
	uint64_t max_claim;   /* align8(header + max_record): the largest claim */
	uint64_t created_ns;
	uint32_t ring_flags;  /* the segment's RF_RING_GROUP */
	size_t map_len;
	int fd;
	unsigned flags;
	int full_policy;
	uint64_t full_wait_ns;
	uint64_t stall_check_ns;
	uint64_t id;          /* unique per handle, for thread-local caches */
	char name[128];
	char spool_dir[256];
	pid_t pid;            /* process using the handle (updated after fork) */
	pid_t consumer_pid;   /* process that took the consumer lock, or 0 */
	struct rf_spill_w spill;

	/* consumer-only state */
	uint64_t head;        /* head as this consumer last published it */
	uint64_t bad_tail;    /* a forged tail already counted */
	uint64_t held_from, held_to; /* delivered but not yet released (held consume) */
	uint64_t stall_pos;   /* head position seen stalled, or RF_POS_IDLE */
	uint64_t stall_since; /* monotonic ns */
	uint64_t stall_next_check;
	uint64_t orphan_next_scan;
	int (*interrupted)(void *arg); /* rf_ring_set_interrupt() */
	void *interrupt_arg;
	char pending_unlink[RF_PATH_MAX + 32]; /* spill file to remove once head passes its marker */
};

/* Claimant slot i of the segment (producer and consumer side alike). */
static inline struct rf_ring_slot *slot_at(rf_ring *r, uint32_t i)
{
	return (struct rf_ring_slot *)((uint8_t *)r->shm + RF_RING_SLOTS_OFF) + i;
}

/* rf_ring.c */
void rf_backoff(unsigned *step);

/* rf_proc.c: liveness of a claimant. */
pid_t rf_gettid(void);
uint64_t rf_thread_start_time(pid_t pid, pid_t tid);
/* 1 alive, 0 dead (gone, zombie, or tid recycled since `start_time`). */
int rf_thread_alive(pid_t pid, pid_t tid, uint64_t start_time);

/* rf_ring_produce.c */
void rf_ring_release_slots(rf_ring *r);
int rf_ring_claim_ring(rf_ring *r, int32_t type, size_t len, struct rf_ring_claim *c,
		       uint64_t wait_ns);

/* rf_ring_consume.c: complete a predecessor's interrupted release. */
void rf_ring_finish_free(rf_ring *r);
/* rf_ring.c: the segment's descriptor still says what was validated at open?
 * If not, count it (hdr_changed) and, on the consumer, write it back. */
void rf_ring_check_desc(rf_ring *r);

/* rf_ring_recover.c: damaged records (see there).  skip_corrupt returns the
 * position in (pos, limit] where delivery goes on; check_pad returns where a
 * padding record at pos really ends (before `end` if it hides committed
 * records).  Both count what they skip (corrupt, corrupt_bytes). */
bool rf_ring_type_ok(int32_t type);
uint64_t rf_ring_skip_corrupt(rf_ring *r, uint64_t pos, uint64_t limit, const char *why,
			      int64_t val);
uint64_t rf_ring_check_pad(rf_ring *r, uint64_t pos, uint64_t end);

/* rf_ring_produce.c: wake a parked consumer after a commit */
void rf_ring_wake_consumer(rf_ring *r);

/* rf_spill.c */
int rf_spill_claim(rf_ring *r, int32_t type, size_t len, struct rf_ring_claim *c);
int rf_spill_commit(rf_ring *r, struct rf_ring_claim *c, bool abort);
int rf_spill_try_leave(rf_ring *r);
void rf_spill_close(rf_ring *r);
int rf_spill_ingest_marker(rf_ring *r, uint64_t pos, const void *mark, uint32_t len,
			   rf_ring_handler fn, void *arg);
int rf_spill_ingest_orphans(rf_ring *r, rf_ring_handler fn, void *arg);
int rf_spool_dir_check(const char *dir, bool group, bool create);
/* What a spill scan found.  In: an optional interrupt check (called every
 * MiB or so of work; non-zero stops the scan).  Out: the first damage
 * (NULL if none), a torn last record, bytes skipped over damage, bytes
 * checksummed while resyncing (bounded by the file's size + 1 MiB) and all
 * work done (bytes looked at), and whether the scan was interrupted. */
struct rf_spill_report {
	int (*interrupted_fn)(void *arg);
	void *interrupt_arg;
	const char *bad;
	bool torn, interrupted, budget_spent;
	size_t skipped;
	uint64_t crc_bytes, work;
};
/* Pure: the parse of a spill file image (tests/fuzz/spill runs it on
 * anything); rf_spill_ingest.c runs the same code over a file read with
 * pread.  Returns the number of records delivered. */
int rf_spill_scan(const uint8_t *m, size_t size, size_t maxrec, uint64_t pos, uint32_t flags,
		  rf_ring_handler fn, void *arg, struct rf_spill_report *rep);

#define RF_CLAIM_SPILL 0x1u /* claim lives in a spill buffer, not the ring */

static inline uint64_t rf_align8(uint64_t v)
{
	return (v + (RF_RING_ALIGN - 1)) & ~(uint64_t)(RF_RING_ALIGN - 1);
}

/* Headers are read at 8-aligned positions only: pos & mask then leaves 8
 * bytes before the end of the data area.  Callers never pass other values
 * (positions from the segment are checked for alignment first). */
static inline _Atomic int32_t *rf_rec_len(rf_ring *r, uint64_t pos)
{
	return (_Atomic int32_t *)(r->data + (pos & r->mask));
}

static inline _Atomic int32_t *rf_rec_type(rf_ring *r, uint64_t pos)
{
	return (_Atomic int32_t *)(r->data + (pos & r->mask) + 4);
}

#endif /* RF_RING_INT_H */
