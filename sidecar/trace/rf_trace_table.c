/*
 * rf_trace_table.c - the traces held (rf_trace_table.h): found by id,
 * created on their first record, completed, dropped once uploaded (their
 * ids remembered for late records); the experiment and run each links to.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rf_hash.h"
#include "rf_loop.h"
#include "rf_trace_table.h"

/* The loop's clock: one time base with rf_track and rf_http (and a virtual
 * one in the fuzz targets, which replace rf_loop.c). */
uint64_t rf_traces_now_ms(void)
{
	return rf_loop_now_ms();
}
#define now_ms rf_traces_now_ms

int64_t rf_ns_of_secs(double s)
{
	/* 0 = absent; int64 nanoseconds end in 2262: later times are refused too. */
	return isfinite(s) && s > 0 && s < 9.2e9 ? (int64_t)llround(s * 1e9) : 0;
}

void rf_rfc3339(int64_t ns, char out[40])
{
	time_t sec = (time_t)(ns / 1000000000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	char b[24];
	strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 40, "%s.%03dZ", b, (int)(ns / 1000000 % 1000));
}

void rf_traces_err(rf_traces *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rf_err_vreport(&x->o.err, fmt, ap);
	va_end(ap);
}

/* ---- setup ---- */

/* OTEL_EXPORTER_OTLP_*_HEADERS: "k=v,k2=v2", values percent-encoded. */
void rf_traces_free_one(struct xtrace *t)
{
	rf_ttrace_free(t->tr);
	json_decref(t->tags);
	json_decref(t->metadata);
	json_decref(t->assessments);
	json_decref(t->info);
	free(t->enc);
	free(t);
}

void rf_trace_table_free(rf_traces *x)
{
	for (struct xtrace *t = x->list, *n; t; t = n) {
		n = t->next;
		rf_traces_free_one(t);
	}
	x->list = NULL;
	rf_trace_spool_close(x);
	for (size_t i = 0; i < x->nexps; i++)
		free(x->exps[i]);
	free(x->exps);
	x->exps = NULL;
	x->nexps = 0;
}

/* ---- the trace table ---- */

static size_t bucket_of(const uint8_t id[16])
{
	return (size_t)(rf_hash64(0, id, 16) % RF_TRACE_BUCKETS);
}

bool rf_traces_recent(rf_traces *x, const uint8_t id[16])
{
	size_t n = x->recent_n < RF_TRACE_RECENT ? x->recent_n : RF_TRACE_RECENT;
	for (size_t i = 0; i < n; i++)
		if (!memcmp(x->recent[i], id, 16))
			return true;
	return false;
}

struct xtrace *rf_traces_get(rf_traces *x, const uint8_t id[16], bool create)
{
	size_t b = bucket_of(id);
	for (struct xtrace *t = x->bucket[b]; t; t = t->hnext)
		if (!memcmp(t->tr->id, id, 16)) {
			t->last_ms = now_ms();
			return t;
		}
	if (!create)
		return NULL;
	if (rf_traces_recent(x, id)) {
		x->st.late++;
		return NULL;
	}
	if (x->ntraces >= RF_TRACES_HELD_MAX) {
		x->st.spans_capped++;
		rf_traces_err(x, "%d traces held (open or being sent): a new one is refused, "
			      "counted in spans_capped", RF_TRACES_HELD_MAX);
		return NULL;
	}
	struct xtrace *t = calloc(1, sizeof *t);
	if (!t || !(t->tr = rf_ttrace_new(id))) {
		free(t);
		rf_traces_err(x, "out of memory for a trace");
		return NULL;
	}
	t->tags = json_object();
	t->metadata = json_object();
	t->assessments = json_array();
	t->last_ms = now_ms();
	t->hnext = x->bucket[b];
	x->bucket[b] = t;
	struct xtrace **pp = &x->list;
	while (*pp)
		pp = &(*pp)->next;
	*pp = t;
	x->ntraces++;
	x->st.traces++;
	return t;
}

void rf_traces_drop(rf_traces *x, struct xtrace *t)
{
	x->st.spans_capped += t->tr->capped - t->capped_seen;
	memcpy(x->recent[x->recent_n++ % RF_TRACE_RECENT], t->tr->id, 16);
	rf_trace_spool_forget(x, t);
	rf_traces_unlink(x, t);
	rf_traces_free_one(t);
}

void rf_traces_unlink(rf_traces *x, struct xtrace *t)
{
	for (struct xtrace **pp = &x->bucket[bucket_of(t->tr->id)]; *pp; pp = &(*pp)->hnext)
		if (*pp == t) {
			*pp = t->hnext;
			break;
		}
	for (struct xtrace **pp = &x->list; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	x->ntraces--;
}

void rf_traces_complete(rf_traces *x, struct xtrace *t, int64_t end_ns, const char *why)
{
	if (t->complete)
		return;
	x->st.spans_forced += rf_ttrace_close_open(t->tr, end_ns, why);
	t->complete = true;
	t->done_ms = now_ms();
	rf_trace_spool_account(x, t);
}

/* ---- experiments (rf_experiments.c: the resolver tracking uses too) ---- */

static void exp_err(void *arg, const char *msg)
{
	rf_traces_err(arg, "traces: %s", msg);
}

/* A resolver per experiment named by general traces other than the
 * destination's own; NULL when out of memory (the trace waits). */
static struct rf_exp *exp_named(rf_traces *x, const char *name)
{
	for (size_t i = 0; i < x->nexps; i++)
		if (!strcmp(x->exps[i]->name, name))
			return x->exps[i];
	struct rf_exp **v = realloc(x->exps, (x->nexps + 1) * sizeof *v);
	if (!v)
		return NULL;
	x->exps = v;
	struct rf_exp *e = malloc(sizeof *e);
	if (!e)
		return NULL;
	rf_exp_init(e, x->m, name, exp_err, x);
	x->exps[x->nexps++] = e;
	return e;
}

/* The experiment id for a trace: NULL while not known; "" when it never
 * will be (refused). */
const char *rf_traces_exp_of(rf_traces *x, struct xtrace *t)
{
	if (t->exp_id[0])
		return t->exp_id; /* chosen by id (set_destination) */
	struct rf_exp *own = rf_track_experiment(x->track);
	if (!t->exp_name[0] || !strcmp(t->exp_name, own->name))
		return rf_exp_resolve(own);
	struct rf_exp *e = exp_named(x, t->exp_name);
	return e ? rf_exp_resolve(e) : NULL;
}

/* The run id to link: NULL while not known; "" for none. */
const char *rf_traces_run_of(rf_traces *x, struct xtrace *t)
{
	if (!t->run_key[0])
		return "";
	bool failed;
	const char *id = rf_track_run_id(x->track, t->run_key, &failed);
	return id ? id : failed ? "" : NULL;
}
