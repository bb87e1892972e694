/*
 * rf_track.c - fold Inspect records into MLflow runs, params, metrics, tags.
 *
 * Mapping (names as inspect-mlflow, its defects fixed; docs/DESIGN.md):
 *   run_start   -> parent run "inspect-<run_id[:8]>", tags inspect.run_id,
 *                  inspect.tasks, inspect.task_count, inspect.eval_set_id
 *   task_start  -> child run named after the task, tags mlflow.parentRunId,
 *                  inspect.eval_id, inspect.run_id, inspect.task,
 *                  inspect.model; params task, model, task_version,
 *                  dataset.name, dataset.samples, solver, task_arg.<k>,
 *                  temperature, top_p, max_tokens, tags
 *   sample_end  -> sample/<scorer>[/<key>], sample/total_time,
 *                  sample/working_time; step = completion order in the task
 *   model_call  -> event/model_call, event/input_tokens, event/output_tokens,
 *                  event/model_time (once per event uuid)
 *   tool_call   -> event/tool_call, event/tool_time, and event/tool_error = 1
 *                  only for a failed call (error set or failed)
 *   model_usage -> summed per task and model: usage/<model>/... at task end
 *                  when task_end carries no model_usage totals
 *   task_end    -> <scorer>/<metric>, totals, usage/<model>/..., cost,
 *                  latency/..., status FINISHED | FAILED | KILLED
 *   run_end     -> parent status FINISHED | FAILED; open tasks closed
 * Metric timestamps come from the records' own times, so a batch sent twice
 * writes the same rows (MLflow drops exact duplicates).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rf_artq.h"
#include "rf_clock.h"
#include "rf_hash.h"
#include "rf_decode.h"
#include "rf_err.h"
#include "rf_runs.h"
#include "rf_track.h"
#include "ringflow.h"

struct rf_track {
	struct rf_track_opts o;
	char experiment[257];
	char state_dir[512]; /* the spool directory: id map, artifact tables' files */
	struct rf_runs runs;         /* its runs and their requests (rf_runs.c) */
};

/* ---- small helpers ---- */

/* The tracker folding the current record (one thread folds records): a
 * field present with the wrong type is counted there (`bad_fields`), then
 * treated as absent. */
static _Thread_local rf_track *cur;

static void bad_field(const msgpack_object *o)
{
	if (o && o->type != MSGPACK_OBJECT_NIL && cur)
		cur->runs.st.bad_fields++;
}

/* m[key] if it is of `type` (map, array); NULL if absent, counted if not. */
static const msgpack_object *get_typed(const msgpack_object *m, const char *key, int type)
{
	const msgpack_object *o = rf_obj_get(m, key);
	if (o && (int)o->type != type) {
		bad_field(o);
		return NULL;
	}
	return o;
}

static bool get_str(const msgpack_object *m, const char *key, char *out, size_t cap)
{
	const msgpack_object *o = rf_obj_get(m, key);
	if (rf_obj_text_copy(o, out, cap))
		return true;
	bad_field(o);
	return false;
}

static bool get_num(const msgpack_object *m, const char *key, double *v)
{
	const msgpack_object *o = rf_obj_get(m, key);
	if (rf_obj_num(o, v))
		return true;
	bad_field(o);
	return false;
}

/* Epoch seconds -> ms; a time that is not one (NaN, infinite, negative, past
 * year 5000) is a bad field and the record takes the current time. */
static int64_t ms_of(const msgpack_object *m, const char *key)
{
	double t;
	if (get_num(m, key, &t)) {
		if (isfinite(t) && t > 0 && t < 1e11)
			return (int64_t)llround(t * 1000.0);
		bad_field(rf_obj_get(m, key));
	}
	return (int64_t)(rf_realtime_ns() / 1000000);
}

/* A msgpack scalar as text for a param value (JSON for structures). */
static char *param_text(const msgpack_object *o)
{
	const char *s;
	size_t n;
	bool trunc;
	if (rf_obj_text(o, &s, &n, &trunc))
		return strndup(s, n);
	json_t *j = rf_obj_to_json(o);
	char *out = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	return out;
}

