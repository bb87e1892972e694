/*
 * rf_producer.c - the producer handle: attach to the ring, secrets, stats.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rf_err.h"
#include "rf_producer_int.h"

const char *rf_errmsg(void)
{
	return rf_err_msg();
}

static const char *const rf_names[] = {
	[RF_EV_EVAL_SET_START] = "eval_set_start", [RF_EV_EVAL_SET_END] = "eval_set_end",
	[RF_EV_RUN_START] = "run_start", [RF_EV_RUN_END] = "run_end",
	[RF_EV_TASK_START] = "task_start", [RF_EV_TASK_END] = "task_end",
	[RF_EV_SAMPLE_INIT] = "sample_init", [RF_EV_SAMPLE_START] = "sample_start",
	[RF_EV_ATTEMPT_START] = "attempt_start", [RF_EV_ATTEMPT_END] = "attempt_end",
	[RF_EV_SAMPLE_END] = "sample_end", [RF_EV_MODEL_CALL] = "model_call",
	[RF_EV_TOOL_CALL] = "tool_call", [RF_EV_SCORE] = "score",
	[RF_EV_SPAN_BEGIN] = "span_begin", [RF_EV_SPAN_END] = "span_end",
	[RF_EV_ERROR] = "error", [RF_EV_SAMPLE_LIMIT] = "sample_limit",
	[RF_EV_MODEL_RETRY] = "model_retry", [RF_EV_MODEL_USAGE] = "model_usage",
	[RF_EV_LOG] = "log", [RF_EV_SAMPLE_SCORING] = "sample_scoring",
	[RF_EV_MODEL_CACHE_USAGE] = "model_cache_usage",
	[RF_EV_TRACE_SPAN_START] = "trace_span_start", [RF_EV_TRACE_SPAN_END] = "trace_span_end",
	[RF_EV_TRACE_SPAN_EVENT] = "trace_span_event", [RF_EV_TRACE_UPDATE] = "trace_update",
	[RF_EV_TRACE_ASSESSMENT] = "trace_assessment", [RF_EV_TRACE_TAG] = "trace_tag",
};

const char *rf_event_name(int type)
{
	if (type < 1 || type > RF_EV_MAX_BUILTIN)
		return NULL;
	return rf_names[type];
}

bool rf_secret_env_name(const char *name, size_t len)
{
	static const char *const words[] = {"KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD",
					    "CREDENTIAL", NULL};
	char up[256];
	if (len >= sizeof up)
		len = sizeof up - 1;
	for (size_t i = 0; i < len; i++)
		up[i] = (char)toupper((unsigned char)name[i]);
	up[len] = 0;
	for (int i = 0; words[i]; i++)
		if (strstr(up, words[i]))
			return true;
	return false;
}

extern char **environ;

/* Every producer, whatever its language: the values of this process's
 * secret environment variables are never written (issue: only the Python
 * hook used to register them, so a C producer's MY_API_KEY went out). */
static void add_env_secrets(rf_producer *p)
{
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (eq && strlen(eq + 1) >= RF_SECRET_ENV_MIN && rf_secret_env_name(*e, (size_t)(eq - *e)))
			rf_producer_add_secret(p, eq + 1);
	}
}

int rf_producer_open(rf_producer **out, const struct rf_producer_opts *opts)
{
	struct rf_producer_opts o = {0};
	if (opts)
		o = *opts;
	*out = NULL;
	rf_producer *p = calloc(1, sizeof *p);
	if (!p)
		return rf_err_set(ENOMEM, "producer handle: out of memory");
	struct rf_ring_opts ro = {.capacity = o.capacity, .flags = RF_RING_CREATE,
				  .full_policy = o.full_policy, .full_wait_ns = o.full_wait_ns,
				  .spool_dir = o.spool_dir};
	int rc = rf_ring_open(&p->ring, o.ring, &ro);
	if (rc) {
		free(p);
		return rc; /* the ring said which ring and why */
	}
	struct rf_ring_stats st;
	rf_ring_stats(p->ring, &st);
	p->max_record = st.max_record;
	p->max_text = o.max_text;
	if (!p->max_text) {
		const char *env = getenv("RINGFLOW_MAX_TEXT");
		long v = env ? strtol(env, NULL, 10) : 0;
		p->max_text = v > 0 ? (size_t)v : 16384;
	}
	if (p->max_text > p->max_record / 2)
		p->max_text = p->max_record / 2;
	pthread_mutex_init(&p->secrets_lock, NULL);
	add_env_secrets(p);
	*out = p;
	return 0;
}

void rf_producer_close(rf_producer *p)
{
	if (!p)
		return;
	rf_ring_close(p->ring);
	for (int i = 0; i < atomic_load(&p->nsecrets); i++)
		free(p->secrets[i]);
	pthread_mutex_destroy(&p->secrets_lock);
	free(p);
}

int rf_producer_add_secret(rf_producer *p, const char *secret)
{
	size_t n = secret ? strlen(secret) : 0;
	if (n < 6) /* short values would redact ordinary text */
		return rf_err_set(EINVAL, "secret of %zu bytes not added: at least 6 are needed (a "
				  "shorter value would redact ordinary text)", n);
	pthread_mutex_lock(&p->secrets_lock);
	int k = atomic_load_explicit(&p->nsecrets, memory_order_relaxed);
	for (int i = 0; i < k; i++)
		if (p->secret_len[i] == n && !memcmp(p->secrets[i], secret, n)) {
			pthread_mutex_unlock(&p->secrets_lock);
			return 0;
		}
	if (k == RF_MAX_SECRETS || !(p->secrets[k] = strdup(secret))) {
		pthread_mutex_unlock(&p->secrets_lock);
		return rf_err_set(ENOSPC, "secret not added: %s", k == RF_MAX_SECRETS ?
				  "the producer holds its maximum of them" : "out of memory");
	}
	p->secret_len[k] = n;
	/* Release: pairs with the acquire load in rf_producer_value_is_secret();
	 * a reader that sees the new count sees the string. */
	atomic_store_explicit(&p->nsecrets, k + 1, memory_order_release);
	pthread_mutex_unlock(&p->secrets_lock);
	return 0;
}

bool rf_producer_value_is_secret(rf_producer *p, const char *s, size_t n)
{
	if (n >= 6 && (s[0] | 0x20) == 'b') { /* most strings are settled here */
		if (n >= 7 && !strncasecmp(s, "Bearer ", 7))
			return true;
		if (!strncasecmp(s, "Basic ", 6))
			return true;
	}
	int k = atomic_load_explicit(&p->nsecrets, memory_order_acquire);
	for (int i = 0; i < k; i++)
		if (n >= p->secret_len[i] && memmem(s, n, p->secrets[i], p->secret_len[i]))
			return true;
	return false;
}

int rf_producer_flush(rf_producer *p)
{
	return rf_ring_flush_spill(p->ring);
}

bool rf_producer_consumer_alive(rf_producer *p)
{
	return rf_ring_consumer_alive(p->ring) == 1;
}

void rf_producer_stats(rf_producer *p, struct rf_producer_stats *st)
{
	struct rf_ring_stats rs;
	rf_ring_stats(p->ring, &rs);
	st->records = atomic_load(&p->records);
	st->errors = atomic_load(&p->errors);
	st->truncated = atomic_load(&p->truncated);
	st->redacted = atomic_load(&p->redacted);
	st->ring_spilled = rs.spilled;
	st->ring_dropped = rs.dropped;
	st->ring_spill_failed = rs.spill_failed;
}
