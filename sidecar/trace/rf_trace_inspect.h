/*
 * rf_trace_inspect.h - Inspect's records as traces (rf_trace_inspect.c):
 * one trace per sample (or per run with MLFLOW_INSPECT_TRACE_MODE=run),
 * for runs traced by MLFLOW_INSPECT_TRACING.
 */
#ifndef RF_TRACE_INSPECT_H
#define RF_TRACE_INSPECT_H

#include <msgpack.h>

#include "rf_trace_table.h"

void rf_trace_inspect(rf_traces *x, int type, const msgpack_object *r);

#endif
