/*
 * rf_trace.c - the C tracing API (ringflow_trace.h): configuration, spans,
 * the per-thread current-span stack.  Records are written by rf_trace_rec.c.
 *
 * A span is a small heap object from start to end (so callback code can
 * keep it anywhere); the thread's current span is a thread-local pointer and
 * each implicit span remembers the one it replaced (an intrusive stack).
 * Traces that are not recorded (disabled or sampled out at the root) use two
 * static no-op spans instead: nothing is allocated or written for them.
 * noop_current stands for "this thread is inside an unrecorded trace"; its
 * implicit children only count their depth (tls_noop_depth), so ending them
 * is balanced without any state per span.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_env.h"
#include "rf_err.h"
#include "rf_producer_int.h"
#include "rf_trace_int.h"

struct kvset {
	rf_kv *v; /* owned copies: keys, strings and blobs are malloc'ed */
	size_t n, cap;
	bool set;
};

struct rf_span {
	rf_producer *p;
	uint8_t trace_id[16];
	uint64_t span_id, parent_id;
	rf_span *prev;   /* the thread's current span before this one */
	bool implicit;   /* on its thread's stack */
	bool noop;
	bool status_set;
	int status;
	char *status_msg;
	struct kvset attrs, inputs, outputs;
};

static rf_span noop_current = {.noop = true}; /* implicit spans of unrecorded traces */
static rf_span noop_detached = {.noop = true};

static __thread rf_span *tls_cur;
static __thread long tls_noop_depth;

/* ---- configuration ---- */

struct exp_name {
	struct exp_name *next; /* every name ever set stays reachable: a root
				  reading the current one never races a free */
	char name[];
};

static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;
static _Atomic bool cfg_enabled = true;
static _Atomic uint64_t cfg_rate_bits; /* a double */
static _Atomic(struct exp_name *) cfg_exp;
static struct exp_name *exp_all;
static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(rf_producer *) cfg_prod;
static rf_producer *own_prod;     /* opened by us (cfg_lock) */
static uint64_t own_prod_failed; /* CLOCK_REALTIME ns of the last failed open */

static _Atomic uint64_t st_traces, st_sampled_out, st_spans, st_errors, st_config_ignored;
static char own_prod_err[256]; /* why the last open failed (cfg_lock) */

static void store_rate(double r)
{
	uint64_t b;
	memcpy(&b, &r, sizeof b);
	atomic_store_explicit(&cfg_rate_bits, b, memory_order_relaxed);
}

/* Nothing here prints (the library runs inside someone else's program): a
 * value it cannot use is counted (rf_trace_stats.config_ignored) and
 * explained by rf_errmsg() in the thread that read the configuration. */
static void cfg_init(void)
{
	if (rf_env_flag("RINGFLOW_DISABLED", false) || rf_env_flag("RINGFLOW_TRACE_DISABLED", false))
		atomic_store(&cfg_enabled, false);
	/* The first usable of the two (as ringflow.tracing reads them); each
	 * value that is set but unusable is counted. */
	double rate = 1.0;
	static const char *const rate_vars[] = {"RINGFLOW_TRACE_SAMPLE_RATE",
						"MLFLOW_TRACE_SAMPLING_RATIO"};
	for (size_t i = 0; i < sizeof rate_vars / sizeof *rate_vars; i++) {
		const char *env = getenv(rate_vars[i]);
		if (!env || !*env)
			continue;
		char *end;
		double v = strtod(env, &end);
		if (end != env && !end[strspn(end, " \t\n\r\v\f")] && v >= 0.0 && v <= 1.0) {
			rate = v;
			break;
		}
		atomic_fetch_add_explicit(&st_config_ignored, 1, memory_order_relaxed);
		rf_err_set(EINVAL, "tracing: %s=\"%.64s\" ignored (want 0.0-1.0)", rate_vars[i],
			   env);
	}
	store_rate(rate);
	const char *exp = getenv("RINGFLOW_TRACE_EXPERIMENT");
	if (exp && *exp && !atomic_load(&cfg_exp))
		rf_trace_set_experiment(exp);
}

