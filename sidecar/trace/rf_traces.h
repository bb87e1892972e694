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
 * OTLP/JSON in batches grouped by experiment (the run link is the info's
 * mlflow.sourceRun, which the UI and search_traces read), the root span last: the
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

#include "rf_traces_types.h"

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
/* The stats' mem_bytes alone, without walking the traces (the memory gate
 * asks for it at every batch). */
uint64_t rf_traces_mem(rf_traces *x);
/* Memory pressure (the gate closed on held spans and nothing is being
 * sent): send the ended spans held now rather than waiting for parts of
 * 1,000 (else held spans would keep the gate closed for ever). */
void rf_traces_pressure(rf_traces *x);

#endif
