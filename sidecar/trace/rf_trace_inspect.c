/*
 * rf_trace_inspect.c - Inspect records -> span trees.
 *
 * Per sample (default): trace "sample:<id>" = sample (CHAIN) > Inspect spans
 * (solvers, scorers, agents, tool groups; nested by Inspect's span ids) >
 * model calls (LLM), tool calls (TOOL), scores (EVALUATOR).  Per run
 * (MLFLOW_INSPECT_TRACE_MODE=run): eval_run (CHAIN) > task (CHAIN) > the
 * same sample subtrees, sent as each sample ends.
 *
 * Every span starts at its event's timestamp and ends at its completed
 * time; working_time is an attribute.  Ids are hashes of Inspect's ids
 * (rf_spans.h), so the same records always build the same trace.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rf_decode.h"
#include "rf_metrics.h"
#include "rf_trace_inspect.h"
#include "ringflow.h"

struct ictx {
	rf_traces *x;
	const msgpack_object *r;
	char run_id[96], eval_id[96], sample_uuid[96], task[256];
	bool run_mode;
};

/* The field's text, "" when absent. */
static bool text(const msgpack_object *r, const char *k, char *out, size_t cap)
{
	if (rf_obj_text_copy(rf_obj_get(r, k), out, cap))
		return true;
	out[0] = 0;
	return false;
}

static json_t *jget(const msgpack_object *r, const char *k)
{
	const msgpack_object *o = rf_obj_get(r, k);
	return o && o->type != MSGPACK_OBJECT_NIL ? rf_obj_to_json(o) : NULL;
}

static int64_t ns(const msgpack_object *r, const char *k)
{
	double v;
	return rf_obj_num(rf_obj_get(r, k), &v) ? rf_ns_of_secs(v) : 0;
}

/* Copy record fields into a JSON object (absent/nil ones skipped). */
static json_t *pick(const msgpack_object *r, const char *const *keys)
{
	json_t *o = json_object();
	for (; *keys; keys++) {
		json_t *v = jget(r, *keys);
		if (v)
			json_object_set_new(o, *keys, v);
	}
	return o;
}

static void attrs(struct rf_tspan *s, const msgpack_object *r, const char *const *keys)
{
	for (; *keys; keys++)
		rf_tspan_attr(s, *keys, jget(r, *keys));
}

/* The trace of this record's sample, created on first sight. */
static struct xtrace *sample_trace(struct ictx *c, bool create)
{
	uint8_t id[16];
	if (c->run_mode)
		rf_ttrace_id_of(id, "run", c->run_id);
	else
		rf_ttrace_id_of(id, "sample", c->sample_uuid);
	struct xtrace *t = rf_traces_get(c->x, id, create);
	if (t && !t->run_key[0]) {
		snprintf(t->inspect_run, sizeof t->inspect_run, "%s", c->run_id);
		snprintf(t->run_key, sizeof t->run_key, c->run_mode ? "run:%s" : "task:%s",
			 c->run_mode ? c->run_id : c->eval_id);
		if (!c->run_mode)
			snprintf(t->eval_id, sizeof t->eval_id, "%s", c->eval_id);
		t->progressive = c->run_mode;
		if (c->run_mode)
			t->tr->root = rf_tspan_id_of("run", c->run_id);
		else
			t->tr->root = rf_tspan_id_of("sample", c->sample_uuid);
	}
	return t;
}