/* Linear interpolation between ranks, like numpy's default percentile. */
static double percentile(double *v, size_t n, double p)
{
	if (!n)
		return NAN;
	double rank = p * (double)(n - 1);
	size_t lo = (size_t)floor(rank), hi = (size_t)ceil(rank);
	return v[lo] + (v[hi] - v[lo]) * (rank - (double)lo);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* ---- per-task aggregation ---- */

/* Set of event uuids already counted (open addressing on their hashes). */
static bool seen_add(struct task_agg *a, const char *uuid)
{
	if (a->seen_n * 2 >= a->seen_cap) {
		size_t cap = a->seen_cap ? a->seen_cap * 2 : 256;
		uint64_t *t = calloc(cap, sizeof *t);
		if (!t)
			return true;
		for (size_t i = 0; i < a->seen_cap; i++)
			if (a->seen[i]) {
				size_t j = a->seen[i] & (cap - 1);
				while (t[j])
					j = (j + 1) & (cap - 1);
				t[j] = a->seen[i];
			}
		free(a->seen);
		a->seen = t;
		a->seen_cap = cap;
	}
	uint64_t h = rf_hash_str(uuid);
	size_t j = h & (a->seen_cap - 1);
	while (a->seen[j]) {
		if (a->seen[j] == h)
			return false;
		j = (j + 1) & (a->seen_cap - 1);
	}
	a->seen[j] = h;
	a->seen_n++;
	return true;
}

static void agg_time(struct task_agg *a, double total, double working, bool has_working)
{
	/* Only real durations go into the percentiles: a NaN would make
	 * cmp_double inconsistent, which qsort must never be given. */
	if (!isfinite(total))
		return;
	if (has_working && !isfinite(working))
		has_working = false;
	if (a->n_tt == a->cap_tt) {
		size_t cap = a->cap_tt ? a->cap_tt * 2 : 256;
		double *p = realloc(a->total_times, cap * sizeof *p);
		if (!p)
			return;
		a->total_times = p;
		a->cap_tt = cap;
	}
	a->total_times[a->n_tt++] = total;
	if (has_working) {
		a->working_sum += working;
		a->n_wt++;
	}
}

/* ---- records ---- */

static void on_run_start(rf_track *t, const msgpack_object *m)
{
	char run_id[128], names[2048] = "", buf[256];
	if (!get_str(m, "run_id", run_id, sizeof run_id))
		return;
	char key[160];
	snprintf(key, sizeof key, "run:%s", run_id);
	struct mrun *r = rf_runs_get(&t->runs, key, true);
	if (!r || r->start_ms)
		return;
	r->start_ms = ms_of(m, "time");
	snprintf(r->name, sizeof r->name, "inspect-%.8s", run_id);
	const msgpack_object *tn = get_typed(m, "task_names", MSGPACK_OBJECT_ARRAY);
	int count = 0;
	if (tn && tn->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < tn->via.array.size; i++) {
			const char *s;
			size_t n;
			if (!rf_obj_str(&tn->via.array.ptr[i], &s, &n))
				continue;
			size_t used = strlen(names);
			snprintf(names + used, sizeof names - used, "%s%.*s", count ? ", " : "", (int)n, s);
			count++;
		}
	}
	rf_run_tag(r, "inspect.run_id", run_id, true);
	rf_run_tag(r, "inspect.tasks", names, true);
	snprintf(buf, sizeof buf, "%d", count);
	rf_run_tag(r, "inspect.task_count", buf, true);
	if (get_str(m, "eval_set_id", buf, sizeof buf))
		rf_run_tag(r, "inspect.eval_set_id", buf, true);
}

static struct mrun *task_run(rf_track *t, const msgpack_object *m, bool create)
{
	char eval_id[128], key[160];
	if (!get_str(m, "eval_id", eval_id, sizeof eval_id))
		return NULL;
	snprintf(key, sizeof key, "task:%s", eval_id);
	return rf_runs_get(&t->runs, key, create);
}

static void param_str(struct mrun *r, const char *key, const msgpack_object *v)
{
	if (!v || v->type == MSGPACK_OBJECT_NIL)
		return;
	char *s = param_text(v);
	if (s) {
		rf_run_param(r, key, s);
		free(s);
	}
}

