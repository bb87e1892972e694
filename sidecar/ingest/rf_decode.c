/*
 * rf_decode.c - msgpack-c does the parsing; this file validates the shape.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rf_decode.h"
#include "rf_err.h"
#include "rf_zone.h"

#define RF_DECODE_MAX_DEPTH 32

/* Shape check, and one fix-up on the way: msgpack-c leaves the pointer of
 * a zero-length string, bin or key NULL, which memcpy/strndup/"%.*s" must
 * never see (UBSan, tests/fuzz/record); they get "" instead.  The tree is
 * this thread's zone, so it is ours to touch. */
static bool depth_ok(msgpack_object *o, int depth)
{
	if (depth > RF_DECODE_MAX_DEPTH)
		return false;
	if (o->type == MSGPACK_OBJECT_STR && !o->via.str.ptr)
		o->via.str.ptr = "";
	if (o->type == MSGPACK_OBJECT_BIN && !o->via.bin.ptr)
		o->via.bin.ptr = "";
	if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < o->via.array.size; i++)
			if (!depth_ok(&o->via.array.ptr[i], depth + 1))
				return false;
	} else if (o->type == MSGPACK_OBJECT_MAP) {
		for (uint32_t i = 0; i < o->via.map.size; i++)
			if (o->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR ||
			    !depth_ok(&o->via.map.ptr[i].key, depth + 1) ||
			    !depth_ok(&o->via.map.ptr[i].val, depth + 1))
				return false;
	}
	return true;
}

/* Declared sizes against the bytes there are, before msgpack-c sees them:
 * msgpack_unpack() allocates a container's declared element count up front,
 * so a 5-byte record declaring 2^32 map entries asks for hundreds of GiB
 * (found by tests/fuzz/record).  Every element takes at least one byte, so
 * a record is refused when the elements still owed exceed the bytes left;
 * msgpack-c's C API has no such limit.  This walks headers only (lengths of
 * strings, bins, exts are skipped, never interpreted); msgpack-c still does
 * all the parsing. */
static bool sizes_ok(const uint8_t *p, size_t len)
{
	static const uint8_t fixed[32] = {
		/* 0xc0..0xdf: bytes after the type byte for fixed-size types */
		[0x00] = 0, [0x02] = 0, [0x03] = 0,			/* nil, false, true */
		[0x0a] = 4, [0x0b] = 8,					/* float 32/64 */
		[0x0c] = 1, [0x0d] = 2, [0x0e] = 4, [0x0f] = 8,		/* uint 8..64 */
		[0x10] = 1, [0x11] = 2, [0x12] = 4, [0x13] = 8,		/* int 8..64 */
		[0x14] = 2, [0x15] = 3, [0x16] = 5, [0x17] = 9, [0x18] = 17, /* fixext */
	};
	size_t pos = 0, owed = 1; /* objects still to read */
	while (owed) {
		if (pos >= len)
			return false;
		uint8_t b = p[pos++];
		owed--;
		uint64_t n = 0;   /* elements (containers) or bytes (str, bin, ext) */
		bool elems = false;
		if (b <= 0x7f || b >= 0xe0) {
			continue;
		} else if (b <= 0x8f) {
			n = 2u * (b & 0x0f), elems = true;
		} else if (b <= 0x9f) {
			n = b & 0x0f, elems = true;
		} else if (b <= 0xbf) {
			n = b & 0x1f;
		} else if (b == 0xc1) {
			return false; /* never used */
		} else {
			unsigned w; /* width of a length field */
			switch (b) {
			case 0xc4: case 0xd9: w = 1; break;		/* bin8, str8 */
			case 0xc5: case 0xda: case 0xdc: case 0xde: w = 2; break;
			case 0xc6: case 0xdb: case 0xdd: case 0xdf: w = 4; break;
			case 0xc7: w = 1; break;			/* ext8 */
			case 0xc8: w = 2; break;
			case 0xc9: w = 4; break;
			default: w = 0; break;
			}
			if (!w) {
				n = fixed[b - 0xc0];
			} else {
				if (len - pos < w)
					return false;
				for (unsigned i = 0; i < w; i++)
					n = n << 8 | p[pos++];
				if (b >= 0xc7 && b <= 0xc9)
					n += 1; /* the ext type byte */
				if (b == 0xdc || b == 0xdd)
					elems = true;
				if (b == 0xde || b == 0xdf)
					n *= 2, elems = true;
			}
		}
		if (n > len - pos)
			return false;
		if (elems) {
			owed += n;
			if (owed > len - pos)
				return false; /* more elements owed than bytes left */
		} else {
			pos += n;
		}
	}
	return true;
}

int rf_decode(rf_decoded *d, const void *data, size_t len)
{
	memset(d, 0, sizeof *d);
	msgpack_zone *zone = rf_zone_get(RF_ZONE_DECODE, 16384); /* no malloc per record */
	if (!zone)
		return rf_err_set(ENOMEM, "record: out of memory for its decoder");
	if (!sizes_ok(data, len))
		return rf_err_set(EBADMSG, "truncated msgpack or declared sizes larger than the "
				  "record");
	size_t off = 0;
	msgpack_unpack_return ret = msgpack_unpack(data, len, &off, zone, &d->obj);
	if (ret == MSGPACK_UNPACK_EXTRA_BYTES)
		return rf_err_set(EBADMSG, "trailing bytes after the record");
	if (ret != MSGPACK_UNPACK_SUCCESS)
		return rf_err_set(EBADMSG, "%s",
				  ret == MSGPACK_UNPACK_CONTINUE ? "truncated msgpack" 				  : ret == MSGPACK_UNPACK_NOMEM_ERROR ? "out of memory" 								      : "invalid msgpack");
	msgpack_object *root = &d->obj;
	if (root->type != MSGPACK_OBJECT_MAP)
		return rf_err_set(EBADMSG, "record is not a map");
	if (!depth_ok(root, 0))
		return rf_err_set(EBADMSG, "nested too deeply or non-string map key");
	if (!rf_obj_int(rf_obj_get(root, "v"), &d->version) || d->version < 1)
		return rf_err_set(EBADMSG, "missing schema version \"v\"");
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

bool rf_obj_text_copy(const msgpack_object *o, char *out, size_t cap)
{
	const char *s;
	size_t n;
	bool trunc;
	if (!cap || !rf_obj_text(o, &s, &n, &trunc))
		return false;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, s, n);
	out[n] = 0;
	return true;
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