/* The sample span (the root per sample; under its task per run). */
static struct rf_tspan *sample_span(struct ictx *c, struct xtrace *t)
{
	struct rf_tspan *s = rf_ttrace_span(t->tr, rf_tspan_id_of("sample", c->sample_uuid), true);
	if (s && !s->name) {
		c->x->st.spans++;
		char sid[128], epoch[32], name[200];
		/* Dataset sample ids are strings or ints (EVENTS.md `id`). */
		int64_t iid;
		if (!text(c->r, "sample_id", sid, sizeof sid) &&
		    rf_obj_int(rf_obj_get(c->r, "sample_id"), &iid))
			snprintf(sid, sizeof sid, "%lld", (long long)iid);
		int64_t ep = 1;
		rf_obj_int(rf_obj_get(c->r, "epoch"), &ep);
		snprintf(epoch, sizeof epoch, "%lld", (long long)ep);
		if (ep > 1)
			snprintf(name, sizeof name, "sample:%s (epoch %s)", sid, epoch);
		else
			snprintf(name, sizeof name, "sample:%s", sid);
		rf_tspan_set_name(s, name, "CHAIN");
		if (c->run_mode)
			s->parent = rf_tspan_id_of("task", c->eval_id);
		rf_tspan_attr(s, "inspect.sample_id", json_string(sid));
		rf_tspan_attr(s, "inspect.sample_uuid", json_string(c->sample_uuid));
		rf_tspan_attr(s, "inspect.epoch", json_integer(ep));
		rf_tspan_attr(s, "inspect.eval_id", json_string(c->eval_id));
		rf_tspan_attr(s, "inspect.task", json_string(c->task));
		rf_tspan_attr(s, "inspect.run_id", json_string(c->run_id));
		if (!c->run_mode) {
			json_object_set_new(t->tags, "mlflow.traceName", json_string(name));
			json_object_set_new(t->tags, "inspect.run_id", json_string(c->run_id));
			json_object_set_new(t->tags, "inspect.eval_id", json_string(c->eval_id));
			json_object_set_new(t->tags, "inspect.task", json_string(c->task));
			json_object_set_new(t->tags, "inspect.sample_id", json_string(sid));
			json_object_set_new(t->tags, "inspect.sample_uuid", json_string(c->sample_uuid));
			json_object_set_new(t->tags, "inspect.epoch", json_string(epoch));
		}
	}
	return s;
}

/* Parent of an event: its Inspect span when known, else the sample. */
static uint64_t parent_of(struct ictx *c, const char *key)
{
	char sp[128];
	if (text(c->r, key, sp, sizeof sp) && sp[0])
		return rf_tspan_id_of("ispan", sp);
	return rf_tspan_id_of("sample", c->sample_uuid);
}

/* The span of one Inspect event, "<kind>:<the record's `key`>" (`dflt` when
 * it has none; the value is left in val[cap]), started at its timestamp. */
static struct rf_tspan *event_span(struct ictx *c, struct xtrace *t, const char *kind,
				   const char *key, const char *dflt, char *val, size_t cap,
				   const char *type)
{
	char uuid[128], name[300];
	text(c->r, key, val, cap);
	snprintf(name, sizeof name, "%s:%s", kind, val[0] ? val : dflt);
	if (!text(c->r, "event_uuid", uuid, sizeof uuid))
		return NULL;
	sample_span(c, t);
	struct rf_tspan *s = rf_ttrace_span(t->tr, rf_tspan_id_of("event", uuid), true);
	if (!s)
		return NULL;
	if (!s->name)
		c->x->st.spans++;
	rf_tspan_set_name(s, name, type);
	s->parent = parent_of(c, "span_id");
	rf_tspan_attr(s, "inspect.event_uuid", json_string(uuid));
	s->start_ns = ns(c->r, "timestamp");
	return s;
}

