/*
 * ringflow.h - libringflow: write evaluation telemetry records into the ring.
 *
 * A record is one msgpack map, encoded in place in the shared-memory ring
 * (docs/EVENTS.md lists every record type and field).  Typical use:
 *
 *	rf_producer *p;
 *	rf_producer_open(&p, NULL);              // ring of this user, created if missing
 *	rf_rec rec;
 *	if (rf_rec_begin(p, &rec, RF_EV_MODEL_CALL, 0) == 0) {
 *		rf_rec_str(&rec, "model", "openai/gpt-4o");
 *		rf_rec_int(&rec, "input_tokens", 812);
 *		rf_rec_end(&rec);                 // commit
 *	}
 *
 * Thread-safe (one rf_rec per thread at a time), fork-safe (a child keeps
 * using the handle and re-registers itself), no allocation on the hot path.
 * Functions return 0 or -errno; rf_errmsg() explains the last failure.
 */
#ifndef RINGFLOW_H
#define RINGFLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RF_SCHEMA_VERSION 1

/* Record types (the ring record type).  docs/EVENTS.md is the reference. */
enum rf_event_type {
	RF_EV_EVAL_SET_START = 1,
	RF_EV_EVAL_SET_END = 2,
	RF_EV_RUN_START = 3,
	RF_EV_RUN_END = 4,
	RF_EV_TASK_START = 5,
	RF_EV_TASK_END = 6,
	RF_EV_SAMPLE_INIT = 7,
	RF_EV_SAMPLE_START = 8,
	RF_EV_ATTEMPT_START = 9,
	RF_EV_ATTEMPT_END = 10,
	RF_EV_SAMPLE_END = 11,
	RF_EV_MODEL_CALL = 12,
	RF_EV_TOOL_CALL = 13,
	RF_EV_SCORE = 14,
	RF_EV_SPAN_BEGIN = 15,
	RF_EV_SPAN_END = 16,
	RF_EV_ERROR = 17,
	RF_EV_SAMPLE_LIMIT = 18,
	RF_EV_MODEL_RETRY = 19,
	RF_EV_MODEL_USAGE = 20,
	RF_EV_LOG = 21,
	RF_EV_SAMPLE_SCORING = 22,
	RF_EV_MODEL_CACHE_USAGE = 23,
	RF_EV_TRACE_SPAN_START = 24, /* general tracing (rf_trace_* / rf_span_*) */
	RF_EV_TRACE_SPAN_END = 25,
	RF_EV_TRACE_SPAN_EVENT = 26,
	RF_EV_TRACE_UPDATE = 27,
	RF_EV_TRACE_ASSESSMENT = 28, /* feedback / expectation on a trace */
	RF_EV_TRACE_TAG = 29,        /* set or delete a trace tag */
	RF_EV_MAX_BUILTIN = 29,
};

/* "model_call" for RF_EV_MODEL_CALL; NULL for unknown types. */
const char *rf_event_name(int type);

typedef struct rf_producer rf_producer;

struct rf_producer_opts {
	const char *ring;       /* NULL: $RINGFLOW_RING or /ringflow-<uid> */
	const char *spool_dir;  /* NULL: recorded in the ring (or the default) */
	size_t capacity;        /* ring size if this call creates it; 0 = default */
	int full_policy;        /* 0 spill (default), 1 wait, 2 drop (see rf_ring.h) */
	uint64_t full_wait_ns;  /* 0 = default (10 ms) */
	size_t max_text;        /* longest string kept whole; 0 = $RINGFLOW_MAX_TEXT or 16 KiB */
};

/* Attach to the ring, creating it if missing (so records are kept even when
 * the sidecar starts later). */
int rf_producer_open(rf_producer **out, const struct rf_producer_opts *opts);
void rf_producer_close(rf_producer *p);
const char *rf_errmsg(void);

/* Strings equal to or containing one of these are written as "[REDACTED]"
 * (e.g. the values of API-key environment variables).  Copies the strings.
 * Values under secret-looking keys (api_key, token, password, secret,
 * authorization, ...) and "Bearer ..." strings are always redacted. */