void rf_trace_enable(bool on)
{
	pthread_once(&cfg_once, cfg_init);
	atomic_store(&cfg_enabled, on);
}

bool rf_trace_enabled(void)
{
	pthread_once(&cfg_once, cfg_init);
	return atomic_load_explicit(&cfg_enabled, memory_order_relaxed);
}

int rf_trace_set_sample_rate(double rate)
{
	pthread_once(&cfg_once, cfg_init);
	if (!(rate >= 0.0 && rate <= 1.0))
		return -EINVAL;
	store_rate(rate);
	return 0;
}

double rf_trace_sample_rate(void)
{
	pthread_once(&cfg_once, cfg_init);
	uint64_t b = atomic_load_explicit(&cfg_rate_bits, memory_order_relaxed);
	double r;
	memcpy(&r, &b, sizeof r);
	return r;
}

int rf_trace_set_experiment(const char *name)
{
	struct exp_name *e = NULL;
	if (name) {
		size_t n = strlen(name);
		if (!(e = malloc(sizeof *e + n + 1)))
			return -ENOMEM;
		memcpy(e->name, name, n + 1);
		pthread_mutex_lock(&cfg_lock);
		e->next = exp_all;
		exp_all = e;
		pthread_mutex_unlock(&cfg_lock);
	}
	/* Release: a root that sees the pointer sees the name. */
	atomic_store_explicit(&cfg_exp, e, memory_order_release);
	return 0;
}

void rf_trace_set_producer(rf_producer *p)
{
	atomic_store_explicit(&cfg_prod, p, memory_order_release);
}

/* The producer for a new trace: the configured one, else our own, opened on
 * first use (a failed open is retried at most once a second). */
static rf_producer *trace_producer(void)
{
	rf_producer *p = atomic_load_explicit(&cfg_prod, memory_order_acquire);
	if (p)
		return p;
	pthread_mutex_lock(&cfg_lock);
	if (!(p = atomic_load_explicit(&cfg_prod, memory_order_acquire))) {
		uint64_t now = rf_trace_now_ns();
		if (!own_prod && now - own_prod_failed >= 1000000000ull) {
			if (rf_producer_open(&own_prod, NULL)) {
				own_prod = NULL;
				own_prod_failed = now;
				snprintf(own_prod_err, sizeof own_prod_err, "%s", rf_errmsg());
			}
		}
		p = own_prod;
		if (p)
			atomic_store_explicit(&cfg_prod, p, memory_order_release);
		else /* every root refused meanwhile says why (counted by the caller) */
			rf_err_set(EIO, "tracing: no producer: %s", own_prod_err);
	}
	pthread_mutex_unlock(&cfg_lock);
	return p;
}

void rf_trace_stats(struct rf_trace_stats *st)
{
	st->traces = atomic_load(&st_traces);
	st->sampled_out = atomic_load(&st_sampled_out);
	st->spans = atomic_load(&st_spans);
	st->errors = atomic_load(&st_errors);
	st->bad_values = atomic_load(&rf_trace_bad_values);
	st->config_ignored = atomic_load(&st_config_ignored);
}

static void count_err(void)
{
	atomic_fetch_add_explicit(&st_errors, 1, memory_order_relaxed);
}

/* ---- kept values ---- */

static void kv_free_one(rf_kv *kv)
{
	free((void *)kv->key);
	if (kv->kind == RF_KV_STR)
		free((void *)kv->u.s);
	else if (kv->kind == RF_KV_MSGPACK)
		free((void *)kv->u.mp);
}

static void kvset_clear(struct kvset *s)
{
	for (size_t i = 0; i < s->n; i++)
		kv_free_one(&s->v[i]);
	s->n = 0;
	s->set = false;
}

static void kvset_free(struct kvset *s)
{
	if (!s->v)
		return;
	kvset_clear(s);
	free(s->v);
	s->v = NULL;
	s->cap = 0;
}