static void on_model(struct ictx *c, struct xtrace *t)
{
	char model[256];
	struct rf_tspan *s = event_span(c, t, "model", "model", "", model, sizeof model, "LLM");
	if (!s)
		return;
	json_t *usage = json_object();
	static const char *const uk[][2] = {{"input_tokens", "input_tokens"},
					    {"output_tokens", "output_tokens"},
					    {"total_tokens", "total_tokens"},
					    {"input_tokens_cache_read", "cache_read_input_tokens"},
					    {"input_tokens_cache_write", "cache_creation_input_tokens"}};
	for (size_t i = 0; i < sizeof uk / sizeof uk[0]; i++) {
		int64_t v;
		if (rf_obj_int(rf_obj_get(c->r, uk[i][0]), &v))
			json_object_set_new(usage, uk[i][1], json_integer(v));
	}
	rf_tspan_attr(s, "mlflow.chat.tokenUsage", usage);
	double cost;
	if (rf_obj_num(rf_obj_get(c->r, "total_cost"), &cost))
		rf_tspan_attr(s, "mlflow.llm.cost", json_pack("{s:f}", "total_cost", cost));
	rf_tspan_attr(s, "mlflow.llm.model", json_string(model));
	char *slash = strchr(model, '/');
	if (slash) {
		*slash = 0;
		rf_tspan_attr(s, "mlflow.llm.provider", json_string(model));
	}
	static const char *const ak[] = {"role", "temperature", "top_p", "max_tokens", "cache",
					 "retries", "stop_reason", "working_time",
					 "reasoning_tokens", "tool_calls", NULL};
	attrs(s, c->r, ak);
	static const char *const ik[] = {"input", "input_messages", "request_raw", NULL};
	static const char *const ok[] = {"response", "stop_reason", "tool_calls", "response_raw",
					 NULL};
	rf_tspan_inputs(s, pick(c->r, ik));
	rf_tspan_outputs(s, pick(c->r, ok));
	char err[1024];
	if (text(c->r, "error", err, sizeof err))
		rf_tspan_error(s, "ModelError", err, ns(c->r, "completed"));
	else
		s->status = RF_TSPAN_OK;
	int64_t end = ns(c->r, "completed");
	rf_tspan_end(t->tr, s, end ? end : s->start_ns);
}

static void on_tool(struct ictx *c, struct xtrace *t)
{
	char fn[256];
	struct rf_tspan *s = event_span(c, t, "tool", "function", "", fn, sizeof fn, "TOOL");
	if (!s)
		return;
	static const char *const ik[] = {"function", "arguments", NULL};
	static const char *const ok[] = {"result", "error", NULL};
	static const char *const ak[] = {"tool_call_id", "working_time", "agent", "failed",
					 "truncated", NULL};
	rf_tspan_inputs(s, pick(c->r, ik));
	rf_tspan_outputs(s, pick(c->r, ok));
	attrs(s, c->r, ak);
	rf_tspan_attr(s, "mlflow.spanFunctionName", json_string(fn));
	int64_t end = ns(c->r, "completed");
	const msgpack_object *e = rf_obj_get(c->r, "error");
	bool failed = false;
	rf_obj_bool(rf_obj_get(c->r, "failed"), &failed);
	if ((e && e->type == MSGPACK_OBJECT_MAP) || failed) {
		char ty[128], msg[1024];
		text(e, "type", ty, sizeof ty);
		if (!text(e, "message", msg, sizeof msg))
			snprintf(msg, sizeof msg, "tool call failed");
		rf_tspan_error(s, ty[0] ? ty : "ToolError", msg, end ? end : s->start_ns);
	} else {
		s->status = RF_TSPAN_OK;
	}
	rf_tspan_end(t->tr, s, end ? end : s->start_ns);
}

/* A value as text: strings as they are, anything else as compact JSON. */
static json_t *raw_text(const msgpack_object *v)
{
	const char *s;
	size_t n;
	if (rf_obj_str(v, &s, &n))
		return json_stringn(s, n);
	json_t *j = rf_obj_to_json(v);
	char *txt = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	json_t *out = json_string(txt ? txt : "");
	free(txt);
	return out;
}

