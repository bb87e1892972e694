/*
 * rf_metrics.h - pending metric rows, compact, and the log-batch body.
 *
 * Metrics are the bulk of what ringflowd sends (about two per event), so
 * they are kept as 32-byte rows with an interned, already-sanitised key
 * rather than as JSON objects, and written into the request body directly.
 */
#ifndef RF_METRICS_H
#define RF_METRICS_H

#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rf_keys; /* interned metric keys (one table per run, freed with it) */

/* At most `max` distinct names: a producer inventing names (300,000 unique
 * scorers) must not grow the sidecar without bound. */
struct rf_keys *rf_keys_new(uint32_t max);
void rf_keys_free(struct rf_keys *k);
#define RF_KEYS_FULL UINT32_MAX
/* The id of `raw` after sanitising (rf_mlflow_sanitize_key), interned;
 * RF_KEYS_FULL when it is new and the table holds `max` names already (or
 * memory ran out): the caller drops the metric and counts it. */
uint32_t rf_keys_id(struct rf_keys *k, const char *raw);
const char *rf_keys_str(const struct rf_keys *k, uint32_t id);

struct rf_pmetric {
	uint32_t key;
	double value;
	int64_t ts, step;
};

/* FIFO of pending rows (a ring buffer that grows). */
struct rf_mqueue {
	struct rf_pmetric *v;
	size_t head, n, cap;
};

int rf_mq_push(struct rf_mqueue *q, const struct rf_pmetric *m);
int rf_mq_push_front(struct rf_mqueue *q, const struct rf_pmetric *m, size_t n);
size_t rf_mq_take(struct rf_mqueue *q, struct rf_pmetric *out, size_t max);
void rf_mq_free(struct rf_mqueue *q);

/* {"run_id":..,"metrics":[..],"params":[..],"tags":[..]}.  The metric rows
 * are printed here: their keys come from rf_keys (a charset that needs no
 * JSON escaping) and values are numbers ("NaN"/"Infinity" as strings, which
 * MLflow accepts for doubles); run_id, params and tags go through jansson. */
char *rf_batch_body(const char *run_id, const struct rf_keys *k, const struct rf_pmetric *m,
		    size_t nm, json_t *params, json_t *tags, size_t *len);

/* Inspect's value_to_float(): a score value as the metric's number (C 1,
 * P 0.5, I and N 0, yes/true 1, no/false 0, numeric strings, bools,
 * numbers; NaN stays NaN); false when the value has none (a structure). */
bool rf_value_to_float(const msgpack_object *v, double *out);

#endif
