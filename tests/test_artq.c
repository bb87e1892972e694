/*
 * test_artq.c - a task's artifacts built on rf_artq's worker thread, off
 * the daemon's loop: the files are the ones rf_art_files() makes (the
 * log's events counted into samples.json), jobs of several tasks come
 * back whole whatever order they are taken in, a job is not taken before
 * it is built, and a queue freed with jobs queued and building joins its
 * worker and frees them all.  Run under TSan too (the loop and the worker
 * share only the queue).
 */
#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "rf_artifacts.h"
#include "rf_artq.h"
#include "rf_blob.h"
#include "rf_test.h"

/* JSON text -> msgpack object (records reach rf_art as msgpack). */
static void pack(msgpack_packer *pk, json_t *v)
{
	if (json_is_object(v)) {
		msgpack_pack_map(pk, json_object_size(v));
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x) {
			msgpack_pack_str_with_body(pk, k, strlen(k));
			pack(pk, x);
		}
	} else if (json_is_array(v)) {
		msgpack_pack_array(pk, json_array_size(v));
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
			pack(pk, x);
	} else if (json_is_string(v)) {
		msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v));
	} else if (json_is_integer(v)) {
		msgpack_pack_int64(pk, json_integer_value(v));
	} else if (json_is_real(v)) {
		msgpack_pack_double(pk, json_real_value(v));
	} else if (json_is_boolean(v)) {
		json_is_true(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	} else {
		msgpack_pack_nil(pk);
	}
}

static void feed(struct rf_art *a, void (*fn)(struct rf_art *, const msgpack_object *),
		 json_t *rec)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	pack(&pk, rec);
	json_decref(rec);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	CHECK(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
	fn(a, &u.data);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}

/* A task of n samples, each with `events` events in its Inspect log
 * (a .json log at dir/<eval_id>.json). */
static struct rf_art *task(const char *dir, const char *eval_id, int n, int events,
			   char *log, size_t loglen)
{
	struct rf_art *a = rf_art_new(dir);
	CHECK(a);
	feed(a, rf_art_task_start, json_pack("{s:s,s:s,s:s}", "task", "t", "eval_id", eval_id,
					     "model", "mockllm/model"));
	json_t *samples = json_array();
	for (int i = 0; i < n; i++) {
		char uuid[64];
		snprintf(uuid, sizeof uuid, "%s-%d", eval_id, i);
		feed(a, rf_art_sample_init, json_pack("{s:s,s:s,s:s,s:s}", "eval_id", eval_id,
						      "sample_uuid", uuid, "input", "q", "target", "a"));
		feed(a, rf_art_sample_end,
		     json_pack("{s:s,s:s,s:i,s:i,s:{s:{s:f}},s:f}", "eval_id", eval_id,
			       "sample_uuid", uuid, "sample_id", i, "epoch", 1, "scores", "match",
			       "value", 1.0, "total_time", 0.5));
		json_t *ev = json_array();
		for (int e = 0; e < events; e++)
			json_array_append_new(ev, json_pack("{s:s,s:s}", "event", "info",
							    "timestamp", "2026-12-06T00:00:00"));
		json_array_append_new(samples,
				      json_pack("{s:i,s:i,s:[{s:s,s:s}],s:o}", "id", i, "epoch", 1,
						"messages", "role", "user", "content", "q", "events",
						ev));
	}
	snprintf(log, loglen, "%s/%s.json", dir, eval_id);
	json_t *doc = json_pack("{s:i,s:s,s:{s:s,s:s},s:o}", "version", 2, "status", "success",
				"eval", "eval_id", eval_id, "task", "t", "samples", samples);
	CHECK(json_dump_file(doc, log, JSON_COMPACT) == 0);
	json_decref(doc);
	return a;
}

static json_t *blob_json(const struct rf_blob *b)
{
	uint64_t n = rf_blob_len(b);
	char *s = malloc(n + 1);
	CHECK(s);
	CHECK(rf_blob_read(b, 0, s, n) == (ssize_t)n);
	s[n] = 0;
	json_t *v = json_loads(s, 0, NULL);
	free(s);
	CHECK(v);
	return v;
}