static void on_score(struct ictx *c, struct xtrace *t)
{
	char scorer[256];
	/* A score is an instant in Inspect's log; its scorer's span (the
	 * parent) carries the scoring time. */
	struct rf_tspan *s = event_span(c, t, "score", "scorer", "score", scorer, sizeof scorer,
					"EVALUATOR");
	if (!s)
		return;
	static const char *const ik[] = {"target", NULL};
	static const char *const ok[] = {"value", "answer", "explanation", NULL};
	rf_tspan_inputs(s, pick(c->r, ik));
	rf_tspan_outputs(s, pick(c->r, ok));
	rf_tspan_attr(s, "inspect.scorer", json_string(scorer));
	rf_tspan_attr(s, "inspect.intermediate", jget(c->r, "intermediate"));
	/* The score as Inspect logged it (the assessments hold its number). */
	rf_tspan_attr(s, "inspect.raw_value", jget(c->r, "value"));
	s->status = RF_TSPAN_OK;
	rf_tspan_end(t->tr, s, s->start_ns);
}

static const char *ispan_type(const char *t)
{
	if (!strcasecmp(t, "agent"))
		return "AGENT";
	if (!strcasecmp(t, "scorer") || !strcasecmp(t, "scorers"))
		return "EVALUATOR";
	/* Inspect's "tool" span wraps the tool's execution; the tool call
	 * itself is the TOOL span (from its ToolEvent), so this one is a CHAIN. */
	return "CHAIN";
}

static void on_span(struct ictx *c, struct xtrace *t, bool begin)
{
	char sp[128];
	if (!text(c->r, "span_id", sp, sizeof sp))
		return;
	sample_span(c, t);
	struct rf_tspan *s = rf_ttrace_span(t->tr, rf_tspan_id_of("ispan", sp), true);
	if (!s)
		return;
	if (begin) {
		char name[256], ty[64];
		text(c->r, "name", name, sizeof name);
		text(c->r, "span_type", ty, sizeof ty);
		if (!s->name)
			c->x->st.spans++;
		rf_tspan_set_name(s, name[0] ? name : "span", ispan_type(ty));
		s->parent = parent_of(c, "parent_id");
		s->start_ns = ns(c->r, "timestamp");
		rf_tspan_attr(s, "inspect.span_id", json_string(sp));
		if (ty[0])
			rf_tspan_attr(s, "inspect.span_type", json_string(ty));
	} else if (!s->end_ns) {
		s->status = RF_TSPAN_OK;
		rf_tspan_end(t->tr, s, ns(c->r, "timestamp"));
	}
}

/* A score value as a feedback value: the number Inspect's value_to_float
 * gives (C 1, P 0.5, I and N 0, numbers as they are), the same number as
 * the run's sample/<scorer> metric; a value with no number (a list) stays
 * its JSON text, an unscored (NaN) one the string "NaN". */
static json_t *feedback_value(const msgpack_object *v)
{
	double d;
	if (v->type != MSGPACK_OBJECT_ARRAY && v->type != MSGPACK_OBJECT_MAP &&
	    rf_value_to_float(v, &d))
		return isfinite(d) ? json_real(d) : json_string(isnan(d) ? "NaN" : "inf");
	return raw_text(v);
}

/* One assessment "name" on the sample's root span; the id is derived from
 * the sample and the name, so a retried or replayed info merges. */
static void assessment(struct ictx *c, struct xtrace *t, const char *sid, const char *t0,
		       const char *name, const msgpack_object *val, const msgpack_object *score)
{
	char aid[40], key[400];
	snprintf(key, sizeof key, "%s/%s", c->sample_uuid, name + 8 /* "inspect/" */);
	uint8_t h[16];
	rf_ttrace_id_of(h, "assessment", key);
	char hx[36];
	rf_ttrace_id_str(h, hx);
	snprintf(aid, sizeof aid, "a-%s", hx + 3);
	json_t *a = json_pack("{s:s,s:s,s:s,s:{s:s,s:s},s:{s:o},s:{s:s,s:s,s:o},s:s,s:s}",
			      "assessment_id", aid, "assessment_name", name, "span_id", sid, "source",
			      "source_type", "CODE", "source_id", "inspect_ai", "feedback", "value",
			      val ? feedback_value(val) : json_null(), "metadata",
			      "inspect.sample_uuid", c->sample_uuid, "inspect.eval_id", c->eval_id,
			      "inspect.raw_value", val ? raw_text(val) : json_string("null"),
			      "create_time", t0, "last_update_time", t0);
	char expl[4096];
	if (a && text(score, "explanation", expl, sizeof expl) && expl[0])
		json_object_set_new(a, "rationale", json_string(expl));
	if (a)
		json_array_append_new(t->assessments, a);
}