static void on_task_start(rf_track *t, const msgpack_object *m)
{
	struct mrun *r = task_run(t, m, true);
	char run_id[128], key[160], task[256] = "", model[256] = "";
	if (!r || r->start_ms || !get_str(m, "run_id", run_id, sizeof run_id))
		return;
	snprintf(key, sizeof key, "run:%s", run_id);
	r->parent = rf_runs_get(&t->runs, key, true);
	r->start_ms = ms_of(m, "created");
	get_str(m, "task", task, sizeof task);
	get_str(m, "model", model, sizeof model);
	snprintf(r->name, sizeof r->name, "%s", task[0] ? task : "task");
	r->agg = calloc(1, sizeof *r->agg);
	if (r->agg && t->o.log_artifacts && (r->agg->art = rf_art_new(t->o.state_dir)))
		rf_art_task_start(r->agg->art, m);
	char eval_id[128];
	get_str(m, "eval_id", eval_id, sizeof eval_id);
	rf_run_tag(r, "inspect.eval_id", eval_id, true);
	rf_run_tag(r, "inspect.run_id", run_id, true);
	rf_run_tag(r, "inspect.task", task, true);
	rf_run_tag(r, "inspect.model", model, true);
	param_str(r, "task", rf_obj_get(m, "task"));
	param_str(r, "model", rf_obj_get(m, "model"));
	param_str(r, "task_version", rf_obj_get(m, "task_version"));
	const msgpack_object *ds = rf_obj_get(m, "dataset");
	param_str(r, "dataset.name", rf_obj_get(ds, "name"));
	param_str(r, "dataset.samples", rf_obj_get(ds, "samples"));
	param_str(r, "solver", rf_obj_get(m, "solver"));
	const msgpack_object *ta = get_typed(m, "task_args", MSGPACK_OBJECT_MAP);
	if (ta && ta->type == MSGPACK_OBJECT_MAP)
		for (uint32_t i = 0; i < ta->via.map.size; i++) {
			const msgpack_object *k = &ta->via.map.ptr[i].key;
			char pk[300];
			snprintf(pk, sizeof pk, "task_arg.%.*s", (int)k->via.str.size, k->via.str.ptr);
			param_str(r, pk, &ta->via.map.ptr[i].val);
		}
	const msgpack_object *gc = rf_obj_get(m, "generate_config");
	param_str(r, "temperature", rf_obj_get(gc, "temperature"));
	param_str(r, "top_p", rf_obj_get(gc, "top_p"));
	param_str(r, "max_tokens", rf_obj_get(gc, "max_tokens"));
	const msgpack_object *tags = get_typed(m, "tags", MSGPACK_OBJECT_ARRAY);
	if (tags && tags->type == MSGPACK_OBJECT_ARRAY && tags->via.array.size) {
		char joined[4096] = "";
		for (uint32_t i = 0; i < tags->via.array.size; i++) {
			const char *s;
			size_t n;
			if (!rf_obj_str(&tags->via.array.ptr[i], &s, &n))
				continue;
			size_t used = strlen(joined);
			snprintf(joined + used, sizeof joined - used, "%s%.*s", i ? ", " : "", (int)n, s);
		}
		rf_run_param(r, "tags", joined);
	}
}

static void score_metrics(struct mrun *r, const char *scorer, const msgpack_object *v,
			  int64_t ts, int64_t step)
{
	char key[512];
	double d;
	if (v && v->type == MSGPACK_OBJECT_MAP) {
		for (uint32_t i = 0; i < v->via.map.size; i++) {
			const msgpack_object *k = &v->via.map.ptr[i].key;
			if (!rf_value_to_float(&v->via.map.ptr[i].val, &d))
				continue;
			snprintf(key, sizeof key, "sample/%s/%.*s", scorer, (int)k->via.str.size,
				 k->via.str.ptr);
			rf_run_metric(r, key, d, ts, step);
		}
		return;
	}
	if (v && v->type == MSGPACK_OBJECT_ARRAY)
		return; /* lists have no single number */
	if (rf_value_to_float(v, &d)) {
		snprintf(key, sizeof key, "sample/%s", scorer);
		rf_run_metric(r, key, d, ts, step);
	}
}

static void on_sample_init(rf_track *t, const msgpack_object *m)
{
	struct mrun *r = task_run(t, m, false);
	if (r && r->agg && r->agg->art)
		rf_art_sample_init(r->agg->art, m);
}

