/*
 * rf_traces.h - records -> MLflow traces (and an optional OTLP collector).
 *
 * Two sources build traces: Inspect records (rf_trace_inspect.c; one trace
 * per sample by default, one per run with MLFLOW_INSPECT_TRACE_MODE=run;
 * enabled by MLFLOW_INSPECT_TRACING=true in the sidecar's or the eval's
 * environment) and the general tracing records 24-27 (docs/EVENTS.md).
 *
 * Upload (docs/DESIGN.md "Traces"): as soon as a trace is complete, one
 * StartTraceV3 creates it IN_PROGRESS with its previews, tags, metadata
 * (mlflow.sourceRun) and assessments (client-chosen ids, so a retry merges
 * instead of duplicating); then its spans go to MLflow's /v1/traces as
 * OTLP/JSON in batches grouped by experiment and run (x-mlflow-run-id links
 * at most 100 traces per request, MLflow's limit), the root span last: the
 * batch carrying it sets the final state.  Ids are derived from Inspect's
 * own ids, so a replayed journal upserts the same trace.
 */
#ifndef RF_TRACES_H
#define RF_TRACES_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "rf_http.h"
#include "rf_mlflow.h"
#include "rf_track.h"

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
	char last_error[512];
};

int rf_traces_new(rf_traces **out, rf_mlflow *m, rf_http *http, rf_track *track,
		  const struct rf_traces_opts *o);
void rf_traces_free(rf_traces *x);
void rf_traces_record(rf_traces *x, int type, const msgpack_object *root);
void rf_traces_pump(rf_traces *x, bool flush_now);
#define RF_TRACE_BEHIND_MS 10000 /* a complete trace waiting longer: "behind" */
/* Nothing ready to send and nothing in flight. */
bool rf_traces_idle(rf_traces *x);
/* No trace held at all (open ones included). */
bool rf_traces_empty(rf_traces *x);
void rf_traces_stats(rf_traces *x, struct rf_traces_stats *st);
/* Memory pressure (the gate closed on held spans and nothing is being
 * sent): send the ended spans held now rather than waiting for parts of
 * 1,000 (else held spans would keep the gate closed for ever). */
void rf_traces_pressure(rf_traces *x);

#endif
