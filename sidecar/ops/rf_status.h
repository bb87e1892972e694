/*
 * rf_status.h - the counters a running ringflowd publishes for
 * `ringflowd status`, `ringflowd flush` and the Prometheus endpoint.
 *
 * The daemon keeps one owner-only file per ring,
 * <spool>/ringflowd-<ring name without '/'>.stats, mapped shared, and
 * rewrites it from its loop every RF_STATUS_PERIOD_MS (also while idle: the
 * loop wakes at least every 50 ms).  Readers map it read-only; a sequence
 * counter (seqlock) gives them a consistent snapshot without ever blocking
 * the daemon, and no round trip to it is needed.  Every word of the block
 * is an atomic 64-bit store/load, so the protocol has no data race.
 */
#ifndef RF_STATUS_H
#define RF_STATUS_H

#include <stddef.h>
#include <stdint.h>

#define RF_STATUS_PERIOD_MS 200

enum rf_status_state { RF_SIDECAR_RUNNING = 1, RF_SIDECAR_STOPPING = 2, RF_SIDECAR_EXITED = 3 };

/* One snapshot of the daemon's state.  Plain data: add fields only at the
 * end and bump RF_STATUS_VERSION when the layout changes. */
struct rf_status_snap {
	uint64_t magic, version;
	int64_t pid;
	uint64_t state;             /* enum rf_status_state */
	uint64_t started_ns;        /* CLOCK_REALTIME the daemon started */
	uint64_t updated_ns;        /* CLOCK_REALTIME of this snapshot */
	uint64_t ring_created_ns;   /* identity of the ring served */
	/* Ring position below which every record has been taken, journaled and
	 * folded into the MLflow state (the ring's head after the release). */
	uint64_t ring_pos;
	uint64_t ring_tail, ring_capacity;
	/* The ring's own counters (rf_ring_stats) as seen at this snapshot. */
	uint64_t spilled, spill_failed, spill_ingested, spill_corrupt, dropped, claim_timeouts,
		abandoned;
	/* Sidecar */
	uint64_t records_in;        /* records taken from the ring (incl. spilled) and replayed */
	uint64_t malformed;         /* of those, refused by the decoder */
	uint64_t records_out;       /* entities (metrics + params + tags) MLflow accepted */
	uint64_t metrics, params, tags, batches, rejected;
	uint64_t runs_created, runs_ended, artifacts, artifacts_failed;
	uint64_t pending;           /* entities not yet sent */
	uint64_t http_pending;      /* requests queued, in flight or waiting to retry */
	uint64_t requests, retries, http_failed, http_2xx, http_4xx, http_5xx, http_errors;
	uint64_t journal_records, journal_errors, journal_replayed;
	uint64_t spool_bytes;       /* spill files of this ring + its journal */
	uint64_t spool_files;
	/* 1 when nothing taken from the ring waits to be sent: no pending
	 * entity, no run waiting to be created, no upload, end status or
	 * request queued or in flight. */
	uint64_t drained;
	uint64_t last_error_ns;     /* when last_error last changed (0: never) */
	char last_error[512];
	char tracking_uri[256];
	char experiment[248];
	/* Traces (rf_traces_stats): begun, fully in MLflow, refused; spans
	 * accepted, refused; records for a trace already uploaded. */
	uint64_t traces, traces_done, traces_failed, spans_sent, spans_failed, traces_late;
	/* Ring damage (rf_ring_stats): corrupt records skipped, the bytes lost
	 * with them, rewrites of the shared header undone. */
	uint64_t ring_corrupt, ring_corrupt_bytes, ring_hdr_changed;
	/* Keeping up (rf_traces_stats): complete traces not yet all in MLflow,
	 * the oldest one's wait, times it passed RF_TRACE_BEHIND_MS. */
	uint64_t traces_waiting, trace_lag_ms, traces_behind;
	/* Since version 3: the rest of the loss counters (rf_status_loss_table)
	 * and the auth state. */
	uint64_t invalid;           /* records without a usable id (not folded) */
	uint64_t bad_fields;        /* fields of the wrong type, ignored */
	uint64_t runs_failed;       /* runs MLflow refused to create */
	uint64_t spans_forced;      /* spans never ended, closed as ERROR */
	uint64_t export_failed;     /* spans the OTLP collector refused */
	uint64_t journal_corrupt;   /* corrupt journal stretches skipped at replay */
	uint64_t creds_refused;     /* requests not sent: credentials for another origin */
	uint64_t keys_capped;       /* metrics dropped: their run has too many metric names */
	uint64_t spans_capped;      /* spans dropped: their trace or all traces held too many */
	uint64_t auth_failures;     /* 401/403/407 answers (retried; not a loss) */
	uint64_t auth_failing;      /* 1 while the last answer with credentials was one */
	char auth_origin[256];      /* where the last auth failure came from */
	uint64_t refused_records;   /* records of runs naming a destination ringflowd cannot serve */
	/* Since version 4: trace memory (rf_traces_stats) and the intake gate
	 * (rf_gate.h), so status and /metrics say when and why the sidecar
	 * holds back (the log says it once per change). */
	uint64_t trace_mem_bytes;   /* what the traces held in memory weigh */
	uint64_t trace_mem_max;     /* RINGFLOW_TRACE_MEM_MB in bytes (0: no bound) */
	uint64_t traces_spooled;    /* complete traces waiting in the trace spool now */
	uint64_t traces_spooled_total; /* ... ever written there */
	uint64_t trace_spool_bytes; /* bytes the trace spool file holds now */
	uint64_t pending_max;       /* RINGFLOW_PENDING_MAX (0: no bound) */
	uint64_t gate;              /* enum rf_status_gate: why no records are taken now */
	uint64_t gate_spool_full, gate_memory, gate_journal; /* times closed, by reason */
	uint64_t gate_closed_ms;    /* total time closed, the current closure included */
	/* Since version 5: tasks whose artifacts are being built (read from
	 * their Inspect log) off the loop; their runs end once they are up. */
	uint64_t artifact_jobs;
};