/* The files of a task of n samples with `events` events each. */
static void check_files(struct rf_art_file *files, const char *eval_id, int n, int events)
{
	/* (no model_usage.json: these samples report no usage) */
	char want[][64] = {"inspect/tasks.json", "inspect/sample_scores.json",
			   "inspect/messages.json", "inspect/events.json", "",
			   "inspect/samples.json", "", ""};
	snprintf(want[4], sizeof want[4], "eval_logs/%s.json", eval_id);
	snprintf(want[6], sizeof want[6], "sample_results/%s.json", eval_id);
	snprintf(want[7], sizeof want[7], "inspect/logs/%s.json", eval_id);
	size_t i = 0;
	for (struct rf_art_file *f = files; f; f = f->next, i++) {
		if (!strcmp(f->type, "error"))
			fprintf(stderr, "error file: %s\n", f->err);
		CHECK(i < sizeof want / sizeof *want);
		if (strcmp(f->path, want[i]))
			fprintf(stderr, "file %zu: %s, want %s\n", i, f->path, want[i]);
		CHECK(!strcmp(f->path, want[i]));
		CHECK(f->body);
		if (!strcmp(f->path, "inspect/samples.json")) {
			json_t *t = blob_json(f->body);
			json_t *data = json_object_get(t, "data");
			CHECK_EQ(json_array_size(data), n);
			size_t col = 0, k;
			json_t *c;
			json_array_foreach(json_object_get(t, "columns"), k, c)
				if (!strcmp(json_string_value(c), "events_count"))
					col = k;
			CHECK(col);
			json_t *row;
			json_array_foreach(data, k, row)
				CHECK_EQ(json_integer_value(json_array_get(row, col)), events);
			json_decref(t);
		}
		if (!strcmp(f->path, "inspect/events.json")) {
			json_t *t = blob_json(f->body);
			CHECK_EQ(json_array_size(json_object_get(t, "data")), (size_t)(n * events));
			json_decref(t);
		}
	}
	CHECK_EQ(i, sizeof want / sizeof *want);
}

static struct rf_art_file *wait_take(struct rf_artq *q, struct rf_artjob *j)
{
	struct rf_art_file *files = NULL;
	for (int i = 0; i < 60000 && !rf_artq_take(q, j, &files); i++)
		usleep(1000);
	CHECK(files);
	return files;
}

int main(void)
{
	char dir[256], log[512];
	rf_test_spool_dir(dir, sizeof dir, "artq");
	CHECK(mkdir(dir, 0700) == 0);

	/* One job: the files rf_art_files() makes, built on the worker. */
	struct rf_artq *q = rf_artq_new();
	CHECK(q);
	struct rf_art *a = task(dir, "E0", 50, 7, log, sizeof log);
	struct rf_artjob *j = rf_artq_push(q, a, "E0", log);
	CHECK(j);
	struct rf_art_file *files = wait_take(q, j);
	check_files(files, "E0", 50, 7);
	rf_art_files_free(files);
	CHECK_EQ(rf_artq_jobs(q), 0);

	/* Several tasks at once, taken newest first: each job's own files,
	 * and none taken before it is built (the big one is still building
	 * when the small ones are asked for). */
	struct rf_artjob *js[4];
	int sizes[4] = {3000, 10, 20, 30};
	for (int i = 0; i < 4; i++) {
		char id[16];
		snprintf(id, sizeof id, "E%d", i + 1);
		js[i] = rf_artq_push(q, task(dir, id, sizes[i], 3, log, sizeof log), id, log);
		CHECK(js[i]);
	}
	CHECK_EQ(rf_artq_jobs(q), 4);
	struct rf_art_file *early = NULL;
	CHECK_EQ(rf_artq_take(q, js[3], &early), 0); /* queued behind the 3,000-sample task */
	CHECK(!early);
	for (int i = 3; i >= 0; i--) {
		char id[16];
		snprintf(id, sizeof id, "E%d", i + 1);
		files = wait_take(q, js[i]);
		check_files(files, id, sizes[i], 3);
		rf_art_files_free(files);
	}
	CHECK_EQ(rf_artq_jobs(q), 0);

	/* Freed with one job building and others queued: the job building
	 * stops reading its log (shutdown does not wait for a large log to be
	 * read: 40,000 samples take most of a second even in a release build;
	 * the free comes 50 ms after the push), the worker is joined and every
	 * job freed (ASan: nothing leaks).  All three are counted as not
	 * uploaded, and the big one as cut short: a worker that read the log
	 * to its end would leave that count at 0. */
	for (int i = 0; i < 3; i++) {
		char id[16];
		snprintf(id, sizeof id, "F%d", i);
		CHECK(rf_artq_push(q, task(dir, id, i ? 10 : 40000, 3, log, sizeof log), id, log));
	}
	usleep(50000);
	size_t cut = 0;
	CHECK_EQ(rf_artq_free(q, &cut), (size_t)3);
	CHECK_EQ(cut, (size_t)1);

	/* No queue: nothing is taken, the caller builds the files itself. */
	a = task(dir, "G0", 5, 2, log, sizeof log);
	CHECK(!rf_artq_push(NULL, a, "G0", log));
	files = rf_art_files(a, "G0", log, NULL);
	check_files(files, "G0", 5, 2);
	rf_art_files_free(files);
	rf_art_free(a);

	rf_test_rm_rf(dir);
	printf("artq: ok\n");
	return RF_T_PASS;
}
