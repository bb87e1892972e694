/*
 * rf_artifacts.c - artifact tables from records (see rf_artifacts.h).
 * Column names follow inspect-mlflow's tables; its defects are fixed: cost is
 * a float, sample_scores rows carry sample_id and explanation.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_artifacts.h"
#include "rf_err.h"
#include "rf_decode.h"
#include "rf_evallog.h"
#include "rf_metrics.h"
#include "rf_mlflow.h"
#include "rf_redact.h"
#include "ringflow.h"

struct rf_art {
	json_t *task;    /* the task row */
	json_t *inputs;  /* sample uuid -> {input, target} */
	json_t *samples, *scores, *usage, *results; /* rows */
};

static const char *const SAMPLE_COLS[] = {"task_name", "eval_id", "sample_id", "epoch", "input",
					   "target", "output", "scores", "events_count", "total_time",
					   "working_time", "error", "usage_input_tokens",
					   "usage_output_tokens", "usage_total_tokens", "usage_total_cost",
					   NULL};
static const char *const SCORE_COLS[] = {"task_name", "eval_id", "sample_id", "epoch", "scorer",
					  "raw_value", "numeric_value", "explanation", NULL};
static const char *const USAGE_COLS[] = {"task_name", "eval_id", "sample_id", "epoch", "model",
					  "input_tokens", "output_tokens", "total_tokens",
					  "input_tokens_cache_read", "input_tokens_cache_write",
					  "reasoning_tokens", "total_cost", NULL};
static const char *const EVENT_COLS[] = {"task_name", "eval_id", "sample_id", "epoch",
					  "event_index", "event_type", "timestamp", "completed",
					  "working_time", "model", "completion", "usage_input_tokens",
					  "usage_output_tokens", "usage_total_tokens",
					  "usage_input_tokens_cache_read", "usage_input_tokens_cache_write",
					  "usage_reasoning_tokens", "usage_total_cost", "tool_function",
					  "tool_arguments", "tool_result", "tool_error", "error", NULL};
/* Column of SAMPLE_COLS filled from the log (the number of its events). */
#define SAMPLE_EVENTS_COUNT 8
static const char *const MESSAGE_COLS[] = {"task_name", "eval_id", "sample_id", "epoch",
					    "message_index", "role", "source", "content", "tool_calls",
					    "tool_call_id", "model", "stop_reason", NULL};
static const char *const TASK_COLS[] = {"task_name", "eval_id", "task_file", "task_version",
					 "task_id", "solver", "model", "dataset", "dataset_samples",
					 NULL};

struct rf_art *rf_art_new(void)
{
	struct rf_art *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->inputs = json_object();
	a->samples = json_array();
	a->scores = json_array();
	a->usage = json_array();
	a->results = json_array();
	return a;
}

void rf_art_free(struct rf_art *a)
{
	if (!a)
		return;
	json_decref(a->task);
	json_decref(a->inputs);
	json_decref(a->samples);
	json_decref(a->scores);
	json_decref(a->usage);
	json_decref(a->results);
	free(a);
}

/* A field as JSON (text unwrapped from its truncation map). */
static json_t *field(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = rf_obj_get(m, key);
	if (!o)
		return json_null();
	const char *s;
	size_t n;
	bool trunc;
	if (rf_obj_text(o, &s, &n, &trunc))
		return json_stringn(s, n) ?: json_null();
	return rf_obj_to_json(o);
}

/* Structures as a JSON string cell (as inspect-mlflow's tables do). */
static json_t *as_text(json_t *v)
{
	if (json_is_object(v) || json_is_array(v)) {
		char *s = json_dumps(v, JSON_COMPACT);
		json_decref(v);
		json_t *t = json_string(s ? s : "");
		free(s);
		return t;
	}
	return v;
}

static json_t *key_of(const msgpack_object *m)
{
	const msgpack_object *u = rf_obj_get(m, "sample_uuid");
	return u ? rf_obj_to_json(u) : json_null();
}