static void on_sample_end(rf_track *t, const msgpack_object *m)
{
	struct mrun *r = task_run(t, m, false);
	if (!r || !r->agg)
		return;
	if (r->agg->art)
		rf_art_sample_end(r->agg->art, m);
	int64_t step = r->agg->samples_done++;
	int64_t ts = ms_of(m, "completed_at");
	const msgpack_object *scores = get_typed(m, "scores", MSGPACK_OBJECT_MAP);
	if (scores && scores->type == MSGPACK_OBJECT_MAP)
		for (uint32_t i = 0; i < scores->via.map.size; i++) {
			const msgpack_object *k = &scores->via.map.ptr[i].key;
			char scorer[256];
			snprintf(scorer, sizeof scorer, "%.*s", (int)k->via.str.size, k->via.str.ptr);
			score_metrics(r, scorer, rf_obj_get(&scores->via.map.ptr[i].val, "value"), ts,
				      step);
		}
	double total, working;
	bool has_total = get_num(m, "total_time", &total);
	bool has_working = get_num(m, "working_time", &working);
	if (has_total)
		rf_run_metric(r, "sample/total_time", total, ts, step);
	if (has_working)
		rf_run_metric(r, "sample/working_time", working, ts, step);
	if (has_total)
		agg_time(r->agg, total, working, has_working);
}

static void on_model_call(rf_track *t, const msgpack_object *m)
{
	struct mrun *r = task_run(t, m, false);
	char uuid[128];
	if (!r || !r->agg || !get_str(m, "event_uuid", uuid, sizeof uuid) || !seen_add(r->agg, uuid))
		return;
	int64_t step = r->agg->model_calls++;
	int64_t ts = ms_of(m, "completed");
	double v;
	rf_run_metric(r, "event/model_call", (double)step, ts, step);
	if (get_num(m, "input_tokens", &v))
		rf_run_metric(r, "event/input_tokens", v, ts, step);
	if (get_num(m, "output_tokens", &v))
		rf_run_metric(r, "event/output_tokens", v, ts, step);
	if (get_num(m, "working_time", &v))
		rf_run_metric(r, "event/model_time", v, ts, step);
}

static void on_tool_call(rf_track *t, const msgpack_object *m)
{
	struct mrun *r = task_run(t, m, false);
	char uuid[128];
	if (!r || !r->agg || !get_str(m, "event_uuid", uuid, sizeof uuid) || !seen_add(r->agg, uuid))
		return;
	int64_t step = r->agg->tool_calls++;
	int64_t ts = ms_of(m, "completed");
	double v;
	const msgpack_object *err = rf_obj_get(m, "error");
	bool failed = false;
	rf_run_metric(r, "event/tool_call", (double)step, ts, step);
	/* Once per failed call, value 1 (as inspect-mlflow): summing or
	 * counting the series gives the number of errors. */
	if ((err && err->type != MSGPACK_OBJECT_NIL) ||
	    (rf_obj_bool(rf_obj_get(m, "failed"), &failed) && failed))
		rf_run_metric(r, "event/tool_error", 1.0, ts, step);
	if (get_num(m, "working_time", &v))
		rf_run_metric(r, "event/tool_time", v, ts, step);
}

static const char *const usage_fields[][2] = {
	{"input_tokens", "input_tokens"},
	{"output_tokens", "output_tokens"},
	{"total_tokens", "total_tokens"},
	{"input_tokens_cache_read", "input_cache_read_tokens"},
	{"input_tokens_cache_write", "input_cache_write_tokens"},
	{"reasoning_tokens", "reasoning_tokens"},
	{"total_cost", "total_cost_usd"},
};
#define N_USAGE (sizeof usage_fields / sizeof *usage_fields)

/* usage/<model>/<field> from values in usage_fields order. */
static void usage_put(struct mrun *r, const char *model, const double *v, const bool *has,
		      int64_t ts, double *cost_sum, bool *cost_any)
{
	char key[512];
	for (size_t i = 0; i < N_USAGE; i++)
		if (has[i]) {
			snprintf(key, sizeof key, "usage/%s/%s", model, usage_fields[i][1]);
			rf_run_metric(r, key, v[i], ts, 0);
		}
	if (has[N_USAGE - 1]) { /* omitted when the provider reports none */
		*cost_sum += v[N_USAGE - 1];
		*cost_any = true;
	}
}

