/*
 * ringflow_trace.h - general tracing: any C program sends MLflow traces
 * through the ring (records 24-27, docs/EVENTS.md).  Included by ringflow.h.
 *
 *	rf_span *s = rf_span_start("answer", RF_SPAN_CHAIN,
 *				   RF_KVS(RF_STR("question", q), RF_INT("k", 5)));
 *	rf_span *c = rf_span_start("search", RF_SPAN_RETRIEVER, NULL, 0); // child of s
 *	rf_span_add_event(c, "cache_miss", RF_KVS(RF_STR("key", q)));
 *	rf_span_end(c, RF_KVS(RF_STR(NULL, "3 documents")));  // outputs = a string
 *	rf_trace_update(s, RF_KVS(RF_STR("session", "s-42")), NULL, 0);
 *	rf_span_end(s, RF_KVS(RF_STR("answer", a)));
 *
 * A span is two records written in the calling thread (start, end); the
 * sidecar builds the MLflow trace.  rf_span_start() makes the span the
 * thread's current one (children nest under it; end it on the same thread);
 * rf_span_start_with() takes an explicit parent for callback code and may be
 * ended on any thread.  Sampling and enable/disable are decided once per
 * trace, at its root: a trace that is not recorded writes no record at all,
 * and its spans are cheap no-ops.  No call returns NULL or needs checking;
 * losses are counted (rf_trace_stats).  The library never prints: a span
 * that could not be recorded, or a configuration value it ignored, is
 * counted there and explained by rf_errmsg() in the thread that met it.
 */
#ifndef RINGFLOW_TRACE_H
#define RINGFLOW_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rf_producer;

/* Span types MLflow knows (any other string is kept as a custom type). */
#define RF_SPAN_LLM "LLM"
#define RF_SPAN_CHAT_MODEL "CHAT_MODEL"
#define RF_SPAN_CHAIN "CHAIN"
#define RF_SPAN_AGENT "AGENT"
#define RF_SPAN_TOOL "TOOL"
#define RF_SPAN_RETRIEVER "RETRIEVER"
#define RF_SPAN_EMBEDDING "EMBEDDING"
#define RF_SPAN_RERANKER "RERANKER"
#define RF_SPAN_PARSER "PARSER"
#define RF_SPAN_UNKNOWN "UNKNOWN"

enum rf_span_status {
	RF_STATUS_OK = 0, /* the default */
	RF_STATUS_ERROR,
	RF_STATUS_CANCELLED,
	RF_STATUS_TIMEOUT,
	RF_STATUS_UNSET,
};

/* A typed value: inputs, outputs, attributes, event attributes, tags. */
enum rf_kv_kind { RF_KV_STR = 1, RF_KV_INT, RF_KV_DOUBLE, RF_KV_BOOL, RF_KV_MSGPACK, RF_KV_NIL };
typedef struct rf_kv {
	const char *key; /* NULL in a list of one: the value is the whole input/output */
	int kind;
	union {
		const char *s; /* RF_KV_STR (n bytes, or NUL-terminated if n == 0) */
		int64_t i;
		double d;
		bool b;
		const void *mp; /* RF_KV_MSGPACK: one encoded msgpack value of n bytes */
	} u;
	size_t n;
} rf_kv;

#define RF_STR(k, v) ((rf_kv){.key = (k), .kind = RF_KV_STR, .u.s = (v)})
#define RF_STRN(k, v, len) ((rf_kv){.key = (k), .kind = RF_KV_STR, .u.s = (v), .n = (len)})
#define RF_INT(k, v) ((rf_kv){.key = (k), .kind = RF_KV_INT, .u.i = (v)})
#define RF_DOUBLE(k, v) ((rf_kv){.key = (k), .kind = RF_KV_DOUBLE, .u.d = (v)})
#define RF_BOOL(k, v) ((rf_kv){.key = (k), .kind = RF_KV_BOOL, .u.b = (v)})
#define RF_MSGPACK(k, p, len) ((rf_kv){.key = (k), .kind = RF_KV_MSGPACK, .u.mp = (p), .n = (len)})
/* RF_KVS(a, b, ...) expands to the two arguments `const rf_kv *kv, size_t n`. */
#define RF_KVS(...) ((const rf_kv[]){__VA_ARGS__}), \
	(sizeof((const rf_kv[]){__VA_ARGS__}) / sizeof(rf_kv))

typedef struct rf_span rf_span;

/* ---- configuration (process-wide; read at each trace's root) ---- */
/* Default on; off if $RINGFLOW_DISABLED or $RINGFLOW_TRACE_DISABLED is on:
 * set to anything but empty, 0, false, no or off (any case), as everywhere
 * in ringflow (README.md, "Configuration"). */
void rf_trace_enable(bool on);
bool rf_trace_enabled(void);
/* Fraction of traces recorded, 0.0-1.0 (-EINVAL otherwise).  Default: the
 * first of $RINGFLOW_TRACE_SAMPLE_RATE, $MLFLOW_TRACE_SAMPLING_RATIO that
 * is a number in 0.0-1.0 (one set to anything else is ignored and counted
 * in config_ignored), else 1. */
