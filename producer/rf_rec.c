/*
 * rf_rec.c - the record builder: msgpack written in place into the ring.
 *
 * rf_rec_begin() claims `size_hint` bytes of ring space and every rf_rec_*()
 * call encodes straight into it through msgpack-c's packer with our write
 * callback.  Maps and arrays are opened with a fixed-width 32-bit header
 * (the only bytes we write by hand) whose count is patched when they close,
 * so nothing has to be sized in advance.  rf_rec_end() commits just the
 * bytes used (rf_ring_commit_len); the rest of the claim becomes padding.
 *
 * A record that outgrows its claim is moved once into a per-thread buffer
 * (grown on first need, then reused: no allocation on the steady path) and
 * copied into a right-sized claim at the end.
 *
 * Privacy is enforced here, so every caller (C or Python) gets it: values
 * under secret-looking keys, "Bearer ..." strings and registered secret
 * values never reach the ring; long strings are cut to max_text and say so.
 */
#include <errno.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rf_err.h"
#include "rf_producer_int.h"
#include "rf_tlsbuf.h"

/* A record that outgrew its claim continues here (rf_rec_end copies it). */
static __thread struct rf_tlsbuf over;
static struct rf_tlsbuf_key over_key = RF_TLSBUF_KEY_INIT;

static void rec_fail(rf_rec *r, int err)
{
	if (!r->err)
		r->err = err;
}

/* Make room for n more bytes; moves the record out of the ring if needed. */
static bool reserve(rf_rec *r, size_t n)
{
	if (r->len + n <= r->cap)
		return true;
	size_t max = r->p->max_record;
	size_t want = r->len + n;
	if (want > max) {
		rec_fail(r, -EMSGSIZE);
		return false;
	}
	size_t cap = r->cap * 2 > want ? r->cap * 2 : want;
	if (cap > max)
		cap = max;
	if (!rf_tlsbuf_grow(&over, &over_key, cap)) {
		rec_fail(r, -ENOMEM);
		return false;
	}
	if (r->in_ring) {
		memcpy(over.p, r->buf, r->len);
		r->in_ring = false;
	}
	r->buf = over.p;
	r->cap = over.cap;
	return true;
}

static int write_cb(void *data, const char *buf, size_t len)
{
	rf_rec *r = data;
	if (r->err || !reserve(r, len))
		return -1;
	memcpy(r->buf + r->len, buf, len);
	r->len += len;
	return 0;
}

static void put_hdr32(rf_rec *r, uint8_t tag)
{
	if (r->err || !reserve(r, 5))
		return;
	r->buf[r->len] = tag; /* 0xdf map32 / 0xdd array32; count patched later */
	memset(r->buf + r->len + 1, 0, 4);
	r->len += 5;
}

static void patch_count(rf_rec *r, int level)
{
	uint32_t n = r->count[level];
	uint8_t *h = r->buf + r->hdr_off[level] + 1;
	h[0] = (uint8_t)(n >> 24);
	h[1] = (uint8_t)(n >> 16);
	h[2] = (uint8_t)(n >> 8);
	h[3] = (uint8_t)n;
}

/* Secret-looking keys: the value is never written.  "*_tokens" counts stay.
 * Called for every key, so it dispatches on the last character first: most
 * keys ("run_id", "epoch", "model") are settled with at most two compares. */
static bool ends_with(const char *k, size_t kl, const char *suf)
{
	size_t sl = strlen(suf);
	return kl >= sl && !strcasecmp(k + kl - sl, suf);
}

static bool key_is_secret_n(const char *k, size_t kl)
{
	if (kl < 5)
		return false;
	switch (k[kl - 1] | 0x20) {
	case 'y': /* api_key, *_api_key, apikey, api-key, x-api-key */
		return ends_with(k, kl, "api_key") || ends_with(k, kl, "apikey") ||
		       ends_with(k, kl, "api-key");
	case 'n': /* token, *_token, *-token, authorization, proxy-authorization */
		return !strcasecmp(k, "token") || ends_with(k, kl, "_token") ||
		       ends_with(k, kl, "-token") || ends_with(k, kl, "authorization");
	case 't': /* secret, *secret */
		return ends_with(k, kl, "secret");
	case 'd': /* password, *password, passwd */
		return ends_with(k, kl, "password") || ends_with(k, kl, "passwd");
	case 'e': /* cookie, set-cookie, *_key_value */
		return ends_with(k, kl, "cookie") || ends_with(k, kl, "_key_value");
	case 's': /* credentials */
		return ends_with(k, kl, "credentials");
	default:
		return false;
	}
}

static bool rf_key_is_secret(const char *k)
{
	return key_is_secret_n(k, strlen(k));
}

bool rf_secret_key(const char *key)
{
	return rf_key_is_secret(key);
}