static void usage_metrics(struct mrun *r, const char *model, const msgpack_object *u, int64_t ts,
			  double *cost_sum, bool *cost_any)
{
	double v[N_USAGE];
	bool has[N_USAGE];
	for (size_t i = 0; i < N_USAGE; i++)
		has[i] = get_num(u, usage_fields[i][0], &v[i]);
	usage_put(r, model, v, has, ts, cost_sum, cost_any);
}

/* model_usage: summed per task and model (usage_sum). */
static void on_model_usage(rf_track *t, const msgpack_object *m)
{
	struct mrun *r = task_run(t, m, false);
	char model[256];
	if (!r || !r->agg || !get_str(m, "model", model, sizeof model))
		return;
	struct usage_sum *u = r->agg->usage;
	while (u && strcmp(u->model, model))
		u = u->next;
	if (!u) {
		if (!(u = calloc(1, sizeof *u)))
			return;
		snprintf(u->model, sizeof u->model, "%s", model);
		u->next = r->agg->usage;
		r->agg->usage = u;
	}
	double v;
	for (size_t i = 0; i < N_USAGE; i++)
		if (get_num(m, usage_fields[i][0], &v)) {
			u->v[i] += v;
			u->has[i] = true;
		}
}

static const char *end_status(const char *inspect_status)
{
	if (!strcmp(inspect_status, "success"))
		return "FINISHED";
	if (!strcmp(inspect_status, "cancelled"))
		return "KILLED";
	return "FAILED";
}

static void on_task_end(rf_track *t, const msgpack_object *m)
{
	struct mrun *r = task_run(t, m, true);
	if (!r || r->end_status)
		return;
	int64_t ts = ms_of(m, "completed_at");
	if (!rf_obj_get(m, "completed_at") || rf_obj_get(m, "completed_at")->type == MSGPACK_OBJECT_NIL)
		ts = ms_of(m, "time");
	char key[600];
	double v;
	const msgpack_object *scores = get_typed(m, "scores", MSGPACK_OBJECT_ARRAY);
	if (scores && scores->type == MSGPACK_OBJECT_ARRAY)
		for (uint32_t i = 0; i < scores->via.array.size; i++) {
			const msgpack_object *s = &scores->via.array.ptr[i];
			char name[256];
			const msgpack_object *metrics = rf_obj_get(s, "metrics");
			if (!get_str(s, "name", name, sizeof name) || !metrics ||
			    metrics->type != MSGPACK_OBJECT_MAP)
				continue;
			for (uint32_t j = 0; j < metrics->via.map.size; j++) {
				const msgpack_object *k = &metrics->via.map.ptr[j].key;
				if (!rf_obj_num(&metrics->via.map.ptr[j].val, &v))
					continue;
				snprintf(key, sizeof key, "%s/%.*s", name, (int)k->via.str.size,
					 k->via.str.ptr);
				rf_run_metric(r, key, v, ts, 0);
			}
		}
	if (get_num(m, "total_samples", &v))
		rf_run_metric(r, "total_samples", v, ts, 0);
	if (get_num(m, "completed_samples", &v))
		rf_run_metric(r, "completed_samples", v, ts, 0);
	double cost = 0;
	bool cost_any = false;
	const msgpack_object *mu = get_typed(m, "model_usage", MSGPACK_OBJECT_MAP);
	if (mu && mu->type == MSGPACK_OBJECT_MAP && mu->via.map.size) {
		for (uint32_t i = 0; i < mu->via.map.size; i++) {
			const msgpack_object *k = &mu->via.map.ptr[i].key;
			char model[256];
			snprintf(model, sizeof model, "%.*s", (int)k->via.str.size, k->via.str.ptr);
			usage_metrics(r, model, &mu->via.map.ptr[i].val, ts, &cost, &cost_any);
		}
	} else if (r->agg) { /* no totals in task_end: the sums of its model_usage records */
		for (struct usage_sum *u = r->agg->usage; u; u = u->next)
			usage_put(r, u->model, u->v, u->has, ts, &cost, &cost_any);
	}
	if (cost_any)
		rf_run_metric(r, "cost/total_usd", cost, ts, 0);
	struct task_agg *a = r->agg;
	if (a && a->n_tt) {
		double sum = 0;
		for (size_t i = 0; i < a->n_tt; i++)
			sum += a->total_times[i];
		qsort(a->total_times, a->n_tt, sizeof(double), cmp_double);
		rf_run_metric(r, "latency/per_sample_mean_seconds", sum / (double)a->n_tt, ts, 0);
		rf_run_metric(r, "latency/per_sample_p50_seconds",
			      percentile(a->total_times, a->n_tt, 0.50), ts, 0);
		rf_run_metric(r, "latency/per_sample_p95_seconds",
			      percentile(a->total_times, a->n_tt, 0.95), ts, 0);
		if (a->n_wt)
			rf_run_metric(r, "latency/per_sample_working_mean_seconds",
				      a->working_sum / (double)a->n_wt, ts, 0);
	}
	double started, completed;
	if (get_num(m, "started_at", &started) && get_num(m, "completed_at", &completed))
		rf_run_metric(r, "latency/total_seconds", completed - started, ts, 0);
	if (a && a->model_calls)
		rf_run_metric(r, "total_model_calls", (double)a->model_calls, ts, 0);
	if (a && a->tool_calls)
		rf_run_metric(r, "total_tool_calls", (double)a->tool_calls, ts, 0);
	if (a && a->art) {
		char eval_id[128] = "", location[1024] = "";
		get_str(m, "eval_id", eval_id, sizeof eval_id);
		get_str(m, "location", location, sizeof location);
		rf_run_build_artifacts(r, a->art, eval_id, location);
		a->art = NULL;
	}
	char status[64] = "error";
	get_str(m, "status", status, sizeof status);
	rf_run_end(r, end_status(status), ms_of(m, "time"));
}