/* inspect/<scorer> per score; a dict score gives inspect/<scorer>/<key> per
 * key, as the run's sample/<scorer>/<key> metrics. */
static void assessments(struct ictx *c, struct xtrace *t, struct rf_tspan *root, int64_t when)
{
	const msgpack_object *sc = rf_obj_get(c->r, "scores");
	if (!sc || sc->type != MSGPACK_OBJECT_MAP)
		return;
	char sid[17], t0[40];
	snprintf(sid, sizeof sid, "%016llx", (unsigned long long)root->id);
	rf_rfc3339(when, t0);
	for (uint32_t i = 0; i < sc->via.map.size; i++) {
		const msgpack_object *k = &sc->via.map.ptr[i].key, *v = &sc->via.map.ptr[i].val;
		const char *kn;
		size_t kl;
		if (!rf_obj_str(k, &kn, &kl) || v->type != MSGPACK_OBJECT_MAP)
			continue;
		char name[600];
		const msgpack_object *val = rf_obj_get(v, "value");
		if (val && val->type == MSGPACK_OBJECT_MAP) {
			for (uint32_t j = 0; j < val->via.map.size; j++) {
				const msgpack_object *dk = &val->via.map.ptr[j].key;
				const char *dn;
				size_t dl;
				if (!rf_obj_str(dk, &dn, &dl))
					continue;
				snprintf(name, sizeof name, "inspect/%.*s/%.*s", (int)kl, kn, (int)dl, dn);
				assessment(c, t, sid, t0, name, &val->via.map.ptr[j].val, v);
			}
			continue;
		}
		snprintf(name, sizeof name, "inspect/%.*s", (int)kl, kn);
		assessment(c, t, sid, t0, name, val, v);
	}
}

static void on_sample_end(struct ictx *c, struct xtrace *t)
{
	struct rf_tspan *s = sample_span(c, t);
	if (!s)
		return;
	int64_t start = ns(c->r, "started_at"), end = ns(c->r, "completed_at");
	if (start && (!s->start_ns || start < s->start_ns))
		s->start_ns = start;
	if (!end)
		end = ns(c->r, "time");
	static const char *const ok[] = {"output", "scores", NULL};
	static const char *const ak[] = {"total_time", "working_time", "message_count", "retries",
					 "limit", NULL};
	rf_tspan_outputs(s, pick(c->r, ok));
	attrs(s, c->r, ak);
	char err[1024];
	if (text(c->r, "error", err, sizeof err) && err[0])
		rf_tspan_error(s, "SampleError", err, end);
	else if (s->status != RF_TSPAN_ERROR)
		s->status = RF_TSPAN_OK;
	/* Spans still open inside the sample (a cancelled tool, a span whose
	 * end was never logged) end with it, as ERROR. */
	for (size_t i = 0; i < t->tr->n; i++) {
		struct rf_tspan *o = &t->tr->spans[i];
		if (!o->end_ns && !o->sent && o->id != s->id && !c->run_mode) {
			if (!o->start_ns)
				o->start_ns = end;
			rf_tspan_error(o, "SpanNotEnded", "span still open when its sample ended", end);
			rf_tspan_end(t->tr, o, end);
			c->x->st.spans_forced++;
		}
	}
	rf_tspan_end(t->tr, s, end);
	assessments(c, t, s, end);
	if (!c->run_mode)
		rf_traces_complete(c->x, t, end, "span still open when its sample ended");
}

