/*
 * rf_decode.h - decode and validate one ringflow record (msgpack, untrusted).
 *
 * Producer records are untrusted input: every record must be exactly one
 * msgpack map with a "v" schema version, within size and depth limits;
 * anything else is rejected with a reason, never half-used.
 */
#ifndef RF_DECODE_H
#define RF_DECODE_H

#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "rf_err.h" /* rf_decode()'s reasons */

typedef struct rf_decoded {
	msgpack_object obj;
	const msgpack_object *root;
	int64_t version;
} rf_decoded;

/* 0 on success; -EBADMSG on a malformed record (rf_err_msg() says what is
 * wrong), -ENOMEM.  The object tree lives in a per-thread zone reused by the
 * next rf_decode() on the same thread (no allocation per record once warm);
 * rf_decoded_free() marks the end of its use. */
int rf_decode(rf_decoded *d, const void *data, size_t len);
void rf_decoded_free(rf_decoded *d);

/* Field lookup on a map (NULL if absent or not a map). */
const msgpack_object *rf_obj_get(const msgpack_object *map, const char *key);
/* Typed accessors: false if absent or of another type. */
bool rf_obj_str(const msgpack_object *o, const char **s, size_t *n);
bool rf_obj_int(const msgpack_object *o, int64_t *v);
bool rf_obj_num(const msgpack_object *o, double *v); /* int or float */
bool rf_obj_bool(const msgpack_object *o, bool *v);
/* Text that may have been truncated by the producer: the string itself, or
 * the "text" of a {"truncated": true, "bytes": N, "text": ...} map. */
bool rf_obj_text(const msgpack_object *o, const char **s, size_t *n, bool *truncated);
/* That text copied into out[cap], cut to fit; false (out untouched) when
 * it is absent or not text. */
bool rf_obj_text_copy(const msgpack_object *o, char *out, size_t cap);

/* JSON rendering (NaN and infinities become the strings "NaN", "Infinity"). */
json_t *rf_obj_to_json(const msgpack_object *o);

#endif