static void on_run_end(rf_track *t, const msgpack_object *m)
{
	char run_id[128], key[160];
	if (!get_str(m, "run_id", run_id, sizeof run_id))
		return;
	snprintf(key, sizeof key, "run:%s", run_id);
	struct mrun *p = rf_runs_get(&t->runs, key, true);
	if (!p)
		return;
	int64_t ts = ms_of(m, "time");
	/* Tasks that never ended (the hook emits task_end for them; this is
	 * the backstop when even that was lost): closed, never left RUNNING. */
	for (struct mrun *r = t->runs.list; r; r = r->next)
		if (r->parent == p && !r->end_status)
			rf_run_end(r, "KILLED", ts);
	const msgpack_object *exc = rf_obj_get(m, "exception");
	rf_run_end(p, exc && exc->type != MSGPACK_OBJECT_NIL ? "FAILED" : "FINISHED", ts);
}

void rf_track_record(rf_track *t, int type, const msgpack_object *root)
{
	t->runs.st.records++;
	cur = t;
	uint64_t bad = t->runs.st.bad_fields;
	/* The ids a record is filed under: without them (absent or not a
	 * string) it cannot be used, and is counted as invalid. */
	static const char *const need[][2] = {
		[RF_EV_RUN_START] = {"run_id", NULL},   [RF_EV_TASK_START] = {"eval_id", "run_id"},
		[RF_EV_SAMPLE_INIT] = {"eval_id", NULL}, [RF_EV_SAMPLE_END] = {"eval_id", NULL},
		[RF_EV_MODEL_CALL] = {"eval_id", "event_uuid"},
		[RF_EV_TOOL_CALL] = {"eval_id", "event_uuid"}, [RF_EV_TASK_END] = {"eval_id", NULL},
		[RF_EV_RUN_END] = {"run_id", NULL},
	};
	if (type > 0 && (size_t)type < sizeof need / sizeof *need && need[type][0]) {
		for (int i = 0; i < 2 && need[type][i]; i++) {
			const char *s;
			size_t n;
			bool tr;
			if (!rf_obj_text(rf_obj_get(root, need[type][i]), &s, &n, &tr) || !n) {
				t->runs.st.invalid++;
				rf_err_report(&t->runs.err, "%s record without a string %s: ignored",
					 rf_event_name(type) ? rf_event_name(type) : "?", need[type][i]);
				cur = NULL;
				return;
			}
		}
	}
	switch (type) {
	case RF_EV_RUN_START: on_run_start(t, root); break;
	case RF_EV_TASK_START: on_task_start(t, root); break;
	case RF_EV_SAMPLE_INIT: on_sample_init(t, root); break;
	case RF_EV_SAMPLE_END: on_sample_end(t, root); break;
	case RF_EV_MODEL_CALL: on_model_call(t, root); break;
	case RF_EV_TOOL_CALL: on_tool_call(t, root); break;
	case RF_EV_MODEL_USAGE: on_model_usage(t, root); break;
	case RF_EV_TASK_END: on_task_end(t, root); break;
	case RF_EV_RUN_END: on_run_end(t, root); break;
	default: t->runs.st.ignored++; break; /* not run data (spans, logs, ...) */
	}
	if (t->runs.st.bad_fields != bad)
		rf_err_report(&t->runs.err, "%s record: %llu field(s) of the wrong type ignored",
			 rf_event_name(type) ? rf_event_name(type) : "?",
			 (unsigned long long)(t->runs.st.bad_fields - bad));
	cur = NULL;
}