void rf_art_task_start(struct rf_art *a, const msgpack_object *m)
{
	const msgpack_object *ds = rf_obj_get(m, "dataset");
	json_decref(a->task);
	a->task = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "task_name", field(m, "task"),
			    "eval_id", field(m, "eval_id"), "task_file", field(m, "task_file"),
			    "task_version", field(m, "task_version"), "task_id", field(m, "task_id"),
			    "solver", field(m, "solver"), "model", field(m, "model"), "dataset",
			    field(ds, "name"), "dataset_samples", field(ds, "samples"));
}

void rf_art_sample_init(struct rf_art *a, const msgpack_object *m)
{
	json_t *k = key_of(m);
	if (json_is_string(k))
		json_object_set_new(a->inputs, json_string_value(k),
				    json_pack("{s:o,s:o}", "input", as_text(field(m, "input")),
					      "target", as_text(field(m, "target"))));
	json_decref(k);
}

static json_t *row(const char *const *cols, json_t *obj)
{
	json_t *r = json_array();
	for (int i = 0; cols[i]; i++) {
		json_t *v = json_object_get(obj, cols[i]);
		json_array_append(r, v ? v : json_null());
	}
	json_decref(obj);
	return r;
}

void rf_art_sample_end(struct rf_art *a, const msgpack_object *m)
{
	json_t *k = key_of(m);
	json_t *in = json_is_string(k) ? json_object_get(a->inputs, json_string_value(k)) : NULL;
	json_t *task = json_object_get(a->task, "task_name");
	json_t *eval_id = json_object_get(a->task, "eval_id");
	json_t *sid = field(m, "sample_id"), *epoch = field(m, "epoch");
	json_t *scores = json_object();
	json_t *result = json_pack("{s:O,s:O,s:O,s:O,s:o,s:o,s:o}", "id", sid, "epoch", epoch,
				   "input", in ? json_object_get(in, "input") : json_null(), "target",
				   in ? json_object_get(in, "target") : json_null(), "total_time",
				   field(m, "total_time"), "error", field(m, "error"), "output",
				   field(m, "output"));
	const msgpack_object *sc = rf_obj_get(m, "scores");
	if (sc && sc->type == MSGPACK_OBJECT_MAP)
		for (uint32_t i = 0; i < sc->via.map.size; i++) {
			const msgpack_object *name = &sc->via.map.ptr[i].key;
			const msgpack_object *s = &sc->via.map.ptr[i].val;
			char scorer[256], col[300];
			snprintf(scorer, sizeof scorer, "%.*s", (int)name->via.str.size, name->via.str.ptr);
			json_t *raw = field(s, "value");
			json_object_set(scores, scorer, raw);
			double d;
			const msgpack_object *v = rf_obj_get(s, "value");
			json_t *num = v && v->type != MSGPACK_OBJECT_MAP && v->type != MSGPACK_OBJECT_ARRAY &&
					      rf_value_to_float(v, &d) && isfinite(d)
					      ? json_real(d)
					      : json_null();
			char *rawtext = json_is_string(raw) ? strdup(json_string_value(raw))
							    : json_dumps(raw, JSON_COMPACT | JSON_ENCODE_ANY);
			json_array_append_new(a->scores,
					      row(SCORE_COLS, json_pack("{s:O,s:O,s:O,s:O,s:s,s:s,s:o,s:o}",
									"task_name", task, "eval_id", eval_id,
									"sample_id", sid, "epoch", epoch,
									"scorer", scorer, "raw_value",
									rawtext ? rawtext : "", "numeric_value",
									num, "explanation",
									field(s, "explanation"))));
			free(rawtext);
			snprintf(col, sizeof col, "score/%s", scorer);
			json_object_set(result, col, raw);
			json_t *expl = field(s, "explanation");
			if (!json_is_null(expl)) {
				snprintf(col, sizeof col, "explanation/%s", scorer);
				json_object_set(result, col, expl);
			}
			json_decref(expl);
			json_decref(raw);
		}
	json_array_append_new(a->results, result);
	/* Usage per model, and its sum for the samples table. */
	double in_t = 0, out_t = 0, tot_t = 0, cost = 0;
	bool has_cost = false;
	const msgpack_object *mu = rf_obj_get(m, "model_usage");
	if (mu && mu->type == MSGPACK_OBJECT_MAP)
		for (uint32_t i = 0; i < mu->via.map.size; i++) {
			const msgpack_object *u = &mu->via.map.ptr[i].val;
			double v;
			in_t += rf_obj_num(rf_obj_get(u, "input_tokens"), &v) ? v : 0;
			out_t += rf_obj_num(rf_obj_get(u, "output_tokens"), &v) ? v : 0;
			tot_t += rf_obj_num(rf_obj_get(u, "total_tokens"), &v) ? v : 0;
			if (rf_obj_num(rf_obj_get(u, "total_cost"), &v)) {
				cost += v;
				has_cost = true;
			}
			json_array_append_new(
				a->usage,
				row(USAGE_COLS,
				    json_pack("{s:O,s:O,s:O,s:O,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "task_name",
					      task, "eval_id", eval_id, "sample_id", sid, "epoch", epoch,
					      "model", rf_obj_to_json(&mu->via.map.ptr[i].key),
					      "input_tokens", field(u, "input_tokens"), "output_tokens",
					      field(u, "output_tokens"), "total_tokens", field(u, "total_tokens"),
					      "input_tokens_cache_read", field(u, "input_tokens_cache_read"),
					      "input_tokens_cache_write", field(u, "input_tokens_cache_write"),
					      "reasoning_tokens", field(u, "reasoning_tokens"), "total_cost",
					      field(u, "total_cost"))));
		}
	json_array_append_new(
		a->samples,
		row(SAMPLE_COLS,
		    json_pack("{s:O,s:O,s:O,s:O,s:O,s:O,s:o,s:o,s:o,s:o,s:o,s:o,s:f,s:f,s:f,s:o}",
			      "task_name", task, "eval_id", eval_id, "sample_id", sid, "epoch", epoch,
			      "input", in ? json_object_get(in, "input") : json_null(), "target",
			      in ? json_object_get(in, "target") : json_null(), "output",
			      field(m, "output"), "scores", as_text(json_deep_copy(scores)),
			      "events_count", json_null() /* from the log */, "total_time",
			      field(m, "total_time"), "working_time", field(m, "working_time"),
			      "error", field(m, "error"), "usage_input_tokens", in_t,
			      "usage_output_tokens", out_t, "usage_total_tokens", tot_t,
			      "usage_total_cost", has_cost ? json_real(cost) : json_null())));
	json_decref(scores);
	json_decref(sid);
	json_decref(epoch);
	if (json_is_string(k))
		json_object_del(a->inputs, json_string_value(k));
	json_decref(k);
}

