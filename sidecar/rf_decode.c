/*
 * rf_decode.c - msgpack-c does the parsing; this file validates the shape.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rf_decode.h"

#define RF_DECODE_MAX_DEPTH 32

static bool depth_ok(const msgpack_object *o, int depth)
{
	if (depth > RF_DECODE_MAX_DEPTH)
		return false;
	if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < o->via.array.size; i++)
			if (!depth_ok(&o->via.array.ptr[i], depth + 1))
				return false;
	} else if (o->type == MSGPACK_OBJECT_MAP) {
		for (uint32_t i = 0; i < o->via.map.size; i++)
			if (o->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR ||
			    !depth_ok(&o->via.map.ptr[i].val, depth + 1))
				return false;
	}
	return true;
}

static __thread msgpack_zone *tls_zone;
static pthread_once_t zone_once = PTHREAD_ONCE_INIT;
static pthread_key_t zone_key; /* frees a thread's zone at its exit */

static void free_zone(void *z)
{
	msgpack_zone_free(z);
}

static void zone_key_init(void)
{
	pthread_key_create(&zone_key, free_zone);
}

int rf_decode(rf_decoded *d, const void *data, size_t len, const char **why)
{
	memset(d, 0, sizeof *d);
	if (!tls_zone) {
		if (!(tls_zone = msgpack_zone_new(16384))) {
			*why = "out of memory";
			return -ENOMEM;
		}
		pthread_once(&zone_once, zone_key_init);
		pthread_setspecific(zone_key, tls_zone);
	} else {
		msgpack_zone_clear(tls_zone); /* keeps its chunk: no malloc per record */
	}
	size_t off = 0;
	msgpack_unpack_return ret = msgpack_unpack(data, len, &off, tls_zone, &d->obj);
	if (ret == MSGPACK_UNPACK_EXTRA_BYTES) {
		*why = "trailing bytes after the record";
		return -EBADMSG;
	}
	if (ret != MSGPACK_UNPACK_SUCCESS) {
		*why = ret == MSGPACK_UNPACK_CONTINUE ? "truncated msgpack"
		       : ret == MSGPACK_UNPACK_NOMEM_ERROR ? "out of memory"
							   : "invalid msgpack";
		return -EBADMSG;
	}
	const msgpack_object *root = &d->obj;
	if (root->type != MSGPACK_OBJECT_MAP) {
		*why = "record is not a map";
		return -EBADMSG;
	}
	if (!depth_ok(root, 0)) {
		*why = "nested too deeply or non-string map key";
		return -EBADMSG;
	}
	if (!rf_obj_int(rf_obj_get(root, "v"), &d->version) || d->version < 1) {
		*why = "missing schema version \"v\"";
		return -EBADMSG;
	}
	d->root = root;
	return 0;
}

void rf_decoded_free(rf_decoded *d)
{
	d->root = NULL;
}

const msgpack_object *rf_obj_get(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
		    !memcmp(k->via.str.ptr, key, kl))
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

bool rf_obj_str(const msgpack_object *o, const char **s, size_t *n)
{
	if (!o || o->type != MSGPACK_OBJECT_STR)
		return false;
	*s = o->via.str.ptr;
	*n = o->via.str.size;
	return true;
}

bool rf_obj_int(const msgpack_object *o, int64_t *v)
{
	if (!o)
		return false;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > INT64_MAX)
			return false;
		*v = (int64_t)o->via.u64;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return true;
	}
	return false;
}

bool rf_obj_num(const msgpack_object *o, double *v)
{
	int64_t i;
	if (rf_obj_int(o, &i)) {
		*v = (double)i;
		return true;
	}
	if (o && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)) {
		*v = o->via.f64;
		return true;
	}
	return false;
}

bool rf_obj_bool(const msgpack_object *o, bool *v)
{
	if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
		return false;
	*v = o->via.boolean;
	return true;
}

bool rf_obj_text(const msgpack_object *o, const char **s, size_t *n, bool *truncated)
{
	*truncated = false;
	if (rf_obj_str(o, s, n))
		return true;
	bool t;
	if (rf_obj_bool(rf_obj_get(o, "truncated"), &t) && t &&
	    rf_obj_str(rf_obj_get(o, "text"), s, n)) {
		*truncated = true;
		return true;
	}
	return false;
}

json_t *rf_obj_to_json(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return o->via.u64 > INT64_MAX ? json_real((double)o->via.u64)
					      : json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (isnan(o->via.f64))
			return json_string("NaN");
		if (isinf(o->via.f64))
			return json_string(o->via.f64 > 0 ? "Infinity" : "-Infinity");
		return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR:
	{
		json_t *j = json_stringn(o->via.str.ptr, o->via.str.size);
		return j ? j : json_string("\xef\xbf\xbd(invalid utf-8)");
	}
	case MSGPACK_OBJECT_BIN: {
		static const char hex[] = "0123456789abcdef";
		json_t *j;
		char *h = malloc(o->via.bin.size * 2 + 1);
		if (!h)
			return json_null();
		for (uint32_t i = 0; i < o->via.bin.size; i++) {
			h[2 * i] = hex[(uint8_t)o->via.bin.ptr[i] >> 4];
			h[2 * i + 1] = hex[(uint8_t)o->via.bin.ptr[i] & 15];
		}
		h[o->via.bin.size * 2] = 0;
		j = json_pack("{s:s}", "$bin", h);
		free(h);
		return j;
	}
	case MSGPACK_OBJECT_ARRAY: {
		json_t *a = json_array();
		for (uint32_t i = 0; i < o->via.array.size; i++)
			json_array_append_new(a, rf_obj_to_json(&o->via.array.ptr[i]));
		return a;
	}
	case MSGPACK_OBJECT_MAP: {
		json_t *m = json_object();
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;
			if (k->type != MSGPACK_OBJECT_STR)
				continue;
			char *key = strndup(k->via.str.ptr, k->via.str.size);
			if (key) {
				json_object_set_new(m, key, rf_obj_to_json(&o->via.map.ptr[i].val));
				free(key);
			}
		}
		return m;
	}
	default:
		return json_null();
	}
}
