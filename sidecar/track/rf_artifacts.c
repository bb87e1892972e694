/*
 * rf_artifacts.c - artifact tables from records (see rf_artifacts.h).
 * Column names follow inspect-mlflow's tables; its defects are fixed: cost is
 * a float, sample_scores rows carry sample_id and explanation.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_artifacts.h"
#include "rf_blob.h"
#include "rf_err.h"
#include "rf_decode.h"
#include "rf_evallog.h"
#include "rf_hash.h"
#include "rf_metrics.h"
#include "rf_mlflow.h"
#include "rf_redact.h"
#include "ringflow.h"

/* A table (or JSON array) written row by row as text into an rf_blob, in
 * the spool directory: the sidecar's memory does not grow with the rows. */
struct tw {
	struct rf_blob *b;
	FILE *f;
	size_t rows;
	bool failed; /* no blob could be made: the rows are a counted loss */
};

/* Where a sample's events_count cell sits in samples.json (blanks until
 * the log's count is written over them at the task's end). */
struct ev_slot {
	uint64_t key; /* rf_hash_str("<sample id JSON> <epoch>") */
	uint64_t off;
	int64_t count; /* from the log; -1: not in it */
};

struct rf_art {
	char *dir;       /* the spool directory: the tables' files */
	json_t *task;    /* the task row */
	json_t *inputs;  /* sample uuid -> {input, target}, while the sample is open */
	struct tw samples, scores, usage, results;
	struct ev_slot *ev;
	size_t nev, evcap;
	bool stopped;    /* rf_art_files() stopped reading the log */
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

struct rf_art *rf_art_new(const char *dir)
{
	struct rf_art *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->dir = dir ? strdup(dir) : NULL;
	a->inputs = json_object();
	if ((dir && !a->dir) || !a->inputs) {
		rf_art_free(a);
		return NULL;
	}
	return a;
}

static void tw_free(struct tw *w)
{
	if (w->f)
		rf_blob_seal(w->b); /* closes the writer */
	rf_blob_free(w->b);
	memset(w, 0, sizeof *w);
}

void rf_art_free(struct rf_art *a)
{
	if (!a)
		return;
	json_decref(a->task);
	json_decref(a->inputs);
	tw_free(&a->samples);
	tw_free(&a->scores);
	tw_free(&a->usage);
	tw_free(&a->results);
	free(a->ev);
	free(a->dir);
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

/* ---- tables as text, row by row ---- */

/* A value's JSON text into w, with every known secret value replaced:
 * what rf_mlflow does to a body in memory, done here because these bodies
 * go from their file as written. */
static void put_json(struct tw *w, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t n = s ? strlen(s) : 0;
	if (s)
		rf_redact_text(&s, &n);
	if (!s) {
		w->failed = true; /* out of memory: the table is reported lost */
		return;
	}
	fwrite(s, 1, n, w->f);
	free(s);
}

/* Ready for the next row (the file made, with its header, at the first):
 * false when the table is lost (no file nor memory for it). */
static bool tw_next(struct tw *w, const char *dir, const char *const *cols)
{
	if (!w->f && !w->failed) {
		w->b = rf_blob_new(dir);
		w->f = w->b ? rf_blob_writer(w->b) : NULL;
		w->failed = !w->f;
		if (w->f && cols) {
			fputs("{\"columns\":[", w->f);
			for (int i = 0; cols[i]; i++)
				fprintf(w->f, "%s\"%s\"", i ? "," : "", cols[i]);
			fputs("],\"data\":[", w->f);
		} else if (w->f) {
			fputc('[', w->f); /* a JSON array of objects */
		}
	}
	if (w->failed)
		return false;
	if (w->rows++)
		fputc(',', w->f);
	return true;
}

/* The width reserved for a cell filled in later: "null" and blanks, room
 * for any 64-bit count. */
#define CELL_BLANK "null                "
#define CELL_BLANK_LEN 20

static json_t *row(const char *const *cols, json_t *obj);

/* One row from obj's fields in cols' order (obj is taken); the cell of
 * column `later` (-1: none) is left blank and its offset put in *at. */
static void tw_row(struct tw *w, const char *dir, const char *const *cols, json_t *obj,
		   int later, uint64_t *at)
{
	json_t *r = row(cols, obj);
	if (!tw_next(w, dir, cols)) {
		json_decref(r);
		return;
	}
	if (later < 0) {
		put_json(w, r);
	} else {
		fputc('[', w->f);
		for (size_t i = 0; i < json_array_size(r); i++) {
			if (i)
				fputc(',', w->f);
			if ((int)i == later) {
				long pos = ftell(w->f);
				*at = pos > 0 ? (uint64_t)pos : 0;
				fputs(CELL_BLANK, w->f);
			} else {
				put_json(w, json_array_get(r, i));
			}
		}
		fputc(']', w->f);
	}
	json_decref(r);
}

/* The finished body, `end` written last and sealed; or NULL: no row was
 * ever written, or it is lost, then with the reason in err. */
static struct rf_blob *tw_seal(struct tw *w, const char *end, char *err, size_t errlen)
{
	if (w->failed) {
		snprintf(err, errlen, "out of memory while writing it");
		tw_free(w);
		return NULL;
	}
	if (!w->f)
		return NULL;
	fputs(end, w->f);
	w->f = NULL;
	struct rf_blob *b = w->b;
	w->b = NULL;
	if (rf_blob_seal(b) < 0) {
		snprintf(err, errlen, "%s", rf_err_msg());
		rf_blob_free(b);
		return NULL;
	}
	return b;
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

/* The key of a sample's events_count: its id (as JSON) and epoch. */
static uint64_t sample_key(json_t *id, json_t *epoch)
{
	char *s = json_dumps(id ? id : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
	char key[512];
	snprintf(key, sizeof key, "%s %" JSON_INTEGER_FORMAT, s ? s : "null",
		 json_integer_value(epoch));
	free(s);
	return rf_hash_str(key);
}

static void ev_slot_add(struct rf_art *a, json_t *id, json_t *epoch, uint64_t off)
{
	if (a->nev == a->evcap) {
		size_t cap = a->evcap ? a->evcap * 2 : 256;
		struct ev_slot *n = realloc(a->ev, cap * sizeof *n);
		if (!n)
			return; /* that sample's events_count stays null */
		a->ev = n;
		a->evcap = cap;
	}
	a->ev[a->nev++] = (struct ev_slot){sample_key(id, epoch), off, -1};
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
			tw_row(&a->scores, a->dir, SCORE_COLS, json_pack("{s:O,s:O,s:O,s:O,s:s,s:s,s:o,s:o}",
									"task_name", task, "eval_id", eval_id,
									"sample_id", sid, "epoch", epoch,
									"scorer", scorer, "raw_value",
									rawtext ? rawtext : "", "numeric_value",
									num, "explanation",
									field(s, "explanation")), -1, NULL);
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
	if (tw_next(&a->results, a->dir, NULL))
		put_json(&a->results, result);
	json_decref(result);
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
			tw_row(&a->usage, a->dir, USAGE_COLS,
				    json_pack("{s:O,s:O,s:O,s:O,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "task_name",
					      task, "eval_id", eval_id, "sample_id", sid, "epoch", epoch,
					      "model", rf_obj_to_json(&mu->via.map.ptr[i].key),
					      "input_tokens", field(u, "input_tokens"), "output_tokens",
					      field(u, "output_tokens"), "total_tokens", field(u, "total_tokens"),
					      "input_tokens_cache_read", field(u, "input_tokens_cache_read"),
					      "input_tokens_cache_write", field(u, "input_tokens_cache_write"),
					      "reasoning_tokens", field(u, "reasoning_tokens"), "total_cost",
					      field(u, "total_cost")), -1, NULL);
		}
	uint64_t at = UINT64_MAX;
	tw_row(&a->samples, a->dir, SAMPLE_COLS,
		    json_pack("{s:O,s:O,s:O,s:O,s:O,s:O,s:o,s:o,s:o,s:o,s:o,s:o,s:f,s:f,s:f,s:o}",
			      "task_name", task, "eval_id", eval_id, "sample_id", sid, "epoch", epoch,
			      "input", in ? json_object_get(in, "input") : json_null(), "target",
			      in ? json_object_get(in, "target") : json_null(), "output",
			      field(m, "output"), "scores", as_text(json_deep_copy(scores)),
			      "events_count", json_null() /* from the log */, "total_time",
			      field(m, "total_time"), "working_time", field(m, "working_time"),
			      "error", field(m, "error"), "usage_input_tokens", in_t,
			      "usage_output_tokens", out_t, "usage_total_tokens", tot_t,
			      "usage_total_cost", has_cost ? json_real(cost) : json_null()),
	       SAMPLE_EVENTS_COUNT, &at);
	if (at != UINT64_MAX)
		ev_slot_add(a, sid, epoch, at);
	json_decref(scores);
	json_decref(sid);
	json_decref(epoch);
	if (json_is_string(k))
		json_object_del(a->inputs, json_string_value(k));
	json_decref(k);
}

/* ---- tables from Inspect's own log, written row by row ----
 * A log holds many samples and each sample many events: rows are dumped
 * as JSON text as they are made (one sample's JSON tree is alive at a
 * time, see rf_evallog.c), so memory follows the tables' text, not the
 * log's trees.  Text cells longer than CELL_MAX bytes are cut (at a UTF-8
 * boundary, with a marker); the raw log is uploaded whole beside them. */
#define CELL_MAX 16384

struct log_ctx {
	struct rf_art *a;
	const atomic_bool *stop;
	struct tw messages, events;
	json_t *header;
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

static int ev_cmp(const void *x, const void *y)
{
	uint64_t a = ((const struct ev_slot *)x)->key, b = ((const struct ev_slot *)y)->key;
	return a < b ? -1 : a > b;
}

/* The log's count of events for every samples.json row with this key
 * (a->ev sorted by key). */
static void ev_count_set(struct rf_art *a, uint64_t key, int64_t count)
{
	struct ev_slot k = {.key = key};
	struct ev_slot *e = a->nev ? bsearch(&k, a->ev, a->nev, sizeof k, ev_cmp) : NULL;
	if (!e)
		return;
	while (e > a->ev && e[-1].key == key)
		e--;
	for (; e < a->ev + a->nev && e->key == key; e++)
		e->count = count;
}

/* Written over the blanks reserved in samples.json: only for the task's
 * own log (left null for a sample the log does not hold). */
static void ev_counts_write(struct rf_art *a, struct rf_blob *samples)
{
	for (size_t i = 0; samples && i < a->nev; i++) {
		if (a->ev[i].count < 0)
			continue;
		char cell[CELL_BLANK_LEN + 1];
		snprintf(cell, sizeof cell, "%-*lld", CELL_BLANK_LEN, (long long)a->ev[i].count);
		rf_blob_patch(samples, a->ev[i].off, cell, CELL_BLANK_LEN);
	}
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
		tw_row(&c->events, c->a->dir, EVENT_COLS, o, -1, NULL);
	}
	ev_count_set(c->a, sample_key(json_object_get(sample, "id"), json_object_get(sample, "epoch")),
		     (int64_t)json_array_size(events));
}

static int on_log(json_t *header, json_t *sample, void *arg)
{
	struct log_ctx *c = arg;
	/* Relaxed: a request to stop, no data comes with it. */
	if (c->stop && atomic_load_explicit(c->stop, memory_order_relaxed)) {
		c->a->stopped = true;
		return 1;
	}
	/* The hook never saw this: the same redaction rules apply here. */
	rf_redact_json(header ? header : sample);
	if (header) {
		json_decref(c->header);
		c->header = json_incref(header);
		return 0;
	}
	json_t *msgs = json_object_get(sample, "messages");
	json_t *task = json_object_get(c->a->task, "task_name");
	json_t *eval_id = json_object_get(c->a->task, "eval_id");
	size_t i;
	json_t *m;
	json_array_foreach(msgs, i, m) {
		tw_row(&c->messages, c->a->dir, MESSAGE_COLS,
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
				 json_object_get(m, "stop_reason") ?: json_null()),
		       -1, NULL);
	}
	event_rows(c, sample, task, eval_id);
	return 0;
}

/* ---- the files, in upload order ---- */

static struct rf_art_file *file_new(struct rf_art_file ***tail, const char *path,
				    const char *type)
{
	struct rf_art_file *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	snprintf(f->path, sizeof f->path, "%s", path);
	f->type = type;
	**tail = f;
	*tail = &f->next;
	return f;
}

/* A loss, said: counted and reported by the run's owner. */
static void lost(struct rf_art_file ***tail, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void lost(struct rf_art_file ***tail, const char *fmt, ...)
{
	struct rf_art_file *f = file_new(tail, "", "error");
	if (!f)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->err, sizeof f->err, fmt, ap);
	va_end(ap);
}

/* A finished body; NULL: nothing to upload, or lost (err says why). */
static void put_body(struct rf_art_file ***tail, const char *path, const char *type,
		     struct rf_blob *b, const char *err)
{
	if (!b) {
		if (err && err[0])
			lost(tail, "%s: %s", path, err);
		return;
	}
	struct rf_art_file *f = file_new(tail, path, type);
	if (f)
		f->body = b;
	else
		rf_blob_free(b);
}

/* A table or JSON array written during the task (`end` closes it). */
static void put_tw(struct rf_art_file ***tail, const char *path, const char *type,
		   struct tw *w, const char *end)
{
	char err[512] = "";
	put_body(tail, path, type, tw_seal(w, end, err, sizeof err), err);
}

/* A small JSON document (the task row's table, the log header), in memory. */
static void put_doc(struct rf_art_file ***tail, const char *path, const char *type, json_t *doc)
{
	struct tw w = {.b = rf_blob_new(NULL)};
	w.f = w.b ? rf_blob_writer(w.b) : NULL;
	w.failed = !w.f;
	if (w.f)
		put_json(&w, doc);
	json_decref(doc);
	put_tw(tail, path, type, &w, "");
}

bool rf_art_stopped(const struct rf_art *a)
{
	return a->stopped;
}

void rf_art_files_free(struct rf_art_file *f)
{
	while (f) {
		struct rf_art_file *next = f->next;
		rf_blob_free(f->body);
		free(f);
		f = next;
	}
}

/* Inspect's own log: copied once into the spool directory, then checked,
 * parsed and uploaded from that copy.  *err says why not (then false). */
static bool read_log(struct rf_art *a, const char *location, struct log_ctx *lc,
		     struct rf_blob **raw, bool *has_secret, char *err, size_t errlen)
{
	bool raw_secret = false;
	if (!(*raw = rf_blob_new(a->dir))) {
		snprintf(err, errlen, "%s: out of memory", location);
		return false;
	}
	if (rf_evallog_copy(location, *raw, &raw_secret) < 0 ||
	    rf_evallog_parse(location, *raw, on_log, lc, has_secret) < 0) {
		snprintf(err, errlen, "%s", rf_err_msg());
		return false;
	}
	*has_secret |= raw_secret;
	return true;
}

struct rf_art_file *rf_art_files(struct rf_art *a, const char *eval_id, const char *log_location,
				 const atomic_bool *stop)
{
	struct rf_art_file *files = NULL, **tail = &files;
	char path[300], err[512] = "";
	if (a->task) {
		json_t *c = json_array();
		for (int i = 0; TASK_COLS[i]; i++)
			json_array_append_new(c, json_string(TASK_COLS[i]));
		put_doc(&tail, "inspect/tasks.json", "table",
			json_pack("{s:o,s:[o]}", "columns", c, "data",
				  row(TASK_COLS, json_incref(a->task))));
	}
	put_tw(&tail, "inspect/sample_scores.json", "table", &a->scores, "]}");
	put_tw(&tail, "inspect/model_usage.json", "table", &a->usage, "]}");
	char samples_err[512] = "";
	struct rf_blob *samples = tw_seal(&a->samples, "]}", samples_err, sizeof samples_err);
	/* From Inspect's own log: the conversation, the events and the header. */
	struct log_ctx lc = {.a = a, .stop = stop};
	bool log_has_secret = false, is_log = false;
	struct rf_blob *raw = NULL;
	/* The ids become artifact paths: a plain name each, or those
	 * artifacts are a counted loss (never a path into another run). */
	bool id_ok = rf_mlflow_segment_ok(eval_id, 128);
	const char *base = log_location ? strrchr(log_location, '/') : NULL;
	if (a->nev)
		qsort(a->ev, a->nev, sizeof *a->ev, ev_cmp);
	if (!id_ok) {
		snprintf(err, sizeof err, "eval_id '%.100s' is not a plain name: its log, header "
			 "and sample results are not uploaded", eval_id);
	} else if (log_location && log_location[0] == '/' &&
		   read_log(a, log_location, &lc, &raw, &log_has_secret, err, sizeof err)) {
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
	if (is_log) {
		ev_counts_write(a, samples);
		put_tw(&tail, "inspect/messages.json", "table", &lc.messages, "]}");
		put_tw(&tail, "inspect/events.json", "table", &lc.events, "]}");
		if (lc.header) {
			snprintf(path, sizeof path, "eval_logs/%s.json", eval_id);
			put_doc(&tail, path, "json", json_incref(lc.header));
		}
	} else if (err[0]) {
		lost(&tail, "%s", err);
	}
	tw_free(&lc.messages);
	tw_free(&lc.events);
	json_decref(lc.header);
	put_body(&tail, "inspect/samples.json", "table", samples, samples_err);
	if (id_ok) {
		snprintf(path, sizeof path, "sample_results/%s.json", eval_id);
		if (!a->results.f && !a->results.failed && tw_next(&a->results, a->dir, NULL))
			a->results.rows = 0; /* no sample: an empty array */
		put_tw(&tail, path, "json", &a->results, "]");
	}
	if (is_log && log_has_secret) {
		lost(&tail, "raw Inspect log withheld: it contains the value of a secret environment "
		     "variable");
	} else if (is_log && !rf_mlflow_segment_ok(base + 1, 200)) {
		lost(&tail, "raw Inspect log withheld: its file name is not a plain name");
	} else if (is_log) {
		/* The copy checked above, not the path again: a file swapped in
		 * since cannot go out in its place. */
		snprintf(path, sizeof path, "inspect/logs/%s", base + 1);
		put_body(&tail, path, "bytes", raw, NULL);
		raw = NULL;
	}
	rf_blob_free(raw);
	return files;
}
