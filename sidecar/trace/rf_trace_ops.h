/*
 * rf_trace_ops.h - assessments and tags on a trace already sent, records
 * 28-29 (rf_trace_ops.c): their own calls, after the trace's info.
 */
#ifndef RF_TRACE_OPS_H
#define RF_TRACE_OPS_H

#include <msgpack.h>
#include <stdbool.h>

#include "rf_trace_table.h"

void rf_trace_ops_record(rf_traces *x, int type, const msgpack_object *r);
void rf_trace_ops_pump(rf_traces *x);
bool rf_trace_ops_idle(rf_traces *x);
void rf_trace_ops_free(rf_traces *x);

#endif