/* ---- lifecycle ---- */

int rf_track_new(rf_track **out, rf_mlflow *m, const struct rf_track_opts *o)
{
	rf_track *t = calloc(1, sizeof *t);
	if (!t)
		return rf_err_set(ENOMEM, "tracker: out of memory");
	if (o)
		t->o = *o;
	snprintf(t->experiment, sizeof t->experiment, "%s",
		 t->o.experiment && *t->o.experiment ? t->o.experiment : "inspect_ai");
	t->o.experiment = t->experiment;
	if (t->o.metrics_ms <= 0)
		t->o.metrics_ms = 5000;
	if (t->o.max_batch <= 0 || t->o.max_batch > 1000)
		t->o.max_batch = 1000;
	char idmap[600] = "";
	if (t->o.state_dir) {
		char exp[257];
		snprintf(exp, sizeof exp, "%s", t->experiment);
		for (char *p = exp; *p; p++)
			if (*p == '/' || *p == ' ')
				*p = '_';
		if (t->o.idmap_id && *t->o.idmap_id)
			snprintf(idmap, sizeof idmap, "%s/idmap-%s-%.16s.jsonl", t->o.state_dir, exp,
				 t->o.idmap_id);
		else
			snprintf(idmap, sizeof idmap, "%s/idmap-%s.jsonl", t->o.state_dir, exp);
	}
	/* The caller's strings are not kept: the directory is copied. */
	if (t->o.state_dir)
		snprintf(t->state_dir, sizeof t->state_dir, "%s", t->o.state_dir);
	t->o.state_dir = t->state_dir[0] ? t->state_dir : NULL;
	t->o.idmap_id = NULL;
	/* An unreadable id map is reported (o.err), not fatal: runs are
	 * then looked up by their ringflow.key tag before being created. */
	rf_runs_init(&t->runs, m, &t->o.err, t->experiment, idmap, t->o.metrics_ms, t->o.max_batch);
	*out = t;
	return 0;
}

void rf_track_free(rf_track *t)
{
	if (!t)
		return;
	rf_runs_free(&t->runs);
	free(t);
}

void rf_track_pump(rf_track *t, bool flush_now)
{
	rf_runs_pump(&t->runs, flush_now);
}

bool rf_track_idle(rf_track *t)
{
	return rf_runs_idle(&t->runs);
}

bool rf_track_drained(rf_track *t)
{
	return rf_runs_drained(&t->runs);
}

void rf_track_stats(rf_track *t, struct rf_track_stats *st)
{
	/* Now, not as of the last pump: the memory gate asks in the middle of
	 * a spill file, where no pump runs. */
	rf_runs_count_pending(&t->runs);
	*st = t->runs.st;
	st->artifact_jobs = rf_artq_jobs(t->runs.artq);
}

bool rf_track_empty(rf_track *t)
{
	return t->runs.list == NULL;
}

/* ---- what the trace uploader needs to know (rf_traces.c) ---- */

void rf_track_set_end_hold(rf_track *t, rf_track_busy_fn busy, void *arg)
{
	t->runs.end_hold = busy;
	t->runs.end_hold_arg = arg;
}

struct rf_exp *rf_track_experiment(rf_track *t)
{
	return &t->runs.exp;
}

const char *rf_track_run_id(rf_track *t, const char *key, bool *failed)
{
	struct mrun *r = rf_runs_get(&t->runs, key, false);
	*failed = r && r->state == RUN_FAILED;
	if (r)
		return r->state == RUN_READY && r->id[0] ? r->id : NULL;
	/* Ended and freed: the id map remembers every run made or found. */
	return rf_idmap_get(&t->runs.idmap, key, NULL);
}