/* Run-mode spans for the run and its tasks. */
static void on_lifecycle(struct ictx *c, int type)
{
	uint8_t id[16];
	rf_ttrace_id_of(id, "run", c->run_id);
	struct xtrace *t = rf_traces_get(c->x, id, type == RF_EV_RUN_START || type == RF_EV_TASK_START);
	if (!t)
		return;
	if (!t->run_key[0]) {
		snprintf(t->inspect_run, sizeof t->inspect_run, "%s", c->run_id);
		snprintf(t->run_key, sizeof t->run_key, "run:%s", c->run_id);
		t->progressive = true;
		t->tr->root = rf_tspan_id_of("run", c->run_id);
	}
	int64_t when = ns(c->r, "time");
	if (type == RF_EV_RUN_START || type == RF_EV_RUN_END) {
		struct rf_tspan *s = rf_ttrace_span(t->tr, t->tr->root, true);
		if (!s)
			return;
		if (!s->name) {
			char name[64];
			snprintf(name, sizeof name, "eval_run:%.8s", c->run_id);
			rf_tspan_set_name(s, name, "CHAIN");
			json_object_set_new(t->tags, "mlflow.traceName", json_string(name));
			json_object_set_new(t->tags, "inspect.run_id", json_string(c->run_id));
			rf_tspan_attr(s, "inspect.run_id", json_string(c->run_id));
			c->x->st.spans++;
		}
		if (type == RF_EV_RUN_START) {
			s->start_ns = when;
			static const char *const ik[] = {"task_names", NULL};
			rf_tspan_inputs(s, pick(c->r, ik));
		} else {
			const msgpack_object *e = rf_obj_get(c->r, "exception");
			char msg[1024];
			if (e && e->type == MSGPACK_OBJECT_MAP && text(e, "message", msg, sizeof msg))
				rf_tspan_error(s, "EvalError", msg, when);
			else
				s->status = RF_TSPAN_OK;
			rf_tspan_end(t->tr, s, when);
			rf_traces_complete(c->x, t, when, "span still open when its run ended");
		}
		return;
	}
	struct rf_tspan *s = rf_ttrace_span(t->tr, rf_tspan_id_of("task", c->eval_id), true);
	if (!s)
		return;
	if (!s->name) {
		char name[300];
		snprintf(name, sizeof name, "task:%s", c->task);
		rf_tspan_set_name(s, name, "CHAIN");
		s->parent = t->tr->root;
		rf_tspan_attr(s, "inspect.eval_id", json_string(c->eval_id));
		rf_tspan_attr(s, "inspect.task", json_string(c->task));
		c->x->st.spans++;
	}
	if (type == RF_EV_TASK_START) {
		s->start_ns = when;
		static const char *const ik[] = {"task", "model", "dataset", NULL};
		rf_tspan_inputs(s, pick(c->r, ik));
	} else {
		static const char *const ok[] = {"status", "scores", "total_samples",
						 "completed_samples", NULL};
		rf_tspan_outputs(s, pick(c->r, ok));
		char st[32];
		text(c->r, "status", st, sizeof st);
		if (strcmp(st, "success"))
			rf_tspan_error(s, "TaskError", st, when);
		else
			s->status = RF_TSPAN_OK;
		int64_t end = ns(c->r, "completed_at");
		rf_tspan_end(t->tr, s, end ? end : when);
	}
}

/* A task or run ended: its per-sample traces still open are closed. */
static void close_for(struct ictx *c, bool task)
{
	int64_t when = ns(c->r, "time");
	for (struct xtrace *t = c->x->list; t; t = t->next)
		if (!t->complete && (task ? !strcmp(t->eval_id, c->eval_id) && t->eval_id[0]
					  : !strcmp(t->inspect_run, c->run_id)))
			rf_traces_complete(c->x, t, when, task ? "sample still open when its task ended"
							       : "sample still open when its run ended");
}

