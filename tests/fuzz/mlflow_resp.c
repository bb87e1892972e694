/*
 * mlflow_resp.c - fuzz target: MLflow's answers to the sidecar.
 *
 * The tracker is given a small real evaluation's records (one run, one task,
 * two samples, a model call, a tool call, task and run end: built below with
 * msgpack-c), then pumped; the fuzzer plays the server.  Input: answers as
 * [u16 LE status][u16 LE length][body], one per request in the order the
 * sidecar makes them (experiment lookup/creation/restore, runs/create,
 * runs/search, log-batch with its 4xx bisection, artifact PUTs,
 * runs/update).  When the input runs out, what is left is cancelled, as at
 * shutdown.  Each body also goes through the pure parsers of rf_resp.h.
 */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz_http.h"
#include "rf_decode.h"
#include "rf_mlflow.h"
#include "rf_resp.h"
#include "rf_track.h"
#include "ringflow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rf_http *http;
static rf_mlflow *mlflow;

static void pk_str(msgpack_packer *p, const char *s)
{
	msgpack_pack_str_with_body(p, s, strlen(s));
}

/* {"v": 1, k1: v1, ...}: keys and string values alternate in kv; a value
 * starting with '#' is a number, '{' a nested literal built by the caller. */
/* The records are packed once and replayed into a fresh tracker per input. */
static struct prebuilt {
	int type;
	msgpack_sbuffer sb;
} recs[16];
static size_t nrecs;

static void feed(rf_track *t, int type, const char *const *kv, size_t n,
		 void (*extra)(msgpack_packer *p), size_t nextra)
{
	(void)t;
	if (nrecs == sizeof recs / sizeof *recs)
		abort();
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer p;
	msgpack_packer_init(&p, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&p, 1 + n / 2 + nextra);
	pk_str(&p, "v");
	msgpack_pack_int(&p, 1);
	for (size_t i = 0; i + 1 < n; i += 2) {
		pk_str(&p, kv[i]);
		if (kv[i + 1][0] == '#')
			msgpack_pack_double(&p, atof(kv[i + 1] + 1));
		else
			pk_str(&p, kv[i + 1]);
	}
	if (extra)
		extra(&p);
	recs[nrecs].type = type;
	recs[nrecs++].sb = sb;
}

static void replay(rf_track *t)
{
	for (size_t i = 0; i < nrecs; i++) {
		rf_decoded d;
		if (rf_decode(&d, recs[i].sb.data, recs[i].sb.size))
			abort();
		rf_track_record(t, recs[i].type, d.root);
		rf_decoded_free(&d);
	}
}

static void scores(msgpack_packer *p)
{
	pk_str(p, "scores");
	msgpack_pack_map(p, 1);
	pk_str(p, "match");
	msgpack_pack_map(p, 2);
	pk_str(p, "value");
	pk_str(p, "C");
	pk_str(p, "explanation");
	pk_str(p, "ok");
}

#define KV(...) (const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *)

static void eval_records(rf_track *t)
{
	feed(t, RF_EV_RUN_START, KV("run_id", "run-fuzz-0001", "time", "#1700000000"), NULL, 0);
	feed(t, RF_EV_TASK_START, KV("run_id", "run-fuzz-0001", "eval_id", "eval-1", "task", "t",
				     "model", "mockllm/model", "created", "#1700000001"), NULL, 0);
	for (int i = 0; i < 2; i++) {
		char uuid[16];
		snprintf(uuid, sizeof uuid, "s%d", i);
		feed(t, RF_EV_SAMPLE_INIT, KV("eval_id", "eval-1", "sample_uuid", uuid, "input", "q"),
		     NULL, 0);
		feed(t, RF_EV_MODEL_CALL, KV("eval_id", "eval-1", "event_uuid", uuid, "sample_uuid", uuid,
					     "input_tokens", "#10", "completed", "#1700000002"), NULL, 0);
		feed(t, RF_EV_SAMPLE_END, KV("eval_id", "eval-1", "sample_uuid", uuid, "total_time", "#1.5",
					     "completed_at", "#1700000003"), scores, 1);
	}
	feed(t, RF_EV_TOOL_CALL, KV("eval_id", "eval-1", "event_uuid", "tc1", "completed", "#1700000003"),
	     NULL, 0);
	feed(t, RF_EV_TASK_END, KV("eval_id", "eval-1", "status", "success", "completed_at",
				   "#1700000004", "started_at", "#1700000001"), NULL, 0);
	feed(t, RF_EV_RUN_END, KV("run_id", "run-fuzz-0001", "time", "#1700000005"), NULL, 0);
}

static void parsers(long status, const char *body, size_t len)
{
	const char *msg;
	json_t *j = rf_resp_parse(status, body, len, "", &msg);
	if (!msg)
		abort();
	char id[64], uri[512];
	bool deleted;
	(void)rf_resp_experiment(j, id, sizeof id, &deleted);
	(void)rf_resp_experiment_created(j, id, sizeof id);
	(void)rf_resp_classify(status, body, len);
	(void)rf_resp_refuses_entities(status, j);
	(void)rf_resp_run(json_object_get(j, "run"), id, sizeof id, uri, sizeof uri);
	(void)rf_resp_run(json_array_get(json_object_get(j, "runs"), 0), id, sizeof id, uri, sizeof uri);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!http && (rf_http_new(&http, NULL, NULL) || rf_mlflow_new(&mlflow, http, "http://127.0.0.1:9")))
		abort();
	rf_track *t;
	/* Artifacts off: their answers only count (on_uploaded), and building
	 * the tables (fuzzed in `record`) would cost most of each run here. */
	struct rf_track_opts o = {.experiment = "fuzz", .metrics_ms = 1, .max_batch = 4,
				  .log_artifacts = false};
	if (rf_track_new(&t, mlflow, &o))
		abort();
	if (!nrecs)
		eval_records(NULL);
	replay(t);
	size_t off = 0;
	for (int round = 0; round < 256; round++) {
		rf_track_pump(t, true);
		if (!fuzz_http_queued(http) && rf_track_idle(t))
			break;
		while (fuzz_http_queued(http) && off + 4 <= size) {
			long status = (long)(data[off] | data[off + 1] << 8);
			size_t len = (size_t)(data[off + 2] | data[off + 3] << 8);
			off += 4;
			if (len > size - off)
				len = size - off;
			parsers(status, (const char *)data + off, len);
			fuzz_http_answer(http, status, (const char *)data + off, len);
			off += len;
		}
		if (off + 4 > size)
			break;
		fuzz_clock_advance(10000); /* past any backoff */
	}
	while (fuzz_http_queued(http))
		fuzz_http_answer(http, 0, "", 0);
	rf_track_free(t);
	return 0;
}