/* Why the sidecar takes no records from the ring (rf_gate.h's reasons). */
enum rf_status_gate {
	RF_STATUS_GATE_OPEN = 0,       /* taking records */
	RF_STATUS_GATE_SPOOL_FULL = 1, /* journal at RINGFLOW_SPOOL_MAX_MB, MLflow away */
	RF_STATUS_GATE_MEMORY = 2,     /* RINGFLOW_PENDING_MAX or RINGFLOW_TRACE_MEM_MB reached */
	RF_STATUS_GATE_JOURNAL = 3,    /* the journal cannot be written */
};
/* "open", "spool_full", "memory", "journal" ("unknown" otherwise). */
const char *rf_status_gate_name(uint64_t gate);
/* One phrase on why the gate is closed, with the numbers the snapshot has
 * ("" when it is open). */
void rf_status_gate_describe(const struct rf_status_snap *s, char *buf, size_t cap);

#define RF_STATUS_MAGIC 0x7266737461747573ull /* "rfstatus" */
#define RF_STATUS_VERSION 5

typedef struct rf_status rf_status;

/* Every counter of a loss: data a producer handed over that will not reach
 * MLflow (or the collector).  `ringflowd status` and /metrics show each one,
 * and `ringflowd flush` exits RF_CTL_LOST while any is non-zero. */
struct rf_status_loss {
	const char *name; /* as in status, the log and ringflow_lost_total{kind=...} */
	const char *help;
	size_t off;       /* offset of its uint64_t in struct rf_status_snap */
};
extern const struct rf_status_loss rf_status_loss_table[];
extern const size_t rf_status_loss_count;
static inline uint64_t rf_status_loss_value(const struct rf_status_snap *s, size_t i)
{
	return *(const uint64_t *)(const void *)((const char *)s + rf_status_loss_table[i].off);
}
/* "rejected 1, malformed 2" for the non-zero ones into buf; their sum. */
uint64_t rf_status_losses(const struct rf_status_snap *s, char *buf, size_t cap);

/* <spool>/ringflowd-<ring>.stats; ring NULL = the default ring name. */
int rf_status_path(char *buf, size_t len, const char *spool, const char *ring);

/* Daemon: create (or take over) the file, owner-only. */
int rf_status_open(rf_status **out, const char *path);
/* Daemon: publish a snapshot (magic and version are filled in). */
void rf_status_publish(rf_status *s, const struct rf_status_snap *snap);
void rf_status_close(rf_status *s);

/* Reader: a consistent snapshot.  -ENOENT if there is no such file,
 * -EPERM if it is not this user's or others may read it, -EPROTO if it
 * is not a stats file of this version, -EAGAIN if no consistent copy could
 * be taken (a writer stuck mid-update). */
int rf_status_read(const char *path, struct rf_status_snap *out);
/* The same, through the writer's own mapping (tests: ThreadSanitizer sees
 * both sides of the seqlock only within one mapping). */
int rf_status_read_own(rf_status *s, struct rf_status_snap *out);

/* Bytes and number of this ring's spill files (by the ring's name and
 * identity, as rf_spill names them) and its journal in `spool`. */
int rf_status_spool_usage(const char *spool, const char *ring, uint64_t ring_created_ns,
			  uint64_t *bytes, uint64_t *files);

#endif