static int kv_copy(rf_kv *dst, const rf_kv *src)
{
	*dst = *src;
	dst->key = NULL;
	if (src->key && !(dst->key = strdup(src->key)))
		return -ENOMEM;
	if (src->kind == RF_KV_STR && src->u.s) {
		size_t n = src->n ? src->n : strlen(src->u.s);
		char *s = malloc(n + 1);
		if (!s)
			goto oom;
		memcpy(s, src->u.s, n);
		s[n] = 0;
		dst->u.s = s;
		dst->n = n;
	} else if (src->kind == RF_KV_STR) {
		dst->kind = RF_KV_NIL;
	} else if (src->kind == RF_KV_MSGPACK) {
		void *b = malloc(src->n ? src->n : 1);
		if (!b)
			goto oom;
		if (src->n)
			memcpy(b, src->u.mp, src->n);
		dst->u.mp = b;
	}
	return 0;
oom:
	free((void *)dst->key);
	dst->key = NULL;
	return -ENOMEM;
}

/* merge: replace an entry with the same key (attributes); else replace all. */
static int kvset_put(struct kvset *s, const rf_kv *kv, size_t n, bool merge)
{
	if (!merge)
		kvset_clear(s);
	s->set = true;
	for (size_t i = 0; i < n; i++) {
		size_t at = s->n;
		if (merge && kv[i].key)
			for (size_t j = 0; j < s->n; j++)
				if (s->v[j].key && !strcmp(s->v[j].key, kv[i].key)) {
					at = j;
					break;
				}
		if (at == s->n && s->n == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 4;
			rf_kv *v = realloc(s->v, cap * sizeof *v);
			if (!v)
				return -ENOMEM;
			s->v = v;
			s->cap = cap;
		}
		rf_kv copy;
		if (kv_copy(&copy, &kv[i]))
			return -ENOMEM;
		if (at < s->n)
			kv_free_one(&s->v[at]);
		else
			s->n++;
		s->v[at] = copy;
	}
	return 0;
}

/* ---- spans ---- */

static bool is_real(const rf_span *s)
{
	return s && !s->noop;
}

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

static void write_start(rf_span *s, const char *name, const char *type, const rf_kv *inputs,
			size_t n)
{
	const char *exp = NULL;
	if (!s->parent_id) {
		struct exp_name *e = atomic_load_explicit(&cfg_exp, memory_order_acquire);
		exp = e ? e->name : NULL;
	}
	if (!name)
		name = "span";
	if (!type)
		type = RF_SPAN_UNKNOWN;
	rf_rec r;
	if (rf_trace_begin_start(s->p, &r, s->trace_id, s->span_id, s->parent_id, name,
				 slen(name), type, slen(type), rf_trace_now_ns(), exp)) {
		count_err();
		return;
	}
	rf_trace_put_kvs(&r, "inputs", inputs, n, false);
	if (rf_rec_end(&r))
		count_err();
}

/* One freed span kept per thread for the next start (spans mostly start
 * right after one ended): saves a malloc/free pair per span.  A key
 * registered once per thread frees it at thread exit (the destructor runs
 * in the exiting thread, whose thread-locals are still there). */
static __thread rf_span *tls_spare;
static __thread bool tls_spare_reg;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static pthread_key_t spare_key;

static void spare_dtor(void *unused)
{
	(void)unused;
	free(tls_spare);
	tls_spare = NULL;
}

static void spare_key_init(void)
{
	pthread_key_create(&spare_key, spare_dtor);
}

static rf_span *span_alloc(void)
{
	rf_span *s = tls_spare;
	if (s) {
		tls_spare = NULL;
		memset(s, 0, sizeof *s);
		return s;
	}
	return calloc(1, sizeof *s);
}

static void span_free(rf_span *s)
{
	if (tls_spare) {
		free(s);
		return;
	}
	if (!tls_spare_reg) {
		pthread_once(&spare_once, spare_key_init);
		pthread_setspecific(spare_key, (void *)1); /* non-NULL: the destructor runs */
		tls_spare_reg = true;
	}
	tls_spare = s;
}