/* Starts a value: writes the key (in a map) and counts the entry.  Returns
 * false if the value must not be written (inside a redacted value). */
static bool begin_value(rf_rec *r, const char *key, bool *secret)
{
	*secret = false;
	if (r->err)
		return false;
	if (r->redact_depth)
		return false;
	msgpack_packer pk;
	msgpack_packer_init(&pk, r, write_cb);
	if (key) {
		size_t kl = strlen(key);
		msgpack_pack_str(&pk, kl);
		msgpack_pack_str_body(&pk, key, kl);
		*secret = key_is_secret_n(key, kl);
	}
	r->count[r->depth]++;
	return true;
}

static void write_redacted(rf_rec *r)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, r, write_cb);
	msgpack_pack_str_with_body(&pk, "[REDACTED]", 10);
	atomic_fetch_add_explicit(&r->p->redacted, 1, memory_order_relaxed);
}

/* Starts a scalar value: false if nothing more is to be written (inside a
 * redacted value, or [REDACTED] written in its place when `redact` and its
 * key is secret), else true with *pk ready for the value. */
static bool begin_scalar(rf_rec *r, const char *key, bool redact, msgpack_packer *pk)
{
	bool secret;
	if (!begin_value(r, key, &secret))
		return false;
	if (secret && redact) {
		write_redacted(r);
		return false;
	}
	msgpack_packer_init(pk, r, write_cb);
	return true;
}

int rf_rec_begin(rf_producer *p, rf_rec *r, int type, size_t size_hint)
{
	memset(r, 0, offsetof(rf_rec, count));
	r->p = p;
	r->type = type;
	r->count[0] = 0;
	size_t hint = size_hint;
	if (!hint) {
		hint = type >= 1 && type <= RF_EV_MAX_BUILTIN
			       ? atomic_load_explicit(&p->type_hint[type], memory_order_relaxed)
			       : 0;
		hint = hint ? hint : 512;
	}
	if (hint > p->max_record)
		hint = p->max_record;
	struct rf_ring_claim *c = (struct rf_ring_claim *)r->claim;
	_Static_assert(sizeof r->claim >= sizeof(struct rf_ring_claim), "claim fits");
	c->data = NULL;
	int rc = rf_ring_claim(p->ring, type, hint, c);
	if (rc) {
		atomic_fetch_add_explicit(&p->errors, 1, memory_order_relaxed);
		rf_err_wrap("record type %d not written", type);
		return rc;
	}
	r->buf = c->data;
	r->cap = hint;
	r->in_ring = true;
	r->hdr_off[0] = 0;
	put_hdr32(r, 0xdf);
	/* "v": RF_SCHEMA_VERSION, pre-encoded (fixstr "v", positive fixint) */
	_Static_assert(RF_SCHEMA_VERSION < 128, "fixint");
	if (reserve(r, 3)) {
		r->buf[r->len] = 0xa1;
		r->buf[r->len + 1] = 'v';
		r->buf[r->len + 2] = RF_SCHEMA_VERSION;
		r->len += 3;
		r->count[0] = 1;
	}
	return 0;
}

/* nil and booleans carry no secret: written as they are under any key. */
void rf_rec_nil(rf_rec *r, const char *key)
{
	msgpack_packer pk;
	if (begin_scalar(r, key, false, &pk))
		msgpack_pack_nil(&pk);
}

void rf_rec_int(rf_rec *r, const char *key, int64_t v)
{
	msgpack_packer pk;
	if (begin_scalar(r, key, true, &pk))
		msgpack_pack_int64(&pk, v);
}

void rf_rec_double(rf_rec *r, const char *key, double v)
{
	msgpack_packer pk;
	if (begin_scalar(r, key, true, &pk))
		msgpack_pack_double(&pk, v);
}