int rf_producer_add_secret(rf_producer *p, const char *secret);

/* The one rule for secret environment variables, for every producer and the
 * sidecar: a name containing KEY, TOKEN, SECRET, PASSWORD, PASSWD or
 * CREDENTIAL (any case) whose value has at least RF_SECRET_ENV_MIN bytes.
 * rf_producer_open() registers every such value with rf_producer_add_secret(). */
#define RF_SECRET_ENV_MIN 8
bool rf_secret_env_name(const char *name, size_t len);

/* Is `key` secret-looking (api_key, *_token, password, authorization, ...)?
 * The rule the encoder applies; exported so consumers can apply it too. */
bool rf_secret_key(const char *key);

/* Is a consumer (the sidecar) attached and alive? */
bool rf_producer_consumer_alive(rf_producer *p);

/* End of a burst (an eval's task or run ended): records that went to a spill
 * file while the ring was full are sealed into the ring's order now if it has
 * room, instead of waiting for this process's next record or its exit.
 * 0, or -ENOSPC (still full; they follow with the next record). */
int rf_producer_flush(rf_producer *p);

struct rf_producer_stats {
	uint64_t records;       /* records committed by this handle */
	uint64_t errors;        /* records lost to errors (also counted in the ring) */
	uint64_t truncated;     /* strings cut to max_text */
	uint64_t redacted;      /* values replaced by "[REDACTED]" */
	uint64_t ring_spilled, ring_dropped, ring_spill_failed; /* ring-wide */
};
void rf_producer_stats(rf_producer *p, struct rf_producer_stats *st);

/* ---- record builder ----
 * Keys are NUL-terminated; inside an array pass key = NULL.  Errors inside a
 * record (too deep, out of memory) are reported by rf_rec_end(). */

#define RF_REC_MAX_DEPTH 16

typedef struct rf_rec {
	rf_producer *p;
	uint8_t *buf;      /* claimed ring space, or the overflow buffer */
	size_t cap, len;
	int type, err, depth, redact_depth;
	bool in_ring;
	uint32_t count[RF_REC_MAX_DEPTH + 1];  /* entries at each open level */
	uint32_t hdr_off[RF_REC_MAX_DEPTH + 1]; /* offset of each level's header */
	uint64_t claim[3]; /* private: the ring claim */
} rf_rec;

/* Start a record of `type`; size_hint is the expected encoded size (0 = 1 KiB).
 * A record that outgrows its hint still works (copied once at the end). */
int rf_rec_begin(rf_producer *p, rf_rec *r, int type, size_t size_hint);
void rf_rec_str(rf_rec *r, const char *key, const char *val); /* NULL -> nil */
void rf_rec_strn(rf_rec *r, const char *key, const char *val, size_t n);
void rf_rec_int(rf_rec *r, const char *key, int64_t v);
void rf_rec_double(rf_rec *r, const char *key, double v);
void rf_rec_bool(rf_rec *r, const char *key, bool v);
void rf_rec_nil(rf_rec *r, const char *key);
void rf_rec_bin(rf_rec *r, const char *key, const void *data, size_t n);
/* A pre-encoded msgpack value (e.g. a structured attribute), copied as is. */
void rf_rec_msgpack(rf_rec *r, const char *key, const void *data, size_t n);
void rf_rec_map_begin(rf_rec *r, const char *key);
void rf_rec_map_end(rf_rec *r);
void rf_rec_array_begin(rf_rec *r, const char *key);
void rf_rec_array_end(rf_rec *r);
/* Commit the record (0) or report why it was not written (-errno). */
int rf_rec_end(rf_rec *r);
/* Give up on a started record. */
void rf_rec_abort(rf_rec *r);

#ifdef __cplusplus
}
#endif

/* General tracing (rf_trace_* / rf_span_*): any program's MLflow traces. */
#include "ringflow_trace.h"

#endif /* RINGFLOW_H */