static json_t *table(const char *const *cols, json_t *rows)
{
	json_t *c = json_array();
	for (int i = 0; cols[i]; i++)
		json_array_append_new(c, json_string(cols[i]));
	return json_pack("{s:o,s:O}", "columns", c, "data", rows);
}

static void add(json_t *files, const char *path, json_t *doc, const char *type)
{
	char *s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (s)
		json_array_append_new(files, json_pack("{s:s,s:s,s:s}", "path", path, "body", s, "type", type));
	free(s);
}

/* ---- tables from Inspect's own log, written row by row ----
 * A log holds many samples and each sample many events: rows are dumped
 * as JSON text as they are made (one sample's JSON tree is alive at a
 * time, see rf_evallog.c), so memory follows the tables' text, not the
 * log's trees.  Text cells longer than CELL_MAX bytes are cut (at a UTF-8
 * boundary, with a marker); the raw log is uploaded whole beside them. */
#define CELL_MAX 16384

struct tw {
	FILE *f;
	char *buf;
	size_t len, rows;
};

static void tw_open(struct tw *w, const char *const *cols)
{
	w->f = open_memstream(&w->buf, &w->len);
	if (!w->f)
		return;
	fputs("{\"columns\":[", w->f);
	for (int i = 0; cols[i]; i++)
		fprintf(w->f, "%s\"%s\"", i ? "," : "", cols[i]);
	fputs("],\"data\":[", w->f);
}

static void tw_row(struct tw *w, const char *const *cols, json_t *obj)
{
	json_t *r = row(cols, obj);
	if (w->f) {
		if (w->rows++)
			fputc(',', w->f);
		json_dumpf(r, w->f, JSON_COMPACT);
	}
	json_decref(r);
}

