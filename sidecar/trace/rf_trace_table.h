/*
 * rf_trace_table.h - the trace uploader's state and the traces it holds
 * (rf_trace_table.c), under everything else in sidecar/trace: the record
 * builders (rf_traces.c, rf_trace_inspect.c, rf_trace_ops.c) fill it, the
 * uploader (rf_trace_upload.c) empties it; it calls none of them.
 */
#ifndef RF_TRACE_TABLE_H
#define RF_TRACE_TABLE_H

#include <jansson.h>

#include "rf_trace_pace.h"
#include "rf_experiments.h"
#include "rf_spans.h"
#include "rf_track.h"
#include "rf_traces_types.h"

/* A trace's info (StartTraceV3) as sent. */
enum rf_info_state { INFO_NOT_SENT, INFO_SENDING, INFO_ANSWERED };

struct xtrace {
	struct xtrace *hnext;       /* hash chain */
	struct xtrace *next;        /* all traces, oldest first */
	struct rf_ttrace *tr;
	char exp_name[256];         /* "" = the sidecar's experiment */
	char exp_id[64];            /* by id (set_destination); wins over exp_name */
	char run_key[160];          /* rf_track key of the run to link ("" = none) */
	char inspect_run[96];       /* Inspect run id (closing at run end) */
	char eval_id[96];           /* Inspect eval id (closing at task end) */
	json_t *tags, *metadata;    /* string -> string */
	json_t *assessments;        /* Assessment objects */
	json_t *info;               /* TraceInfo fields set by the producer (record 27
				       "info": client_request_id, previews, state) */
	bool complete;              /* root ended: send the rest, then the info */
	bool progressive;           /* send ended spans before the root ends */
	/* Upload (rf_trace_upload.c): the info first (IN_PROGRESS), then the
	 * spans, the root last: its batch sets the final state. */
	enum rf_info_state info_state;
	bool info_final;            /* the info sent carries the complete trace */
	bool failed;                /* MLflow refused part of it (counted at the end) */
	int spans_inflight;         /* OTLP requests carrying its spans */
	uint64_t last_ms;           /* monotonic ms of the last record */
	uint64_t done_ms;           /* monotonic ms it became complete (0: open) */
	size_t nass_sent;           /* assessments in the final info */
	uint64_t capped_seen;       /* tr->capped already counted in spans_capped */
	bool flush_held;            /* send its ended spans now (rf_traces_pressure) */
	bool run_ending;            /* its run's end waits for it (rf_track's end hold) */
	size_t weight;              /* bytes, once complete (rf_trace_spool.c) */
	bool reloaded;              /* read back from the spool: sent next, never spooled again */
	/* Its spans encoded (rf_trace_upload.c, compact()): once its info is
	 * answered a complete trace waits for its span batch as OTLP/JSON text,
	 * deflated: about a fifteenth of what the span structures weigh. */
	char *enc;                  /* comma-separated span objects, the roots last */
	size_t enc_len, enc_n;      /* bytes held, spans */
	size_t enc_raw;             /* the text's length when deflated; 0: held as text */
};

#define RF_TRACE_BUCKETS 4096
#define RF_TRACE_RECENT 4096

struct rf_traces {
	rf_mlflow *m;
	rf_http *http;
	rf_track *track;
	struct rf_traces_opts o;
	struct xtrace *bucket[RF_TRACE_BUCKETS];
	struct xtrace *list;
	size_t ntraces;
	struct rf_exp **exps;       /* experiments general traces name (not the destination's) */
	size_t nexps;
	json_t *traced_runs;        /* Inspect run id -> "sample" | "run" */
	uint8_t recent[RF_TRACE_RECENT][16]; /* traces already uploaded (late records) */
	size_t recent_n;
	uint64_t last_flush;
	int otlp_inflight, info_inflight, export_inflight;
	struct rf_trace_pace pace;  /* how many trace requests this server takes at once */
	bool behind;                /* complete traces wait longer than RF_TRACE_BEHIND_MS */
	char *otlp_url;
	char **otlp_hdrs;           /* "Name: value", NULL-terminated */
	struct xop *ops, *ops_tail; /* assessment/tag calls of their own (rf_trace_ops.c) */
	size_t nops;
	int ops_inflight;
	struct rf_traces_stats st;
	/* Memory and the trace spool (rf_trace_spool.c). */
	struct rf_tspool *sp;
	uint64_t done_bytes;        /* complete traces in memory weigh this */
	uint64_t open_bytes, open_weighed_at, recs_unweighed;
	bool spool_failed;          /* cannot write the spool: keep traces in memory */
};

struct xtrace *rf_traces_get(rf_traces *x, const uint8_t id[16], bool create);
bool rf_traces_recent(rf_traces *x, const uint8_t id[16]);
/* The trace's root has ended (or it is being closed): close the rest and
 * queue everything for upload. */
void rf_traces_complete(rf_traces *x, struct xtrace *t, int64_t end_ns, const char *why);
void rf_traces_err(rf_traces *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Uploaded (or given up): forget it, remembering its id for late records. */
void rf_traces_drop(rf_traces *x, struct xtrace *t);
/* Experiment id for the trace (NULL: not yet known; "": never) and the run
 * id to link (NULL: not yet known; "": none). */
const char *rf_traces_exp_of(rf_traces *x, struct xtrace *t);
const char *rf_traces_run_of(rf_traces *x, struct xtrace *t);
uint64_t rf_traces_now_ms(void);
/* Every trace held and every experiment resolver, freed (at the end). */
void rf_trace_table_free(rf_traces *x);

/* Out of the table without counting anything (rf_traces_drop does the
 * counting), and freed. */
void rf_traces_unlink(rf_traces *x, struct xtrace *t);
void rf_traces_free_one(struct xtrace *t);

/* Memory and the trace spool (rf_trace_spool.c). */
size_t rf_trace_weigh(const struct xtrace *t);
void rf_trace_spool_account(rf_traces *x, struct xtrace *t); /* it completed */
void rf_trace_spool_forget(rf_traces *x, struct xtrace *t);  /* it leaves memory */
void rf_trace_spool_evict(rf_traces *x);   /* over half of mem_max: to disk */
void rf_trace_spool_record(rf_traces *x);  /* before each record: weigh, evict */
void rf_trace_spool_pump(rf_traces *x, uint64_t now_ms);
uint64_t rf_trace_spool_mem(rf_traces *x);
uint64_t rf_trace_spool_bytes(rf_traces *x);
bool rf_trace_spool_holds(rf_traces *x, const char *run_key);
/* The trace may be in the spool (a false yes only delays a caller). */
bool rf_trace_spool_may_hold(rf_traces *x, const uint8_t id[16]);
void rf_trace_spool_close(rf_traces *x);

/* Time helpers: seconds (float) -> ns; RFC 3339 from ns. */
int64_t rf_ns_of_secs(double s);
void rf_rfc3339(int64_t ns, char out[40]);

#endif
