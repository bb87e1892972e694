/*
 * rf_trace_rec.c - the tracing records (24-27): ids, times, fixed fields and
 * typed values, written with the record builder (so redaction and
 * truncation apply as to every record).
 *
 * Ids come from a per-thread wyrand generator seeded from getrandom(): a few
 * ns per id, no lock, no syscall after the first.  A forked child would copy
 * its parent's generator and repeat its ids, so a fork bumps a generation
 * that makes every thread reseed.
 */
#include <errno.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "rf_zone.h"
#include "rf_clock.h"
#include "rf_producer_int.h"
#include "rf_trace_int.h"

_Atomic uint64_t rf_trace_bad_values;

static _Atomic unsigned fork_gen = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static __thread uint64_t rng_state;
static __thread unsigned rng_gen;

static void on_fork_child(void)
{
	atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}

static void atfork_init(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

static void rng_seed(unsigned gen)
{
	pthread_once(&atfork_once, atfork_init);
	uint64_t s = 0;
	if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
		/* No entropy yet (early boot): time, address and thread differ. */
		s = rf_now_ns() * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&s ^
		    (uint64_t)pthread_self();
	}
	rng_state = s;
	rng_gen = gen;
}

static inline uint64_t rng_next(void)
{
	unsigned gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
	if (__builtin_expect(rng_gen != gen, 0))
		rng_seed(gen);
	rng_state += 0xa0761d6478bd642full; /* wyrand */
	__uint128_t m = (__uint128_t)rng_state * (rng_state ^ 0xe7037ed1a0b428dbull);
	return (uint64_t)(m >> 64) ^ (uint64_t)m;
}

uint64_t rf_trace_now_ns(void)
{
	return rf_realtime_ns();
}

void rf_trace_new_trace_id(uint8_t id[16])
{
	uint64_t a = rng_next(), b = rng_next();
	memcpy(id, &a, 8);
	memcpy(id + 8, &b, 8);
}

/* 63 bits: nonzero and below 2^63, so readers that take int64 (jansson,
 * rf_obj_int, most JSON) read it exactly; uniqueness within a trace is all
 * a span id needs. */
uint64_t rf_trace_new_span_id(void)
{
	uint64_t v;
	while (!(v = rng_next() >> 1))
		;
	return v;
}

bool rf_trace_sample(double rate)
{
	if (rate >= 1.0)
		return true;
	if (!(rate > 0.0))
		return false;
	return (double)(rng_next() >> 11) * 0x1.0p-53 < rate;
}

const char *rf_trace_status_name(int st)
{
	switch (st) {
	case RF_STATUS_OK: return "OK";
	case RF_STATUS_ERROR: return "ERROR";
	case RF_STATUS_CANCELLED: return "CANCELLED";
	case RF_STATUS_TIMEOUT: return "TIMEOUT";
	default: return "UNSET";
	}
}

/* uint64 as msgpack 0xcf + 8 bytes big-endian (the builder packs int64). */
static void put_u64(rf_rec *r, const char *key, uint64_t v)
{
	uint8_t b[9] = {0xcf};
	for (int i = 0; i < 8; i++)
		b[1 + i] = (uint8_t)(v >> (56 - 8 * i));
	rf_rec_msgpack(r, key, b, sizeof b);
}

/* The fixed fields (ids, times) have known, non-secret keys: they are
 * encoded here into one buffer and copied into the record at once, instead
 * of a builder call (key length, secret-key check, packer) per field, which
 * was most of a span's cost. */
struct raw {
	uint8_t b[128];
	size_t n;
	uint32_t pairs;
};

static void raw_key(struct raw *w, const char *k, size_t n) /* n < 32: fixstr */
{
	w->b[w->n++] = (uint8_t)(0xa0 | n);
	memcpy(w->b + w->n, k, n);
	w->n += n;
	w->pairs++;
}
#define RAW_KEY(w, lit) raw_key((w), (lit), sizeof(lit) - 1)

static void raw_u64(struct raw *w, uint64_t v) /* 0xcf: any reader takes it */
{
	w->b[w->n++] = 0xcf;
	for (int i = 0; i < 8; i++)
		w->b[w->n++] = (uint8_t)(v >> (56 - 8 * i));
}

