/*
 * rf_spans.h - traces and spans as ringflowd builds them, and their
 * OTLP/JSON encoding.
 *
 * A trace is a set of spans keyed by 64-bit span id, built from records
 * (Inspect events by rf_trace_inspect.c, the general tracing API by
 * rf_traces.c).  Times are the events' own (ns since the epoch), never the
 * time a record arrived.  Spans are encoded as OTLP/HTTP JSON
 * (opentelemetry-proto's JSON mapping: hex ids, AnyValue attributes), which
 * MLflow's /v1/traces and any OpenTelemetry collector accept.
 */
#ifndef RF_SPANS_H
#define RF_SPANS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rf_xspan_status { RF_XSPAN_UNSET = 0, RF_XSPAN_OK = 1, RF_XSPAN_ERROR = 2 };

/* "xspan": rf_span_* is libringflow's public tracing API (ringflow_trace.h). */
struct rf_xspan {
	uint64_t id, parent;      /* parent 0: a root (or resolved to the root) */
	char *name, *type;        /* type: MLflow span type (LLM, TOOL, ...) */
	int64_t start_ns, end_ns; /* end_ns 0: still open */
	int status;               /* enum rf_xspan_status */
	char *status_msg;
	json_t *attrs;            /* key -> JSON value (never NULL) */
	json_t *inputs, *outputs; /* NULL: none */
	json_t *events;           /* [{name, time_ns, attributes}] or NULL */
	bool sent;                /* uploaded: payload freed, id kept for parents */
};

struct rf_trace {
	uint8_t id[16];
	struct rf_xspan *spans;
	size_t n, cap;
	uint32_t *index;          /* open addressing: span id -> slot + 1 */
	size_t index_cap;
	uint64_t root;            /* root span id (0 until known) */
	size_t unsent_ended;      /* spans ended and not yet uploaded */
	uint64_t capped;          /* spans refused: the trace holds RF_TRACE_SPANS_MAX */
};

/* Spans one trace may hold (sent ones keep ~100 bytes for their children's
 * parent links): a root that never ends cannot grow the sidecar without
 * bound.  rf_traces closes a trace that reaches it (ERROR) and counts what
 * it refused (spans_capped). */
#define RF_TRACE_SPANS_MAX 50000

/* 64-bit hash of bytes (FNV-1a, then a splitmix64 finaliser), and the
 * deterministic ids derived from Inspect's own ids: the same record always
 * gives the same trace and span ids, so a replayed journal upserts the same
 * spans instead of duplicating them. */
uint64_t rf_hash64(uint64_t seed, const void *data, size_t n);
uint64_t rf_span_id_of(const char *kind, const char *id);
void rf_trace_id_of(uint8_t out[16], const char *kind, const char *id);
/* "tr-<32 hex>" (MLflow's trace id) into out[36]. */
void rf_trace_id_str(const uint8_t id[16], char out[36]);

struct rf_trace *rf_trace_new(const uint8_t id[16]);
void rf_trace_free(struct rf_trace *tr);
/* The span with this id, created (zeroed, open) when missing and `create`
 * (NULL, counted in tr->capped, past RF_TRACE_SPANS_MAX).  Pointers stay
 * valid until the next creation. */
struct rf_xspan *rf_trace_span(struct rf_trace *tr, uint64_t id, bool create);
void rf_span_set_name(struct rf_xspan *s, const char *name, const char *type);
void rf_span_attr(struct rf_xspan *s, const char *key, json_t *v); /* v stolen; NULL ignored */
/* Replace the span's inputs / outputs (v stolen): a record seen twice, as
 * after a journal replay, must not leak the first copy. */
void rf_span_inputs(struct rf_xspan *s, json_t *v);
void rf_span_outputs(struct rf_xspan *s, json_t *v);
void rf_span_event(struct rf_xspan *s, const char *name, int64_t time_ns, json_t *attrs);
void rf_span_error(struct rf_xspan *s, const char *type, const char *msg, int64_t time_ns);
void rf_xspan_end(struct rf_trace *tr, struct rf_xspan *s, int64_t end_ns);
/* End every open span at end_ns with ERROR and `msg`; returns how many. */
size_t rf_trace_close_open(struct rf_trace *tr, int64_t end_ns, const char *msg);
/* Drop a sent span's payload (keeps its id and parent). */
void rf_span_release(struct rf_xspan *s);

/* One span as an OTLP JSON span object.  A parent that is not in the trace
 * is replaced by the trace's root so no span is orphaned. */
json_t *rf_otlp_span(const struct rf_trace *tr, const struct rf_xspan *s);
/* {"resourceSpans":[{resource, scopeSpans:[{scope, spans}]}]} (spans stolen). */
json_t *rf_otlp_request(json_t *spans);
/* A JSON value as an OTLP AnyValue. */
json_t *rf_otlp_anyvalue(json_t *v);

#endif