/* A recorded span, child of `parent` (NULL: a new trace's root). */
static rf_span *new_span(rf_span *parent, const char *name, const char *type,
			 const rf_kv *inputs, size_t n)
{
	rf_span *s = span_alloc();
	if (!s) {
		count_err();
		return NULL;
	}
	if (parent) {
		s->p = parent->p;
		memcpy(s->trace_id, parent->trace_id, 16);
		s->parent_id = parent->span_id;
	} else {
		s->p = trace_producer();
		if (!s->p) {
			span_free(s);
			count_err();
			return NULL;
		}
		rf_trace_new_trace_id(s->trace_id);
		atomic_fetch_add_explicit(&st_traces, 1, memory_order_relaxed);
	}
	s->span_id = rf_trace_new_span_id();
	atomic_fetch_add_explicit(&st_spans, 1, memory_order_relaxed);
	write_start(s, name, type, inputs, n);
	return s;
}

/* Sampling and enablement, decided once per trace at its root. */
static bool record_root(void)
{
	if (rf_trace_enabled() && rf_trace_sample(rf_trace_sample_rate()))
		return true;
	atomic_fetch_add_explicit(&st_sampled_out, 1, memory_order_relaxed);
	return false;
}

rf_span *rf_span_start(const char *name, const char *span_type, const rf_kv *inputs, size_t n)
{
	rf_span *cur = tls_cur;
	if (cur == &noop_current) {
		tls_noop_depth++;
		return &noop_current;
	}
	if (!cur && !record_root()) {
		tls_cur = &noop_current;
		return &noop_current;
	}
	rf_span *s = new_span(cur, name, span_type, inputs, n);
	if (!s)
		return &noop_detached; /* not pushed: children attach to `cur` */
	s->implicit = true;
	s->prev = cur;
	tls_cur = s;
	return s;
}

rf_span *rf_span_start_with(rf_span *parent, const char *name, const char *span_type,
			    const rf_kv *inputs, size_t n)
{
	if (parent ? parent->noop : !record_root())
		return &noop_detached;
	rf_span *s = new_span(parent, name, span_type, inputs, n);
	return s ? s : &noop_detached;
}

rf_span *rf_span_current(void)
{
	return tls_cur;
}

bool rf_span_recording(const rf_span *s)
{
	return is_real(s);
}

int rf_span_set_attrs(rf_span *s, const rf_kv *kv, size_t n)
{
	if (!is_real(s))
		return 0;
	int rc = kvset_put(&s->attrs, kv, n, true);
	if (rc)
		count_err();
	return rc;
}

int rf_span_set_inputs(rf_span *s, const rf_kv *kv, size_t n)
{
	if (!is_real(s))
		return 0;
	int rc = kvset_put(&s->inputs, kv, n, false);
	if (rc)
		count_err();
	return rc;
}

int rf_span_set_outputs(rf_span *s, const rf_kv *kv, size_t n)
{
	if (!is_real(s))
		return 0;
	int rc = kvset_put(&s->outputs, kv, n, false);
	if (rc)
		count_err();
	return rc;
}

void rf_span_set_status(rf_span *s, enum rf_span_status st, const char *message)
{
	if (!is_real(s))
		return;
	free(s->status_msg);
	s->status_msg = message ? strdup(message) : NULL;
	s->status = st;
	s->status_set = true;
}

int rf_span_add_event(rf_span *s, const char *name, const rf_kv *attrs, size_t n)
{
	if (!is_real(s))
		return 0;
	rf_rec r;
	int rc = rf_trace_begin_event(s->p, &r, s->trace_id, s->span_id, name, rf_trace_now_ns());
	if (!rc) {
		if (attrs && n)
			rf_trace_put_map(&r, "attributes", attrs, n, false);
		rc = rf_rec_end(&r);
	}
	if (rc)
		count_err();
	return rc;
}

