/*
 * rf_journal.h - ringflowd's journal: records are written here before the
 * ring frees them, and replayed after a restart.
 *
 * Every record taken from the ring is appended (checksummed, with its ring
 * position) and the batch is written with one write() before the ring's head
 * moves (rf_ring_consume_held / rf_ring_release).  A sidecar killed at any
 * point restarts by replaying the journal: runs are found in the id map and
 * metric rows carry the records' own timestamps, so what was already uploaded
 * is written again as exact duplicates, which MLflow drops.  Ring records
 * already in the journal (redelivered because the ring had not freed them)
 * are recognised by position and skipped.  When every run in it has been
 * uploaded and closed, the journal is truncated.
 *
 * Durability: a process crash loses nothing (the page cache holds it);
 * fdatasync per RINGFLOW_FSYNC: "interval" (default, at most every second),
 * "always" (every batch) or "none".
 */
#ifndef RF_JOURNAL_H
#define RF_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rf_err.h"
#include "rf_ring.h"

typedef struct rf_journal rf_journal;

enum rf_fsync { RF_FSYNC_INTERVAL = 0, RF_FSYNC_ALWAYS = 1, RF_FSYNC_NONE = 2 };

struct rf_journal_stats {
	uint64_t records, bytes, replayed, skipped, resets;
	uint64_t corrupt;       /* corrupt stretches quarantined at replay (or a file
				 * that is no journal, started over) */
	uint64_t corrupt_bytes; /* their size */
	uint64_t corrupt_unkept; /* of them, not copied aside (the copy failed) */
	uint64_t compact_failed; /* replays whose records after damage could not be kept */
	uint64_t write_errors;  /* failed write attempts (disk full, I/O error) */
};

typedef void (*rf_journal_fn)(int type, const void *data, uint32_t len, void *arg);

/* Open (creating) the journal of the ring whose identity is ring_created_ns,
 * and replay what it holds through fn.  A torn tail is cut off.  A stretch
 * whose checksums fail is copied aside as <path>.corrupt-<time>-<offset>
 * (counted in `corrupt` and `corrupt_bytes`) and the replay goes on with
 * the next whole record after it: only the records inside it are lost. */
int rf_journal_open(rf_journal **out, const char *path, uint64_t ring_created_ns, int fsync_policy,
		    rf_journal_fn fn, void *arg);
void rf_journal_close(rf_journal *j);
/* Replays stop when fn returns non-zero (ringflowd: a pending SIGTERM);
 * rf_journal_open() then leaves the file whole and returns -EINTR. */
void rf_journal_set_interrupt(int (*fn)(void *arg), void *arg);
/* Damage a replay found and handled (a stretch quarantined, a file that is
 * no journal started over): counted in the stats, and reported at once to
 * the sink (rf_err.h; ringflowd logs it).  NULL: none. */
void rf_journal_set_note(const struct rf_err_sink *sink);

/* Has this ring record been journaled already? */
bool rf_journal_seen(rf_journal *j, const struct rf_ring_rec *rec);
/* Buffer a record; rf_journal_flush() writes the buffer (before the ring
 * releases the batch).  A failed write (disk full) is counted and reported,
 * the file is cut back to its last whole record and the buffer is kept:
 * the caller must not release the ring's batch (so the records stay in the
 * ring, safe from a crash) and takes no more records until a later flush
 * succeeds; flushes while failing are retried at most every 200 ms. */
void rf_journal_append(rf_journal *j, const struct rf_ring_rec *rec);
int rf_journal_flush(rf_journal *j);
/* errno of the failing write while records wait in the buffer, else 0. */
int rf_journal_failing(const rf_journal *j);
/* Bytes journaled (file and buffer): what a restart would replay. */
uint64_t rf_journal_size(const rf_journal *j);
/* Everything journaled has been uploaded: start over empty. */
int rf_journal_reset(rf_journal *j);
void rf_journal_stats(rf_journal *j, struct rf_journal_stats *st);

/* The parse of a journal image (untrusted bytes; rf_journal_open() uses it,
 * the fuzz target tests/fuzz/journal calls it directly): records of a valid
 * header are handed to fn; a stretch whose checksums fail is skipped up to
 * the next whole record whose checksum holds (reported to on_bad); a torn
 * tail ends it.  -EBADMSG if the header is not a ringflow journal's. */
struct rf_journal_scan {
	/* in, optional (the rest is cleared by the scan) */
	void (*on_bad)(size_t from, size_t to, void *visit_arg);  /* a corrupt stretch */
	void (*on_good)(size_t off, size_t n, void *visit_arg);   /* a good record's extent */
	void *visit_arg;
	int (*interrupted_fn)(void *interrupt_arg); /* asked every MiB of work: stop? */
	void *interrupt_arg;
	/* out */
	bool interrupted;       /* stopped by interrupted_fn: `end` is where */
	bool budget_spent;      /* damage too dense: the rest counted as corrupt */
	uint64_t crc_bytes;     /* checksummed while resyncing (<= size + 1 MiB) */
	uint64_t work;          /* bytes looked at in all */
	size_t end;             /* offset just past the last good record or stretch */
	uint64_t records;       /* handed to fn */
	uint64_t corrupt, corrupt_bytes; /* stretches skipped, their size */
	bool same_ring;         /* written for ring_created_ns */
	bool has_last;          /* highest ring position seen (or from the header) */
	uint64_t last_pos;
	uint32_t last_sub;
};
int rf_journal_scan(const uint8_t *m, size_t size, uint64_t ring_created_ns, rf_journal_fn fn,
		    void *arg, struct rf_journal_scan *s);

#endif
