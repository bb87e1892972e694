/*
 * rf_metrics.c - see rf_metrics.h.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_decode.h"
#include "rf_hash.h"
#include "rf_metrics.h"
#include "rf_mlflow.h"

struct rf_keys {
	char **clean; /* by id: the sanitised key (<= 250 bytes) */
	uint32_t n, cap, max;
	uint32_t *slots; /* open addressing on clean keys: id + 1, 0 = empty */
	size_t nslots;
};

struct rf_keys *rf_keys_new(uint32_t max)
{
	struct rf_keys *k = calloc(1, sizeof *k);
	if (k) {
		k->max = max;
		k->nslots = 64;
		k->slots = calloc(k->nslots, sizeof *k->slots);
		if (!k->slots) {
			free(k);
			k = NULL;
		}
	}
	return k;
}

void rf_keys_free(struct rf_keys *k)
{
	if (!k)
		return;
	for (uint32_t i = 0; i < k->n; i++)
		free(k->clean[i]);
	free(k->clean);
	free(k->slots);
	free(k);
}

static void rehash(struct rf_keys *k)
{
	size_t ns = k->nslots * 2;
	uint32_t *s = calloc(ns, sizeof *s);
	if (!s)
		return;
	for (uint32_t id = 0; id < k->n; id++) {
		size_t j = rf_hash_str(k->clean[id]) & (ns - 1);
		while (s[j])
			j = (j + 1) & (ns - 1);
		s[j] = id + 1;
	}
	free(k->slots);
	k->slots = s;
	k->nslots = ns;
}

uint32_t rf_keys_id(struct rf_keys *k, const char *raw)
{
	/* Interned by the sanitised key: what is kept per name is bounded
	 * (<= 250 bytes) however long the producer's name was. */
	char clean[256];
	snprintf(clean, sizeof clean, "%s", raw);
	rf_mlflow_sanitize_key(clean);
	size_t j = rf_hash_str(clean) & (k->nslots - 1);
	while (k->slots[j]) {
		uint32_t id = k->slots[j] - 1;
		if (!strcmp(k->clean[id], clean))
			return id;
		j = (j + 1) & (k->nslots - 1);
	}
	if (k->n >= k->max || (size_t)k->n * 2 > k->nslots) /* (the last rehash failed) */
		return RF_KEYS_FULL;
	if (k->n == k->cap) {
		uint32_t cap = k->cap ? k->cap * 2 : 16;
		char **c = realloc(k->clean, cap * sizeof *c);
		if (!c)
			return RF_KEYS_FULL;
		k->clean = c;
		k->cap = cap;
	}
	char *dup = strdup(clean);
	if (!dup)
		return RF_KEYS_FULL;
	uint32_t id = k->n++;
	k->clean[id] = dup;
	k->slots[j] = id + 1;
	if ((size_t)k->n * 2 > k->nslots)
		rehash(k);
	return id;
}

const char *rf_keys_str(const struct rf_keys *k, uint32_t id)
{
	return id < k->n ? k->clean[id] : "_";
}

static int grow(struct rf_mqueue *q, size_t need)
{
	if (q->n + need <= q->cap)
		return 0;
	size_t cap = q->cap ? q->cap * 2 : 1024;
	while (cap < q->n + need)
		cap *= 2;
	struct rf_pmetric *v = malloc(cap * sizeof *v);
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < q->n; i++)
		v[i] = q->v[(q->head + i) % q->cap];
	free(q->v);
	q->v = v;
	q->cap = cap;
	q->head = 0;
	return 0;
}

int rf_mq_push(struct rf_mqueue *q, const struct rf_pmetric *m)
{
	if (grow(q, 1))
		return -ENOMEM;
	q->v[(q->head + q->n) % q->cap] = *m;
	q->n++;
	return 0;
}