void rf_rec_bool(rf_rec *r, const char *key, bool v)
{
	msgpack_packer pk;
	if (begin_scalar(r, key, false, &pk))
		(void)(v ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
}

/* Cut at a UTF-8 character boundary at or below n. */
static size_t utf8_cut(const char *s, size_t n)
{
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

void rf_rec_strn(rf_rec *r, const char *key, const char *val, size_t n)
{
	bool secret;
	if (!val)
		return rf_rec_nil(r, key);
	if (!begin_value(r, key, &secret))
		return;
	if (secret || rf_producer_value_is_secret(r->p, val, n))
		return write_redacted(r);
	msgpack_packer pk;
	msgpack_packer_init(&pk, r, write_cb);
	if (n <= r->p->max_text) {
		msgpack_pack_str_with_body(&pk, val, n);
		return;
	}
	/* Truncated: {"truncated": true, "bytes": <original size>, "text": prefix} */
	size_t keep = utf8_cut(val, r->p->max_text);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "truncated", 9);
	msgpack_pack_true(&pk);
	msgpack_pack_str_with_body(&pk, "bytes", 5);
	msgpack_pack_uint64(&pk, n);
	msgpack_pack_str_with_body(&pk, "text", 4);
	msgpack_pack_str_with_body(&pk, val, keep);
	atomic_fetch_add_explicit(&r->p->truncated, 1, memory_order_relaxed);
}

void rf_rec_str(rf_rec *r, const char *key, const char *val)
{
	rf_rec_strn(r, key, val, val ? strlen(val) : 0);
}

void rf_rec_bin(rf_rec *r, const char *key, const void *data, size_t n)
{
	msgpack_packer pk;
	if (begin_scalar(r, key, true, &pk))
		msgpack_pack_bin_with_body(&pk, data, n);
}

void rf_rec_msgpack(rf_rec *r, const char *key, const void *data, size_t n)
{
	msgpack_packer pk;
	if (begin_scalar(r, key, true, &pk))
		write_cb(r, data, n);
}

static void open_level(rf_rec *r, const char *key, uint8_t tag)
{
	bool secret;
	bool wrote = begin_value(r, key, &secret);
	if (r->err)
		return;
	if (r->depth >= RF_REC_MAX_DEPTH) {
		rec_fail(r, -E2BIG);
		return;
	}
	r->depth++;
	if (!wrote) {
		r->redact_depth += r->redact_depth ? 1 : 0; /* nested inside a redaction */
		return;
	}
	if (secret) {
		write_redacted(r);
		r->redact_depth = 1; /* swallow everything until this level closes */
		return;
	}
	r->count[r->depth] = 0;
	r->hdr_off[r->depth] = (uint32_t)r->len;
	put_hdr32(r, tag);
}

static void close_level(rf_rec *r)
{
	if (r->err)
		return;
	if (r->depth == 0) {
		rec_fail(r, -EINVAL); /* unbalanced end */
		return;
	}
	if (r->redact_depth) {
		r->redact_depth--;
		r->depth--;
		return;
	}
	patch_count(r, r->depth);
	r->depth--;
}

void rf_rec_map_begin(rf_rec *r, const char *key)
{
	open_level(r, key, 0xdf);
}

void rf_rec_map_end(rf_rec *r)
{
	close_level(r);
}

void rf_rec_array_begin(rf_rec *r, const char *key)
{
	open_level(r, key, 0xdd);
}

void rf_rec_array_end(rf_rec *r)
{
	close_level(r);
}

void rf_rec_abort(rf_rec *r)
{
	struct rf_ring_claim *c = (struct rf_ring_claim *)r->claim;
	if (c->data)
		rf_ring_abort(r->p->ring, c);
}

int rf_rec_end(rf_rec *r)
{
	rf_producer *p = r->p;
	struct rf_ring_claim *c = (struct rf_ring_claim *)r->claim;
	if (!r->err && r->depth != 0)
		r->err = -EINVAL;
	if (r->err) {
		rf_rec_abort(r);
		atomic_fetch_add_explicit(&p->errors, 1, memory_order_relaxed);
		return rf_err_set(r->err, "record type %d not written: %s", r->type,
				  r->err == -EMSGSIZE ? "larger than the ring's maximum record" 				    : r->err == -E2BIG ? "nested too deeply" 				    : r->err == -ENOMEM ? "out of memory" 							: "unbalanced map/array");
	}
	patch_count(r, 0);
	int rc;
	if (r->in_ring) {
		rc = rf_ring_commit_len(p->ring, c, r->len);
	} else {
		/* Outgrew the claim: give it back, take one of the right size. */
		rf_ring_abort(p->ring, c);
		struct rf_ring_claim big;
		rc = rf_ring_claim(p->ring, r->type, r->len, &big);
		if (rc == 0) {
			memcpy(big.data, r->buf, r->len);
			rc = rf_ring_commit(p->ring, &big);
		}
	}
	if (rc) {
		atomic_fetch_add_explicit(&p->errors, 1, memory_order_relaxed);
		rf_err_wrap("record type %d not written", r->type);
		return rc;
	}
	atomic_fetch_add_explicit(&p->records, 1, memory_order_relaxed);
	if (r->type >= 1 && r->type <= RF_EV_MAX_BUILTIN) {
		/* Relaxed: a hint only; a stale value costs a copy, not a record. */
		_Atomic uint32_t *h = &p->type_hint[r->type];
		uint32_t old = atomic_load_explicit(h, memory_order_relaxed);
		uint32_t want = (uint32_t)((r->len + r->len / 8 + 63) & ~(size_t)63);
		uint32_t decayed = old - old / 64; /* ~ the largest of the last 64 */
		uint32_t next = want > decayed ? want : decayed;
		if (next > 65536)
			next = 65536;
		if (next != old)
			atomic_store_explicit(h, next, memory_order_relaxed);
	}
	return 0;
}