/* The table's JSON text (caller frees), NULL when it has no rows. */
static char *tw_close(struct tw *w)
{
	if (!w->f)
		return NULL;
	fputs("]}", w->f);
	fclose(w->f);
	if (!w->rows) {
		free(w->buf);
		return NULL;
	}
	return w->buf;
}

struct log_ctx {
	struct rf_art *a;
	struct tw messages, events;
	json_t *header;
	json_t *counts; /* "<sample id JSON> <epoch>" -> number of events */
};

/* A string cell: "attachment://<hash>" resolved from the sample's
 * attachments (Inspect moves long text there), cut to CELL_MAX. */
static json_t *cell_str(json_t *sample, json_t *v)
{
	const char *s = json_string_value(v);
	if (!s)
		return json_null();
	size_t n = json_string_length(v);
	if (!strncmp(s, "attachment://", 13)) {
		json_t *att = json_object_get(json_object_get(sample, "attachments"), s + 13);
		if (json_is_string(att)) {
			s = json_string_value(att);
			n = json_string_length(att);
		}
	}
	if (n <= CELL_MAX)
		return json_stringn(s, n) ?: json_null();
	size_t cut = CELL_MAX;
	while (cut && ((unsigned char)s[cut] & 0xC0) == 0x80)
		cut--;
	char *t = malloc(cut + 64);
	if (!t)
		return json_null();
	int m = snprintf(t, cut + 64, "%.*s...[%zu bytes]", (int)cut, s, n);
	json_t *r = json_stringn(t, (size_t)m);
	free(t);
	return r ?: json_null();
}

/* Any cell: strings as above, structures as compact JSON text. */
static json_t *cell(json_t *sample, json_t *v)
{
	if (!v || json_is_null(v))
		return json_null();
	if (json_is_string(v))
		return cell_str(sample, v);
	if (!json_is_object(v) && !json_is_array(v))
		return json_incref(v);
	char *s = json_dumps(v, JSON_COMPACT);
	json_t *t = json_string(s ? s : "");
	free(s);
	json_t *r = cell_str(sample, t);
	json_decref(t);
	return r;
}

static json_t *text_or_json(json_t *v)
{
	return json_is_string(v) || json_is_null(v) || !v ? json_incref(v ? v : json_null())
							 : as_text(json_incref(v));
}

/* The text of a model event's first choice, when the output has no
 * "completion" (older logs). */
static json_t *completion_of(json_t *out)
{
	json_t *c = json_object_get(out, "completion");
	if (c)
		return c;
	json_t *content = json_object_get(
		json_object_get(json_array_get(json_object_get(out, "choices"), 0), "message"), "content");
	return content;
}

/* One row per event of the sample, columns as inspect-mlflow's table:
 * every type has the common cells; model, tool and error events add theirs. */
static void event_rows(struct log_ctx *c, json_t *sample, json_t *task, json_t *eval_id)
{
	json_t *events = json_object_get(sample, "events");
	size_t i;
	json_t *e;
	json_array_foreach(events, i, e) {
		json_t *type = json_object_get(e, "event");
		json_t *o = json_pack("{s:O,s:O,s:O,s:O,s:I,s:O,s:O,s:O,s:O}", "task_name",
				      task ? task : json_null(), "eval_id", eval_id ? eval_id : json_null(),
				      "sample_id", json_object_get(sample, "id") ?: json_null(), "epoch",
				      json_object_get(sample, "epoch") ?: json_null(), "event_index",
				      (json_int_t)i, "event_type", type ?: json_null(), "timestamp",
				      json_object_get(e, "timestamp") ?: json_null(), "completed",
				      json_object_get(e, "completed") ?: json_null(), "working_time",
				      json_object_get(e, "working_time") ?: json_null());
		if (!o)
			continue;
		const char *t = json_string_value(type);
		if (t && !strcmp(t, "model")) {
			json_t *out = json_object_get(e, "output");
			json_t *u = json_object_get(out, "usage");
			static const char *const uk[] = {"input_tokens", "output_tokens", "total_tokens",
							 "input_tokens_cache_read",
							 "input_tokens_cache_write", "reasoning_tokens",
							 "total_cost", NULL};
			char col[64];
			json_object_set(o, "model", json_object_get(e, "model") ?: json_null());
			json_object_set_new(o, "completion", cell(sample, completion_of(out)));
			for (int k = 0; uk[k]; k++) {
				snprintf(col, sizeof col, "usage_%s", uk[k]);
				json_object_set(o, col, json_object_get(u, uk[k]) ?: json_null());
			}
			json_object_set_new(o, "error", cell(sample, json_object_get(e, "error")));
		} else if (t && !strcmp(t, "tool")) {
			json_object_set_new(o, "tool_function", cell(sample, json_object_get(e, "function")));
			json_object_set_new(o, "tool_arguments", cell(sample, json_object_get(e, "arguments")));
			json_object_set_new(o, "tool_result", cell(sample, json_object_get(e, "result")));
			json_object_set_new(o, "tool_error", cell(sample, json_object_get(e, "error")));
		} else if (t && !strcmp(t, "error")) {
			json_object_set_new(o, "error", cell(sample, json_object_get(json_object_get(e, "error"),
										     "message")));
		}
		tw_row(&c->events, EVENT_COLS, o);
	}
	char *id = json_dumps(json_object_get(sample, "id"), JSON_COMPACT | JSON_ENCODE_ANY);
	char key[512];
	snprintf(key, sizeof key, "%s %" JSON_INTEGER_FORMAT, id ? id : "null",
		 json_integer_value(json_object_get(sample, "epoch")));
	free(id);
	json_object_set_new(c->counts, key, json_integer((json_int_t)json_array_size(events)));
}

