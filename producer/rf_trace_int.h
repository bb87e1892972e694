/*
 * rf_trace_int.h - private: the tracing record layer shared by the C API
 * (rf_trace.c) and the Python extension (_ringflow.c), which keeps its own
 * span stack (contextvars) but writes the same records with the same ids.
 *
 * Each rf_trace_begin_*() starts one record (24-27) with its fixed fields;
 * the caller adds the optional ones ("inputs", "outputs", "attributes",
 * "tags", ...) with rf_rec_*() and commits with rf_rec_end().
 */
#ifndef RF_TRACE_INT_H
#define RF_TRACE_INT_H

#include "ringflow.h"

#include <stdatomic.h>

extern _Atomic uint64_t rf_trace_bad_values; /* blobs written as "[invalid msgpack]" */

uint64_t rf_trace_now_ns(void);            /* CLOCK_REALTIME, ns */
void rf_trace_new_trace_id(uint8_t id[16]); /* per-thread PRNG, fork-safe */
uint64_t rf_trace_new_span_id(void);       /* nonzero, below 2^63 */
bool rf_trace_sample(double rate);          /* true with probability rate */
double rf_trace_sample_rate(void);
const char *rf_trace_status_name(int st);  /* enum rf_span_status -> "OK", ... */

int rf_trace_begin_start(rf_producer *p, rf_rec *r, const uint8_t tid[16], uint64_t sid,
			 uint64_t parent, const char *name, size_t name_len, const char *type,
			 size_t type_len, uint64_t start_ns, const char *experiment);
/* status NULL: absent (= OK); message NULL: absent. */
int rf_trace_begin_end(rf_producer *p, rf_rec *r, const uint8_t tid[16], uint64_t sid,
		       uint64_t end_ns, const char *status, const char *message);
int rf_trace_begin_event(rf_producer *p, rf_rec *r, const uint8_t tid[16], uint64_t sid,
			 const char *name, uint64_t time_ns);
int rf_trace_begin_update(rf_producer *p, rf_rec *r, const uint8_t tid[16]);

/* `key`: a map of kv, or the single value when n == 1 and its key is NULL.
 * as_text: values written as strings (tags, metadata). */
void rf_trace_put_kvs(rf_rec *r, const char *key, const rf_kv *kv, size_t n, bool as_text);
/* Always a map (NULL keys become ""). */
void rf_trace_put_map(rf_rec *r, const char *key, const rf_kv *kv, size_t n, bool as_text);

#endif