static void raw_flush(rf_rec *r, struct raw *w)
{
	rf_rec_msgpack(r, NULL, w->b, w->n); /* counted as one entry ... */
	if (!r->err)
		r->count[r->depth] += w->pairs - 1; /* ... it is w->pairs */
}

static int begin(rf_producer *p, rf_rec *r, int type, const uint8_t tid[16], struct raw *w)
{
	int rc = rf_rec_begin(p, r, type, 0);
	if (rc)
		return rc;
	w->n = 0;
	w->pairs = 0;
	RAW_KEY(w, "trace_id");
	w->b[w->n++] = 0xc4; /* bin 8 */
	w->b[w->n++] = 16;
	memcpy(w->b + w->n, tid, 16);
	w->n += 16;
	return 0;
}

int rf_trace_begin_start(rf_producer *p, rf_rec *r, const uint8_t tid[16], uint64_t sid,
			 uint64_t parent, const char *name, size_t name_len, const char *type,
			 size_t type_len, uint64_t start_ns, const char *experiment)
{
	struct raw w;
	int rc = begin(p, r, RF_EV_TRACE_SPAN_START, tid, &w);
	if (rc)
		return rc;
	RAW_KEY(&w, "span_id");
	raw_u64(&w, sid);
	if (parent) {
		RAW_KEY(&w, "parent_id");
		raw_u64(&w, parent);
	}
	RAW_KEY(&w, "start_ns");
	raw_u64(&w, start_ns);
	raw_flush(r, &w);
	rf_rec_strn(r, "name", name, name_len);
	rf_rec_strn(r, "span_type", type, type_len);
	if (experiment && !parent)
		rf_rec_str(r, "experiment", experiment);
	return 0;
}

int rf_trace_begin_end(rf_producer *p, rf_rec *r, const uint8_t tid[16], uint64_t sid,
		       uint64_t end_ns, const char *status, const char *message)
{
	struct raw w;
	int rc = begin(p, r, RF_EV_TRACE_SPAN_END, tid, &w);
	if (rc)
		return rc;
	RAW_KEY(&w, "span_id");
	raw_u64(&w, sid);
	RAW_KEY(&w, "end_ns");
	raw_u64(&w, end_ns);
	raw_flush(r, &w);
	if (status)
		rf_rec_str(r, "status", status);
	if (message)
		rf_rec_str(r, "status_message", message);
	return 0;
}

int rf_trace_begin_event(rf_producer *p, rf_rec *r, const uint8_t tid[16], uint64_t sid,
			 const char *name, uint64_t time_ns)
{
	struct raw w;
	int rc = begin(p, r, RF_EV_TRACE_SPAN_EVENT, tid, &w);
	if (rc)
		return rc;
	RAW_KEY(&w, "span_id");
	raw_u64(&w, sid);
	RAW_KEY(&w, "time_ns");
	raw_u64(&w, time_ns);
	raw_flush(r, &w);
	rf_rec_str(r, "name", name ? name : "event");
	return 0;
}

int rf_trace_begin_update(rf_producer *p, rf_rec *r, const uint8_t tid[16])
{
	struct raw w;
	int rc = begin(p, r, RF_EV_TRACE_UPDATE, tid, &w);
	if (rc)
		return rc;
	raw_flush(r, &w);
	return 0;
}

/* ---- typed values ---- */

/* A msgpack blob is decoded (msgpack-c) and re-encoded through the builder:
 * a malformed blob cannot corrupt the record, and redaction and truncation
 * reach inside structured values too. */