int rf_span_record_exception(rf_span *s, const char *type, const char *message,
			     const char *stacktrace)
{
	if (!is_real(s))
		return 0;
	rf_kv kv[3] = {RF_STR("exception.type", type ? type : "Error"),
		       RF_STR("exception.message", message ? message : "")};
	size_t n = 2;
	if (stacktrace)
		kv[n++] = RF_STR("exception.stacktrace", stacktrace);
	int rc = rf_span_add_event(s, "exception", kv, n);
	if (!s->status_set) {
		char msg[1024];
		snprintf(msg, sizeof msg, "%s: %s", type ? type : "Error", message ? message : "");
		rf_span_set_status(s, RF_STATUS_ERROR, msg);
	}
	return rc;
}

int rf_trace_update(rf_span *s, const rf_kv *tags, size_t ntags, const rf_kv *metadata,
		    size_t nmeta)
{
	if (!s)
		s = tls_cur;
	if (!is_real(s))
		return 0;
	rf_rec r;
	int rc = rf_trace_begin_update(s->p, &r, s->trace_id);
	if (!rc) {
		if (ntags)
			rf_trace_put_map(&r, "tags", tags, ntags, true);
		if (nmeta)
			rf_trace_put_map(&r, "metadata", metadata, nmeta, true);
		rc = rf_rec_end(&r);
	}
	if (rc)
		count_err();
	return rc;
}

/* Take an implicit span off its thread's stack (normally the top). */
static void unlink_implicit(rf_span *s)
{
	if (tls_cur == s) {
		tls_cur = s->prev;
		return;
	}
	/* Ended out of order: the span above it now sits on its parent. */
	for (rf_span *c = tls_cur; is_real(c); c = c->prev)
		if (c->prev == s) {
			c->prev = s->prev;
			return;
		}
}

int rf_span_end(rf_span *s, const rf_kv *outputs, size_t n)
{
	if (!s || s == &noop_detached)
		return 0;
	if (s == &noop_current) {
		if (tls_noop_depth > 0)
			tls_noop_depth--;
		else if (tls_cur == &noop_current)
			tls_cur = NULL;
		return 0;
	}
	if (s->implicit)
		unlink_implicit(s);
	rf_rec r;
	int rc = rf_trace_begin_end(s->p, &r, s->trace_id, s->span_id, rf_trace_now_ns(),
				    s->status_set ? rf_trace_status_name(s->status) : NULL,
				    s->status_msg);
	if (!rc) {
		if (s->inputs.set)
			rf_trace_put_kvs(&r, "inputs", s->inputs.v, s->inputs.n, false);
		if (outputs && n)
			rf_trace_put_kvs(&r, "outputs", outputs, n, false);
		else if (s->outputs.set)
			rf_trace_put_kvs(&r, "outputs", s->outputs.v, s->outputs.n, false);
		if (s->attrs.n)
			rf_trace_put_map(&r, "attributes", s->attrs.v, s->attrs.n, false);
		rc = rf_rec_end(&r);
	}
	if (rc)
		count_err();
	kvset_free(&s->attrs);
	kvset_free(&s->inputs);
	kvset_free(&s->outputs);
	free(s->status_msg);
	span_free(s);
	return rc;
}

static const char hexd[] = "0123456789abcdef";

/* The trace a record 28/29 is about: s's, else trace_id, else the current
 * span's.  1: write it (r begun, trace_id written); 0: an unrecorded trace
 * (nothing to do); -errno. */
static int begin_on_trace(rf_rec *r, int type, const rf_span *s, const char *trace_id)
{
	if (!s && !trace_id)
		s = tls_cur;
	if (s && s->noop)
		return 0;
	if (!s && (!trace_id || !*trace_id))
		return -EINVAL;
	rf_producer *p = s ? s->p : trace_producer();
	if (!p)
		return -EIO;
	int rc = rf_rec_begin(p, r, type, 0);
	if (rc)
		return rc;
	if (s)
		rf_rec_bin(r, "trace_id", s->trace_id, 16);
	else
		rf_rec_str(r, "trace_id", trace_id);
	return 1;
}

