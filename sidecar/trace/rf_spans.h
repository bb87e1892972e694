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

enum rf_tspan_status { RF_TSPAN_UNSET = 0, RF_TSPAN_OK = 1, RF_TSPAN_ERROR = 2 };

/* The sidecar's span store is rf_tspan_* / rf_ttrace_* ("trace store"):
 * rf_span_* and rf_trace_* are libringflow's public tracing API
 * (ringflow_trace.h), linked into the same binaries. */
struct rf_tspan {
	uint64_t id, parent;      /* parent 0: a root (or resolved to the root) */
	char *name, *type;        /* type: MLflow span type (LLM, TOOL, ...) */
	int64_t start_ns, end_ns; /* end_ns 0: still open */
	enum rf_tspan_status status;
	char *status_msg;
	json_t *attrs;            /* key -> JSON value (never NULL) */
	json_t *inputs, *outputs; /* NULL: none */
	json_t *events;           /* [{name, time_ns, attributes}] or NULL */
	bool sent;                /* uploaded: payload freed, id kept for parents */
};

struct rf_ttrace {
	uint8_t id[16];
	struct rf_tspan *spans;
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
uint64_t rf_tspan_id_of(const char *kind, const char *id);
void rf_ttrace_id_of(uint8_t out[16], const char *kind, const char *id);
/* "tr-<32 hex>" (MLflow's trace id) into out[36]. */
void rf_ttrace_id_str(const uint8_t id[16], char out[36]);

struct rf_ttrace *rf_ttrace_new(const uint8_t id[16]);
void rf_ttrace_free(struct rf_ttrace *tr);
/* The span with this id, created (zeroed, open) when missing and `create`
 * (NULL, counted in tr->capped, past RF_TRACE_SPANS_MAX).  Pointers stay
 * valid until the next creation. */
struct rf_tspan *rf_ttrace_span(struct rf_ttrace *tr, uint64_t id, bool create);
void rf_tspan_set_name(struct rf_tspan *s, const char *name, const char *type);
void rf_tspan_attr(struct rf_tspan *s, const char *key, json_t *v); /* v stolen; NULL ignored */
/* Replace the span's inputs / outputs (v stolen): a record seen twice, as
 * after a journal replay, must not leak the first copy. */
void rf_tspan_inputs(struct rf_tspan *s, json_t *v);
void rf_tspan_outputs(struct rf_tspan *s, json_t *v);
void rf_tspan_event(struct rf_tspan *s, const char *name, int64_t time_ns, json_t *attrs);
void rf_tspan_error(struct rf_tspan *s, const char *type, const char *msg, int64_t time_ns);
void rf_tspan_end(struct rf_ttrace *tr, struct rf_tspan *s, int64_t end_ns);
/* End every open span at end_ns with ERROR and `msg`; returns how many. */
size_t rf_ttrace_close_open(struct rf_ttrace *tr, int64_t end_ns, const char *msg);
/* Drop a sent span's payload (keeps its id and parent). */
void rf_tspan_release(struct rf_tspan *s);

/* One span as an OTLP JSON span object.  A parent that is not in the trace
 * is replaced by the trace's root so no span is orphaned. */
json_t *rf_otlp_span(const struct rf_ttrace *tr, const struct rf_tspan *s);
/* {"resourceSpans":[{resource, scopeSpans:[{scope, spans}]}]} (spans stolen). */
json_t *rf_otlp_request(json_t *spans);
/* The same request as compact JSON text around spans already encoded
 * (`len` bytes of comma-separated span objects), malloc'd, or NULL (ENOMEM).
 * service_name: the resource carries service.name=ringflow (for an
 * OpenTelemetry collector; MLflow would keep it as a trace tag). */
char *rf_otlp_body(const char *spans, size_t len, bool service_name);
/* A JSON value as an OTLP AnyValue. */
json_t *rf_otlp_anyvalue(json_t *v);

#endif