static void on_log(json_t *header, json_t *sample, void *arg)
{
	struct log_ctx *c = arg;
	/* The hook never saw this: the same redaction rules apply here. */
	rf_redact_json(header ? header : sample);
	if (header) {
		json_decref(c->header);
		c->header = json_incref(header);
		return;
	}
	json_t *msgs = json_object_get(sample, "messages");
	json_t *task = json_object_get(c->a->task, "task_name");
	json_t *eval_id = json_object_get(c->a->task, "eval_id");
	size_t i;
	json_t *m;
	json_array_foreach(msgs, i, m) {
		tw_row(&c->messages, MESSAGE_COLS,
		       json_pack("{s:O,s:O,s:O,s:O,s:I,s:O,s:O,s:o,s:o,s:O,s:O,s:O}", "task_name",
				 task ? task : json_null(), "eval_id", eval_id ? eval_id : json_null(),
				 "sample_id", json_object_get(sample, "id") ?: json_null(), "epoch",
				 json_object_get(sample, "epoch") ?: json_null(), "message_index",
				 (json_int_t)i, "role", json_object_get(m, "role") ?: json_null(), "source",
				 json_object_get(m, "source") ?: json_null(), "content",
				 text_or_json(json_object_get(m, "content")), "tool_calls",
				 text_or_json(json_object_get(m, "tool_calls")), "tool_call_id",
				 json_object_get(m, "tool_call_id") ?: json_null(), "model",
				 json_object_get(m, "model") ?: json_null(), "stop_reason",
				 json_object_get(m, "stop_reason") ?: json_null()));
	}
	event_rows(c, sample, task, eval_id);
}

/* samples.json's events_count from the log (left null for a sample the
 * log does not hold). */
static void fill_event_counts(struct rf_art *a, json_t *counts)
{
	size_t i;
	json_t *r;
	json_array_foreach(a->samples, i, r) {
		char *id = json_dumps(json_array_get(r, 2), JSON_COMPACT | JSON_ENCODE_ANY);
		char key[512];
		snprintf(key, sizeof key, "%s %" JSON_INTEGER_FORMAT, id ? id : "null",
			 json_integer_value(json_array_get(r, 3)));
		free(id);
		json_t *n = json_object_get(counts, key);
		if (n)
			json_array_set(r, SAMPLE_EVENTS_COUNT, n);
	}
}

static void add_text(json_t *files, const char *path, char *body, const char *type)
{
	if (body)
		json_array_append_new(files, json_pack("{s:s,s:s,s:s}", "path", path, "body", body,
						       "type", type));
	free(body);
}

