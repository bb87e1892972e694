/*
 * rf_ring.h - lock-free multi-producer, single-consumer shared-memory ring of
 * variable-length records.
 *
 * Many producers (processes and threads) write records into one POSIX shared
 * memory segment; one consumer (the sidecar) drains them in order.  See
 * docs/DESIGN.md ("The ring") for the layout, the protocol and every memory-ordering
 * pairing.
 *
 * Conventions (liburing style): functions return 0 (or a count) on success and
 * -errno on failure; rf_ring_errmsg() then gives a human-readable message with
 * context for the calling thread's last failure.
 */
#ifndef RF_RING_H
#define RF_RING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque per-process handle on a mapped ring. */
typedef struct rf_ring rf_ring;

#define RF_RING_DEFAULT_CAPACITY (16u << 20) /* 16 MiB data area */
#define RF_RING_MIN_CAPACITY (64u << 10)     /* 64 KiB */
#define RF_RING_MAX_CAPACITY (1u << 30)      /* 1 GiB: lengths are int32 */
#define RF_RING_HDR_BYTES 8u                 /* per-record header */
#define RF_RING_ALIGN 8u
/* Largest payload a ring of `cap` bytes accepts (2 MiB at the default). */
#define RF_RING_MAX_RECORD(cap) ((size_t)(cap) / 8u - RF_RING_HDR_BYTES)

/* Record types: user types are >= 1; values <= 0 are reserved. */
#define RF_RING_TYPE_MAX 0x3fffffff

/* rf_ring_opts.flags */
#define RF_RING_CREATE 0x1u   /* create the segment if it does not exist */
#define RF_RING_GROUP 0x2u    /* created segment and spill files are 0660, not 0600, and a
				 segment of another user of one of our groups is accepted;
				 also set by $RINGFLOW_RING_GROUP=1 (rf_ring_group_requested) */
#define RF_RING_CONSUMER 0x4u /* attach as the (single) consumer */

/* What a producer does when the ring has no room (rf_ring_opts.full_policy). */
enum rf_ring_full_policy {
	RF_RING_FULL_SPILL = 0, /* wait up to full_wait_ns, then spill to a file (default) */
	RF_RING_FULL_WAIT = 1,  /* wait up to full_wait_ns, then fail with -EAGAIN */
	RF_RING_FULL_DROP = 2,  /* drop at once, counted in the ring's `dropped` counter */
};

struct rf_ring_opts {
	size_t capacity;        /* data area bytes, power of two; 0 = default (create only) */
	unsigned flags;         /* RF_RING_* */
	int full_policy;        /* enum rf_ring_full_policy */
	uint64_t full_wait_ns;  /* bound on waiting for room; default 10 ms (a 2-core
				   host deschedules a consumer for several ms) */
	const char *spool_dir;  /* spill directory; NULL = the one recorded in the ring */
	uint64_t stall_check_ns;/* consumer: how long a head claim may stall before the
				   claimant's liveness is checked; default 20 ms */
};

/* Group access asked for through the environment: $RINGFLOW_RING_GROUP is
 * on (rf_env.h's rule).  Off by default: rings, spill files and the sidecar's files are
 * owner-only (0600). */
int rf_ring_group_requested(void);

/* Ring name for this user: $RINGFLOW_RING if set, else "/ringflow-<uid>". */
int rf_ring_default_name(char *buf, size_t len);
/* Spool directory default: $RINGFLOW_SPOOL_DIR, else $XDG_RUNTIME_DIR/ringflow,
 * else /tmp/ringflow-<uid>. */
int rf_ring_default_spool_dir(char *buf, size_t len);
/* The spool directory as the ring uses it: created if missing (0700, 0770
 * in group mode), a directory of ours writable by nobody else (the group in
 * group mode).  -errno with a message naming its owner and what to do. */
int rf_ring_spool_check(const char *dir);

/*
 * Attach to (or with RF_RING_CREATE, create) the ring `name` (NULL = default).
 * A segment owned by another user, with a bad magic, version or size, or not
 * fully initialised within 1 s, is refused with -EPERM / -EPROTO / -EINVAL.
 * With RF_RING_CONSUMER, fails with -EBUSY if another live consumer holds it.
 */
int rf_ring_open(rf_ring **out, const char *name, const struct rf_ring_opts *opts);
/* Unmap and free the handle; releases this process's producer slots. */
void rf_ring_close(rf_ring *r);
/* Remove the segment name (mapped handles stay valid). */
int rf_ring_unlink(const char *name);
/* The calling thread's last error message, never NULL. */
const char *rf_ring_errmsg(void);

/* ---- Producer API (thread-safe, zero-copy) ---- */

struct rf_ring_claim {
	void *data;     /* write `len` bytes here, then commit or abort */
	uint32_t len;
	uint32_t _flags; /* private */
	uint64_t _pos;   /* private */
};

/* Claim room for a `len`-byte payload of `type` (1..RF_RING_TYPE_MAX).
 * One outstanding claim per thread per ring: commit or abort it before the
 * next.  Returns 0, -EMSGSIZE (too large), -EAGAIN (full, WAIT policy),
 * -ENOBUFS (full, dropped and counted), -EBUSY (a claim is outstanding) or
 * -EINVAL. */
int rf_ring_claim(rf_ring *r, int32_t type, size_t len, struct rf_ring_claim *c);
/* Publish a claimed record. */
int rf_ring_commit(rf_ring *r, struct rf_ring_claim *c);
/* Publish only the first `len` bytes of a claim (len <= claimed length): for
 * writers that claim an upper bound and encode in place.  The unused tail
 * becomes padding. */