void rf_trace_inspect(rf_traces *x, int type, const msgpack_object *r)
{
	struct ictx c = {.x = x, .r = r};
	text(r, "run_id", c.run_id, sizeof c.run_id);
	if (!c.run_id[0])
		return;
	if (type == RF_EV_RUN_START) {
		/* A run_start naming its destination (tracking_uri) carries what
		 * its eval's environment says, which decides alone; one that
		 * names none (an older hook) is traced when either side asks. */
		const msgpack_object *dest = rf_obj_get(r, "tracking_uri");
		bool own = dest && dest->type != MSGPACK_OBJECT_NIL;
		bool on = !own && x->o.inspect_all, b = false;
		if (rf_obj_bool(rf_obj_get(r, "tracing"), &b) && b)
			on = true;
		char mode[16];
		text(r, "trace_mode", mode, sizeof mode);
		bool run = mode[0] ? !strcasecmp(mode, "run") : !own && x->o.run_mode_default;
		if (on)
			json_object_set_new(x->traced_runs, c.run_id, json_string(run ? "run" : "sample"));
	}
	const char *mode = json_string_value(json_object_get(x->traced_runs, c.run_id));
	if (!mode)
		return;
	c.run_mode = !strcmp(mode, "run");
	text(r, "eval_id", c.eval_id, sizeof c.eval_id);
	text(r, "sample_uuid", c.sample_uuid, sizeof c.sample_uuid);
	text(r, "task", c.task, sizeof c.task);
	switch (type) {
	case RF_EV_RUN_START:
	case RF_EV_TASK_START:
		if (c.run_mode)
			on_lifecycle(&c, type);
		return;
	case RF_EV_TASK_END:
		if (c.run_mode)
			on_lifecycle(&c, type);
		else
			close_for(&c, true);
		return;
	case RF_EV_RUN_END:
		if (c.run_mode)
			on_lifecycle(&c, type);
		else
			close_for(&c, false);
		json_object_del(x->traced_runs, c.run_id);
		return;
	default:
		break;
	}
	if (!c.sample_uuid[0])
		return;
	bool starts = type == RF_EV_SAMPLE_INIT || type == RF_EV_SAMPLE_START;
	struct xtrace *t = sample_trace(&c, true);
	if (!t)
		return;
	struct rf_tspan *s;
	switch (type) {
	case RF_EV_SAMPLE_INIT:
	case RF_EV_SAMPLE_START:
		s = sample_span(&c, t);
		if (s && starts && (!s->start_ns || ns(r, "time") < s->start_ns))
			s->start_ns = ns(r, "time");
		if (s && type == RF_EV_SAMPLE_INIT) {
			static const char *const ik[] = {"input", "target", NULL};
			rf_tspan_inputs(s, pick(r, ik));
		}
		break;
	case RF_EV_MODEL_CALL: on_model(&c, t); break;
	case RF_EV_TOOL_CALL: on_tool(&c, t); break;
	case RF_EV_SCORE: on_score(&c, t); break;
	case RF_EV_SPAN_BEGIN: on_span(&c, t, true); break;
	case RF_EV_SPAN_END: on_span(&c, t, false); break;
	case RF_EV_ERROR:
	case RF_EV_SAMPLE_LIMIT:
		if ((s = sample_span(&c, t))) {
			char msg[1024];
			text(r, "message", msg, sizeof msg);
			if (type == RF_EV_ERROR)
				rf_tspan_error(s, "SampleError", msg, ns(r, "timestamp"));
			else
				rf_tspan_event(s, "limit", ns(r, "timestamp"),
					      pick(r, (const char *const[]){"limit_type", "message",
									    "limit", NULL}));
		}
		break;
	case RF_EV_SAMPLE_END: on_sample_end(&c, t); break;
	default: break;
	}
}
