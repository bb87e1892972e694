/*
 * rf_traces_types.h - the trace uploader's options and counters (the API
 * is rf_traces.h): its own header so the files under rf_traces.c
 * (rf_trace_table.h and what includes it) need not include the top one.
 */
#ifndef RF_TRACES_TYPES_H
#define RF_TRACES_TYPES_H

#include "rf_err.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct rf_traces rf_traces;

struct rf_traces_opts {
	bool inspect_all;          /* MLFLOW_INSPECT_TRACING=true for the sidecar: every run */
	bool run_mode_default;     /* MLFLOW_INSPECT_TRACE_MODE=run */
	int64_t flush_ms;          /* ended spans are sent at least this often */
	int64_t timeout_ms;        /* a trace idle this long is closed (ERROR) */
	const char *otlp_endpoint; /* OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (NULL: none) */
	const char *otlp_headers;  /* OTEL_EXPORTER_OTLP_TRACES_HEADERS "k=v,k2=v2" */
	const char *spool_dir;     /* where complete traces wait on disk (rf_trace_spool.c) */
	uint64_t mem_max;          /* RINGFLOW_TRACE_MEM_MB in bytes: traces held in memory
				      (0: no bound, nothing spooled) */
	struct rf_err_sink err;    /* where each handled failure is reported (rf_err.h) */
};

/* Traces held in memory at once (open, or complete and not yet answered;
 * those waiting in the trace spool do not count): past it a new trace is
 * refused and its records counted in spans_capped. */
#define RF_TRACES_HELD_MAX 4096

struct rf_traces_stats {
	uint64_t traces, traces_done, traces_failed; /* begun; fully in MLflow; refused */
	uint64_t spans, spans_sent, spans_failed;    /* built; accepted; refused */
	uint64_t spans_forced;     /* closed as ERROR because they never ended */
	uint64_t spans_capped;     /* dropped: over the spans-per-trace or traces-held bound */
	uint64_t assessments;
	uint64_t late;             /* records for a trace already uploaded (dropped, counted) */
	uint64_t otlp_requests, info_requests;
	uint64_t export_spans, export_failed;        /* to the OTLP collector */
	uint64_t held;             /* traces held now (open or not yet answered) */
	/* Keeping up: complete traces not yet all in MLflow, how long the
	 * oldest of them has waited, and how often that passed
	 * RF_TRACE_BEHIND_MS (the server not keeping up; nothing is dropped). */
	uint64_t waiting, lag_ms, behind;
	uint64_t spans_unsent;     /* ended spans held, not yet uploaded */
	/* Memory (rf_trace_spool.c): what the traces held weigh (bytes, the
	 * memory gate weighs it against mem_max), complete traces waiting on
	 * disk now, ever, and the bytes they take there. */
	uint64_t mem_bytes, spooled, spooled_total, spool_bytes;
};

#endif