int rf_trace_set_sample_rate(double rate);
/* Destination experiment name (copied); NULL = the sidecar's experiment.
 * Default $RINGFLOW_TRACE_EXPERIMENT. */
int rf_trace_set_experiment(const char *name);
/* Producer to write with; NULL (default) = one the library opens on first
 * use ($RINGFLOW_RING).  The producer must outlive every span using it. */
void rf_trace_set_producer(struct rf_producer *p);

/* ---- spans ---- */
/* Child of this thread's current span, or the root of a new trace; becomes
 * the current span until rf_span_end (which must run on this thread). */
rf_span *rf_span_start(const char *name, const char *span_type, const rf_kv *inputs, size_t n);
/* Child of `parent` (NULL: root of a new trace); not made current, may be
 * ended on any thread. */
rf_span *rf_span_start_with(rf_span *parent, const char *name, const char *span_type,
			    const rf_kv *inputs, size_t n);
/* This thread's current span, or NULL. */
rf_span *rf_span_current(void);
/* Is this span recorded (false: disabled, sampled out, or NULL)? */
bool rf_span_recording(const rf_span *s);

/* Kept in the span and written with its end record.  Attributes merge by
 * key (last wins); inputs replace those given at start; outputs given to
 * rf_span_end replace ones set here.  0 or -errno (-ENOMEM, -EINVAL). */
int rf_span_set_attrs(rf_span *s, const rf_kv *kv, size_t n);
int rf_span_set_inputs(rf_span *s, const rf_kv *kv, size_t n);
int rf_span_set_outputs(rf_span *s, const rf_kv *kv, size_t n);
void rf_span_set_status(rf_span *s, enum rf_span_status st, const char *message);
/* Written at once (record 26). */
int rf_span_add_event(rf_span *s, const char *name, const rf_kv *attrs, size_t n);
/* The OTel "exception" event; also sets status ERROR "<type>: <message>"
 * unless a status was set.  stacktrace may be NULL. */
int rf_span_record_exception(rf_span *s, const char *type, const char *message,
			     const char *stacktrace);
/* Tags and metadata of the span's trace (NULL span: the current one's);
 * values are stored as strings.  Record 27, written at once. */
int rf_trace_update(rf_span *s, const rf_kv *tags, size_t ntags, const rf_kv *metadata,
		    size_t nmeta);
/* Write the end record (outputs may be NULL) and free the span. */
int rf_span_end(rf_span *s, const rf_kv *outputs, size_t n);

/* ---- assessments and tags on a trace (records 28, 29) ----
 * As MLflow's log_feedback / log_expectation and set_trace_tag /
 * delete_trace_tag.  The trace: that of span `s`, else `trace_id` (any
 * MLflow trace id, "tr-<32 hex>"), else the thread's current span's.  On a
 * trace still open (or not yet uploaded) they go with its info; on an
 * uploaded one the sidecar makes the call.  A trace that is not recorded
 * (sampled out) takes nothing.  0, -EINVAL (no trace, no name or key) or
 * the record's -errno (counted). */
enum rf_assessment_kind { RF_ASSESS_FEEDBACK = 0, RF_ASSESS_EXPECTATION = 1 };
struct rf_assessment {
	int kind;                 /* enum rf_assessment_kind */
	const char *name;         /* required */
	const rf_kv *value;       /* NULL: none (a feedback with an error); key ignored */
	const char *rationale;    /* NULL: none */
	const char *source_type;  /* "HUMAN", "LLM_JUDGE", "CODE"; NULL: CODE for a
				     feedback, HUMAN for an expectation (MLflow's defaults) */
	const char *source_id;    /* NULL: "default" */
	const char *error_code;   /* feedback only: it could not be computed */
	const char *error_message;
	const rf_kv *metadata;    /* values stored as strings */
	size_t nmeta;
	const rf_span *span;      /* the span it is about (NULL: the whole trace) */
};
int rf_trace_log_assessment(const rf_span *s, const char *trace_id,
			    const struct rf_assessment *a);
/* value NULL deletes the tag. */
int rf_trace_set_tag(const rf_span *s, const char *trace_id, const char *key, const char *value);
int rf_trace_delete_tag(const rf_span *s, const char *trace_id, const char *key);

/* "tr-<32 hex>" (MLflow's trace id) and the 16-hex span id; "" when not
 * recorded.  buf must hold 36 / 17 bytes. */
const char *rf_span_trace_id(const rf_span *s, char *buf);
const char *rf_span_id_hex(const rf_span *s, char *buf);

struct rf_trace_stats {
	uint64_t traces;      /* roots recorded */
	uint64_t sampled_out; /* roots not recorded (sampling or disabled) */
	uint64_t spans;       /* spans recorded */
	uint64_t errors;      /* records not written (ring, encoding, memory, or no
				 producer: the ring could not be opened) */
	uint64_t bad_values;  /* msgpack blobs written as "[invalid msgpack]" */
	uint64_t config_ignored; /* environment values ignored (a bad sample rate) */
};
void rf_trace_stats(struct rf_trace_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* RINGFLOW_TRACE_H */
