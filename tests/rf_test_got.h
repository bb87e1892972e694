/*
 * rf_test_got.h - records drained from a ring and decoded with the
 * sidecar's decoder (msgpack-c) into JSON, for tests that check what a
 * producer wrote (test_producer, test_trace).
 */
#ifndef RF_TEST_GOT_H
#define RF_TEST_GOT_H

#include <jansson.h>

#include "rf_decode.h"
#include "rf_err.h"
#include "rf_ring.h"
#include "rf_test.h"

#define RF_TEST_GOT_MAX 60000

struct got {
	int n;
	int types[RF_TEST_GOT_MAX];
	json_t *data[RF_TEST_GOT_MAX];
	int malformed; /* records the decoder refused (each one printed) */
};

static int rf_test_got_rec(const struct rf_ring_rec *rec, void *arg)
{
	struct got *g = arg;
	rf_decoded d;
	if (g->n >= RF_TEST_GOT_MAX)
		return 1;
	if (rf_decode(&d, rec->data, rec->len) == 0) {
		g->types[g->n] = rec->type;
		g->data[g->n] = rf_obj_to_json(d.root);
		g->n++;
	} else {
		fprintf(stderr, "malformed: %s\n", rf_err_msg());
		g->malformed++;
	}
	rf_decoded_free(&d);
	return 0;
}

/* Everything the ring holds now (three empty reads in a row), `batch`
 * records per read (the ring frees a read's space at its end: a small
 * batch keeps room for producers writing meanwhile). */
static void rf_test_drain(rf_ring *c, struct got *g, unsigned batch)
{
	for (int idle = 0; idle < 3;) {
		int n = rf_ring_consume(c, rf_test_got_rec, g, batch);
		CHECK(n >= 0);
		idle = n ? 0 : idle + 1;
	}
}

static void rf_test_got_reset(struct got *g)
{
	for (int i = 0; i < g->n; i++)
		json_decref(g->data[i]);
	g->n = 0;
	g->malformed = 0;
}

static inline const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

#endif