static void put_obj(rf_rec *r, const char *key, const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: rf_rec_nil(r, key); break;
	case MSGPACK_OBJECT_BOOLEAN: rf_rec_bool(r, key, o->via.boolean); break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			put_u64(r, key, o->via.u64);
		else
			rf_rec_int(r, key, (int64_t)o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: rf_rec_int(r, key, o->via.i64); break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: rf_rec_double(r, key, o->via.f64); break;
	case MSGPACK_OBJECT_STR: rf_rec_strn(r, key, o->via.str.ptr, o->via.str.size); break;
	case MSGPACK_OBJECT_BIN: rf_rec_bin(r, key, o->via.bin.ptr, o->via.bin.size); break;
	case MSGPACK_OBJECT_EXT: rf_rec_bin(r, key, o->via.ext.ptr, o->via.ext.size); break;
	case MSGPACK_OBJECT_ARRAY:
		rf_rec_array_begin(r, key);
		for (uint32_t i = 0; i < o->via.array.size; i++)
			put_obj(r, NULL, &o->via.array.ptr[i]);
		rf_rec_array_end(r);
		break;
	case MSGPACK_OBJECT_MAP:
		rf_rec_map_begin(r, key);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			char small[128], *k = small;
			if (kv->key.type == MSGPACK_OBJECT_STR) {
				size_t n = kv->key.via.str.size;
				if (n >= sizeof small && !(k = malloc(n + 1))) {
					r->err = r->err ? r->err : -ENOMEM;
					break;
				}
				memcpy(k, kv->key.via.str.ptr, n);
				k[n] = 0;
			} else if (kv->key.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
				snprintf(small, sizeof small, "%llu", (unsigned long long)kv->key.via.u64);
			} else if (kv->key.type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
				snprintf(small, sizeof small, "%lld", (long long)kv->key.via.i64);
			} else {
				snprintf(small, sizeof small, "[key %u]", i);
			}
			put_obj(r, k, &kv->val);
			if (k != small)
				free(k);
		}
		rf_rec_map_end(r);
		break;
	}
}

static void put_msgpack(rf_rec *r, const char *key, const void *data, size_t n)
{
	msgpack_zone *zone = rf_zone_get(RF_ZONE_ENCODE, 8192);
	if (!zone) {
		r->err = r->err ? r->err : -ENOMEM;
		return;
	}
	msgpack_object o;
	size_t off = 0;
	if (data && msgpack_unpack(data, n, &off, zone, &o) == MSGPACK_UNPACK_SUCCESS) {
		put_obj(r, key, &o);
		return;
	}
	/* Not one valid msgpack value: said so in the record, and counted. */
	rf_rec_str(r, key, "[invalid msgpack]");
	atomic_fetch_add_explicit(&rf_trace_bad_values, 1, memory_order_relaxed);
}

static void put_kv(rf_rec *r, const char *key, const rf_kv *kv, bool as_text)
{
	char num[64];
	switch (kv->kind) {
	case RF_KV_STR:
		if (kv->n)
			rf_rec_strn(r, key, kv->u.s, kv->n);
		else
			rf_rec_str(r, key, kv->u.s);
		return;
	case RF_KV_INT:
		if (!as_text)
			return rf_rec_int(r, key, kv->u.i);
		snprintf(num, sizeof num, "%lld", (long long)kv->u.i);
		break;
	case RF_KV_DOUBLE:
		if (!as_text)
			return rf_rec_double(r, key, kv->u.d);
		snprintf(num, sizeof num, "%.17g", kv->u.d);
		break;
	case RF_KV_BOOL:
		if (!as_text)
			return rf_rec_bool(r, key, kv->u.b);
		snprintf(num, sizeof num, "%s", kv->u.b ? "true" : "false");
		break;
	case RF_KV_MSGPACK:
		return put_msgpack(r, key, kv->u.mp, kv->n);
	default:
		return rf_rec_nil(r, key);
	}
	rf_rec_str(r, key, num);
}

void rf_trace_put_kvs(rf_rec *r, const char *key, const rf_kv *kv, size_t n, bool as_text)
{
	if (!kv || !n)
		return;
	if (n == 1 && !kv[0].key) {
		put_kv(r, key, &kv[0], as_text);
		return;
	}
	rf_trace_put_map(r, key, kv, n, as_text);
}

void rf_trace_put_map(rf_rec *r, const char *key, const rf_kv *kv, size_t n, bool as_text)
{
	rf_rec_map_begin(r, key);
	for (size_t i = 0; i < n; i++)
		put_kv(r, kv[i].key ? kv[i].key : "", &kv[i], as_text);
	rf_rec_map_end(r);
}