int rf_mq_push_front(struct rf_mqueue *q, const struct rf_pmetric *m, size_t n)
{
	if (grow(q, n))
		return -ENOMEM;
	for (size_t i = n; i-- > 0;) {
		q->head = (q->head + q->cap - 1) % q->cap;
		q->v[q->head] = m[i];
		q->n++;
	}
	return 0;
}

size_t rf_mq_take(struct rf_mqueue *q, struct rf_pmetric *out, size_t max)
{
	size_t n = q->n < max ? q->n : max;
	for (size_t i = 0; i < n; i++)
		out[i] = q->v[(q->head + i) % q->cap];
	q->head = q->cap ? (q->head + n) % q->cap : 0;
	q->n -= n;
	return n;
}

void rf_mq_free(struct rf_mqueue *q)
{
	free(q->v);
	memset(q, 0, sizeof *q);
}

char *rf_batch_body(const char *run_id, const struct rf_keys *k, const struct rf_pmetric *m,
		    size_t nm, json_t *params, json_t *tags, size_t *len)
{
	json_t *js = json_string(run_id);
	char *id = json_dumps(js, JSON_ENCODE_ANY | JSON_COMPACT);
	json_decref(js);
	char *p = json_dumps(params, JSON_COMPACT);
	char *t = json_dumps(tags, JSON_COMPACT);
	size_t cap = 64 + (id ? strlen(id) : 0) + (p ? strlen(p) : 0) + (t ? strlen(t) : 0) + nm * 340;
	char *out = malloc(cap);
	if (!id || !p || !t || !out) {
		free(id), free(p), free(t), free(out);
		return NULL;
	}
	size_t o = (size_t)snprintf(out, cap, "{\"run_id\":%s,\"metrics\":[", id);
	for (size_t i = 0; i < nm; i++) {
		char v[40];
		double x = m[i].value;
		if (isnan(x))
			snprintf(v, sizeof v, "\"NaN\"");
		else if (isinf(x))
			snprintf(v, sizeof v, "\"%sInfinity\"", x < 0 ? "-" : "");
		else
			snprintf(v, sizeof v, "%.17g", x);
		o += (size_t)snprintf(out + o, cap - o,
				      "%s{\"key\":\"%s\",\"value\":%s,\"timestamp\":%lld,\"step\":%lld}",
				      i ? "," : "", rf_keys_str(k, m[i].key), v, (long long)m[i].ts,
				      (long long)m[i].step);
	}
	o += (size_t)snprintf(out + o, cap - o, "],\"params\":%s,\"tags\":%s}", p, t);
	free(id), free(p), free(t);
	*len = o;
	return out;
}

/* Inspect's value_to_float(): C 1, P 0.5, I and N 0, yes/true 1, no/false 0,
 * numeric strings, bools, numbers; NaN stays NaN (unscored). */
bool rf_value_to_float(const msgpack_object *v, double *out)
{
	bool b;
	const char *s;
	size_t n;
	if (!v)
		return false;
	if (rf_obj_bool(v, &b)) {
		*out = b;
		return true;
	}
	if (rf_obj_num(v, out))
		return true;
	if (!rf_obj_str(v, &s, &n))
		return false;
	char buf[64];
	if (n >= sizeof buf)
		n = sizeof buf - 1;
	memcpy(buf, s, n);
	buf[n] = 0;
	if (!strcmp(buf, "C")) {
		*out = 1.0;
	} else if (!strcmp(buf, "P")) {
		*out = 0.5;
	} else if (!strcmp(buf, "I") || !strcmp(buf, "N")) {
		*out = 0.0;
	} else if (!strcasecmp(buf, "yes") || !strcasecmp(buf, "true")) {
		*out = 1.0;
	} else if (!strcasecmp(buf, "no") || !strcasecmp(buf, "false")) {
		*out = 0.0;
	} else {
		char *end;
		double d = strtod(buf, &end);
		/* Inspect converts anything else to 0.0 with a warning. */
		*out = (end != buf && *end == 0 && isfinite(d)) ? d : 0.0;
	}
	return true;
}