int rf_ring_commit_len(rf_ring *r, struct rf_ring_claim *c, size_t len);
/* Give a claimed record back; the consumer skips it. */
int rf_ring_abort(rf_ring *r, struct rf_ring_claim *c);
/* claim + memcpy + commit. */
int rf_ring_write(rf_ring *r, int32_t type, const void *data, size_t len);
/* A producer that spilled stays on its spill file until a claim finds room
 * for the file's marker; with no further claim, its last records would wait
 * until the handle closes.  This places the marker now if the ring has room:
 * 0 (nothing spilled, or sealed and in order), or -ENOSPC (still full: try
 * again later).  Cheap when nothing was spilled; call it when a burst ends. */
int rf_ring_flush_spill(rf_ring *r);

/* ---- Consumer API (one consumer per ring) ---- */

#define RF_RING_REC_SPILLED 0x1u /* came from a spill file, not the ring */
#define RF_RING_REC_ORPHAN 0x2u  /* from a spill file without a marker: pos is not stable */

struct rf_ring_rec {
	uint64_t pos;     /* ring position of the record (or of its spill marker) */
	uint32_t sub;     /* index within a spill file; 0 for ring records */
	uint32_t flags;   /* RF_RING_REC_* */
	int32_t type;
	uint32_t len;
	const void *data; /* valid only during the callback */
};

/* Return 0 to go on, non-zero to stop the batch after this record (the record
 * counts as consumed). */
typedef int (*rf_ring_handler)(const struct rf_ring_rec *rec, void *arg);

/* Deliver up to `max` committed records in order, then free their space with
 * one store.  Also recovers claims of dead producers and ingests spill files.
 * Returns the number of records delivered, or -errno. */
int rf_ring_consume(rf_ring *r, rf_ring_handler fn, void *arg, unsigned max);

/* As rf_ring_consume(), but the records stay in the ring (not freed, head not
 * moved) until rf_ring_release(): a consumer that must make them durable
 * first (ringflowd's journal) releases only after that.  Until released, a
 * consumer that dies gets them again.  -EBUSY if records are still held. */
int rf_ring_consume_held(rf_ring *r, rf_ring_handler fn, void *arg, unsigned max);
int rf_ring_release(rf_ring *r);

/* Skip records already processed before a consumer restart: every record with
 * pos < `pos` is treated as consumed.  Ignored if pos is outside [head, tail].
 * -EINVAL if pos is not a record boundary or the handle is not the consumer,
 * -EBUSY while records are held (rf_ring_consume_held). */
int rf_ring_resume(rf_ring *r, uint64_t pos);

/* Long consumer work (ingesting a large or damaged spill file) asks `fn`
 * every MiB or so whether to stop; non-zero stops it: consume then returns
 * -EINTR, and the file is read again (from its start) by the next consume. */
void rf_ring_set_interrupt(rf_ring *r, int (*fn)(void *arg), void *arg);

/* Wait until records may be available or `timeout_ns` passes: spin, then
 * yield, then park on the ring's futex (producers wake a parked consumer).
 * Returns 1 if records may be available, 0 on timeout. */
int rf_ring_wait(rf_ring *r, uint64_t timeout_ns);

/* For consumers with their own event loop (io_uring FUTEX_WAIT, say):
 * rf_ring_park() announces that the consumer is about to sleep and returns 1
 * with the futex word and the value to wait on, or 0 if a record is ready
 * (consume first; nothing to undo).  After waking, call rf_ring_unpark().
 * Producers wake the word (FUTEX_WAKE, shared) only while it is set. */
int rf_ring_park(rf_ring *r, uint32_t **uaddr, uint32_t *val);
void rf_ring_unpark(rf_ring *r);

struct rf_ring_stats {
	uint64_t capacity, max_record;
	uint64_t head, tail;       /* positions: tail - head = bytes in use */
	uint64_t spilled;          /* records written to spill files */
	uint64_t spill_failed;     /* records that could not be spilled (dropped) */
	uint64_t dropped;          /* records dropped by the DROP policy */
	uint64_t claim_timeouts;   /* WAIT-policy claims that returned -EAGAIN */
	uint64_t abandoned;        /* dead producers' claims turned into padding */
	uint64_t spill_ingested;   /* spilled records delivered to the consumer */
	uint64_t spill_corrupt;    /* spill files quarantined as corrupt */
	uint64_t wakeups;          /* futex wakes issued by producers */
	uint64_t corrupt;          /* corrupt record headers (or forged padding) skipped */
	uint64_t corrupt_bytes;    /* ring bytes skipped with them: the records lost */
	uint64_t hdr_changed;      /* descriptor, head or tail found rewritten in the segment */
	int32_t consumer_pid;      /* 0 if no consumer attached */
	uint64_t created_ns;       /* CLOCK_REALTIME of the segment's creation (its identity) */
	uint64_t consumer_heartbeat_ns; /* CLOCK_REALTIME of the consumer's last poll */
};
int rf_ring_stats(rf_ring *r, struct rf_ring_stats *st);

/* Is a consumer attached?  1 or 0.  Probes the consumer's lock on the
 * segment (held as long as the consumer process lives), not the pid in
 * consumer_pid: any process that maps the ring can write that. */
int rf_ring_consumer_alive(rf_ring *r);

#ifdef __cplusplus
}
#endif
#endif /* RF_RING_H */
