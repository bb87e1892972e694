/*
 * rf_gate.h - when ringflowd stops taking records from the ring.
 *
 * The sidecar normally drains the ring as fast as it can: records go to the
 * journal (disk) and their rows wait in memory until MLflow takes them.  Three
 * things close the gate; records then wait in the ring, and when it is full
 * producers spill to their own files (their full policy; the eval never
 * waits on ringflowd or MLflow):
 *
 *   spool full   the journal holds >= spool_max bytes while MLflow is away
 *                (requests waiting and no 2xx for away_ms).  Opens again
 *                when MLflow answers.  The journal also holds the records of
 *                runs still open (a restart rebuilds their aggregates from
 *                them), so it may pass the bound while MLflow is reachable;
 *                the bound caps what piles up while it is not.
 *   memory       entities waiting for MLflow >= pending_max, or the traces
 *                held in memory weigh >= trace_max bytes (complete traces
 *                past half of it wait on disk, so what fills it is open
 *                traces and traces partly sent).  Opens again at half of
 *                each (hysteresis: no flapping per batch).
 *   journal      the journal cannot be written (disk full, I/O error).  Opens
 *                when a write succeeds again.
 *
 * The caller logs each change (rf_gate_update() returns true) and reports
 * the counters.
 */
#ifndef RF_GATE_H
#define RF_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rf_gate_reason { RF_GATE_OPEN = 0, RF_GATE_SPOOL_FULL, RF_GATE_MEMORY, RF_GATE_JOURNAL };

struct rf_gate_in {
	uint64_t now_ms;
	uint64_t journal_bytes;  /* rf_journal_size() */
	int journal_failing;     /* rf_journal_failing(): errno or 0 */
	uint64_t pending;        /* entities waiting for MLflow (rf_track_stats) */
	uint64_t trace_bytes;    /* what the traces held weigh (rf_traces_stats mem_bytes) */
	uint64_t http_ok;        /* 2xx responses so far (rf_http_stats) */
	size_t http_pending;     /* requests queued, in flight or waiting to retry */
};

struct rf_gate {
	uint64_t spool_max;      /* bytes; 0 = no bound */
	uint64_t pending_max;    /* entities; 0 = no bound */
	uint64_t trace_max;      /* bytes of traces held; 0 = no bound (set after init) */
	uint64_t away_ms;        /* no 2xx for this long with requests waiting = away */
	enum rf_gate_reason reason;
	uint64_t closed_at;
	uint64_t closes[4];      /* times closed, by reason */
	uint64_t closed_ms;      /* total time closed */
	uint64_t last_ok, last_ok_ms;
};

void rf_gate_init(struct rf_gate *g, uint64_t spool_max, uint64_t pending_max, uint64_t now_ms);
/* Decide; true when the state changed (the caller logs rf_gate_describe()). */
bool rf_gate_update(struct rf_gate *g, const struct rf_gate_in *in);
static inline bool rf_gate_closed(const struct rf_gate *g)
{
	return g->reason != RF_GATE_OPEN;
}
/* One sentence about the current state, for the log. */
void rf_gate_describe(const struct rf_gate *g, const struct rf_gate_in *in, char *buf, size_t cap);

#endif