json_t *rf_art_files(struct rf_art *a, const char *eval_id, const char *log_location)
{
	json_t *files = json_array();
	if (a->task) {
		json_t *rows = json_pack("[o]", row(TASK_COLS, json_incref(a->task)));
		add(files, "inspect/tasks.json", table(TASK_COLS, rows), "table");
		json_decref(rows);
	}
	if (json_array_size(a->scores))
		add(files, "inspect/sample_scores.json", table(SCORE_COLS, a->scores), "table");
	if (json_array_size(a->usage))
		add(files, "inspect/model_usage.json", table(USAGE_COLS, a->usage), "table");
	char path[300];
	/* From Inspect's own log: the conversation, the events and the header. */
	struct log_ctx lc = {.a = a, .counts = json_object()};
	tw_open(&lc.messages, MESSAGE_COLS);
	tw_open(&lc.events, EVENT_COLS);
	char err[512] = "";
	bool log_has_secret = false, is_log = false;
	char *raw = NULL; /* the log's bytes, read once: checked, parsed and uploaded */
	size_t raw_len = 0;
	/* The ids become artifact paths: a plain name each, or those
	 * artifacts are a counted loss (never a path into another run). */
	bool id_ok = rf_mlflow_segment_ok(eval_id, 128);
	const char *base = log_location ? strrchr(log_location, '/') : NULL;
	if (!id_ok)
		snprintf(err, sizeof err, "eval_id '%.100s' is not a plain name: its log, header "
			 "and sample results are not uploaded", eval_id);
	else if (log_location && log_location[0] == '/' &&
		 (rf_evallog_load(log_location, &raw, &raw_len) < 0 ||
		  rf_evallog_parse(log_location, raw, raw_len, on_log, &lc, &log_has_secret) < 0))
		snprintf(err, sizeof err, "%s", rf_err_msg());
	else if (log_location && log_location[0] == '/') {
		/* The location comes from a record: only this task's own Inspect
		 * log (its header names this eval_id) is used or uploaded, never
		 * another file it may name (a key, a credentials file). */
		const char *lid = json_string_value(json_object_get(json_object_get(lc.header, "eval"),
								    "eval_id"));
		is_log = lid && !strcmp(lid, eval_id);
		if (!is_log)
			snprintf(err, sizeof err, "%s is not the Inspect log of eval %s: not uploaded",
				 log_location, eval_id);
	}
	char *messages = tw_close(&lc.messages), *events = tw_close(&lc.events);
	if (is_log) {
		fill_event_counts(a, lc.counts);
		add_text(files, "inspect/messages.json", messages, "table");
		add_text(files, "inspect/events.json", events, "table");
		messages = events = NULL;
		if (lc.header) {
			snprintf(path, sizeof path, "eval_logs/%s.json", eval_id);
			add(files, path, json_incref(lc.header), "json");
		}
	} else if (err[0]) {
		json_array_append_new(files, json_pack("{s:s,s:s,s:s}", "path", "", "body", err, "type",
						       "error"));
	}
	free(messages);
	free(events);
	json_decref(lc.counts);
	json_decref(lc.header);
	if (json_array_size(a->samples))
		add(files, "inspect/samples.json", table(SAMPLE_COLS, a->samples), "table");
	if (id_ok) {
		snprintf(path, sizeof path, "sample_results/%s.json", eval_id);
		add(files, path, json_incref(a->results), "json");
	}
	if (is_log && log_has_secret) {
		json_array_append_new(files, json_pack("{s:s,s:s,s:s}", "path", "", "body",
						       "raw Inspect log withheld: it contains the value of "
						       "a secret environment variable", "type", "error"));
	} else if (is_log && !rf_mlflow_segment_ok(base + 1, 200)) {
		json_array_append_new(files, json_pack("{s:s,s:s,s:s}", "path", "", "body",
						       "raw Inspect log withheld: its file name is not a "
						       "plain name", "type", "error"));
	} else if (is_log) {
		/* The bytes checked above, not the path again: a file swapped in
		 * since cannot go out in its place. */
		snprintf(path, sizeof path, "inspect/logs/%s", base + 1);
		json_array_append_new(files, json_pack("{s:s,s:o,s:s}", "path", path, "body",
						       json_stringn_nocheck(raw, raw_len), "type",
						       "bytes"));
	}
	free(raw);
	return files;
}