int rf_trace_log_assessment(const rf_span *s, const char *trace_id,
			    const struct rf_assessment *a)
{
	if (!a || !a->name || !*a->name)
		return -EINVAL;
	rf_rec r;
	int rc = begin_on_trace(&r, RF_EV_TRACE_ASSESSMENT, s, trace_id);
	if (rc <= 0) {
		if (rc < 0 && rc != -EINVAL)
			count_err();
		return rc;
	}
	/* A producer-chosen id: a replayed journal upserts instead of adding. */
	uint8_t b[16];
	char id[35] = "a-";
	rf_trace_new_trace_id(b);
	for (int i = 0; i < 16; i++) {
		id[2 + 2 * i] = hexd[b[i] >> 4];
		id[3 + 2 * i] = hexd[b[i] & 15];
	}
	id[34] = 0;
	rf_rec_str(&r, "assessment_id", id);
	rf_rec_str(&r, "name", a->name);
	rf_rec_str(&r, "kind", a->kind == RF_ASSESS_EXPECTATION ? "expectation" : "feedback");
	if (a->value) {
		rf_kv v = *a->value;
		v.key = NULL; /* the value itself, not a map */
		rf_trace_put_kvs(&r, "value", &v, 1, false);
	}
	if (a->rationale)
		rf_rec_str(&r, "rationale", a->rationale);
	if (a->source_type)
		rf_rec_str(&r, "source_type", a->source_type);
	if (a->source_id)
		rf_rec_str(&r, "source_id", a->source_id);
	if (a->error_code || a->error_message) {
		rf_rec_map_begin(&r, "error");
		rf_rec_str(&r, "error_code", a->error_code ? a->error_code : "ASSESSMENT_ERROR");
		if (a->error_message)
			rf_rec_str(&r, "error_message", a->error_message);
		rf_rec_map_end(&r);
	}
	if (a->metadata && a->nmeta)
		rf_trace_put_map(&r, "metadata", a->metadata, a->nmeta, true);
	if (is_real(a->span))
		rf_rec_int(&r, "span_id", (int64_t)a->span->span_id); /* below 2^63 */
	rf_rec_int(&r, "time_ns", (int64_t)rf_trace_now_ns());
	if ((rc = rf_rec_end(&r)))
		count_err();
	return rc;
}

int rf_trace_set_tag(const rf_span *s, const char *trace_id, const char *key, const char *value)
{
	if (!key || !*key)
		return -EINVAL;
	rf_rec r;
	int rc = begin_on_trace(&r, RF_EV_TRACE_TAG, s, trace_id);
	if (rc <= 0) {
		if (rc < 0 && rc != -EINVAL)
			count_err();
		return rc;
	}
	rf_rec_str(&r, "key", key);
	if (value)
		rf_rec_str(&r, "value", value);
	if ((rc = rf_rec_end(&r)))
		count_err();
	return rc;
}

int rf_trace_delete_tag(const rf_span *s, const char *trace_id, const char *key)
{
	return rf_trace_set_tag(s, trace_id, key, NULL);
}

const char *rf_span_trace_id(const rf_span *s, char *buf)
{
	if (!is_real(s)) {
		buf[0] = 0;
		return buf;
	}
	memcpy(buf, "tr-", 3);
	for (int i = 0; i < 16; i++) {
		buf[3 + 2 * i] = hexd[s->trace_id[i] >> 4];
		buf[4 + 2 * i] = hexd[s->trace_id[i] & 15];
	}
	buf[35] = 0;
	return buf;
}

const char *rf_span_id_hex(const rf_span *s, char *buf)
{
	if (!is_real(s)) {
		buf[0] = 0;
		return buf;
	}
	for (int i = 0; i < 16; i++)
		buf[i] = hexd[(s->span_id >> (60 - 4 * i)) & 15];
	buf[16] = 0;
	return buf;
}
