/*
 * fuzz_track.c - see fuzz_track.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_http.h"
#include "fuzz_track.h"
#include "rf_decode.h"
#include "rf_mlflow.h"
#include "rf_track.h"
#include "rf_traces.h"

static rf_http *http;
static rf_mlflow *mlflow;
static rf_track *track;
static rf_traces *traces;
static unsigned run_seq;

void fuzz_track_begin(bool run_mode)
{
	if (!http) {
		if (rf_http_new(&http, NULL, NULL) || rf_mlflow_new(&mlflow, http, "http://127.0.0.1:9/"))
			abort();
	}
	struct rf_track_opts o = {.experiment = "fuzz", .metrics_ms = 1, .max_batch = 64,
				  .log_artifacts = true};
	if (rf_track_new(&track, mlflow, &o))
		abort();
	/* The OTLP copy too: its bodies and header parsing are checked alike. */
	struct rf_traces_opts to = {.inspect_all = true, .run_mode_default = run_mode,
				    .flush_ms = 1, .timeout_ms = 30000,
				    .otlp_endpoint = "http://127.0.0.1:9/v1/traces",
				    .otlp_headers = "x-a=b%20c,x-d=1"};
	if (rf_traces_new(&traces, mlflow, http, track, &to))
		abort();
}

int fuzz_track_feed(int type, const void *data, uint32_t len)
{
	rf_decoded dec;
	rf_err_clear();
	int rc = rf_decode(&dec, data, len);
	if (rc == 0) {
		/* ringflow-dump's rendering */
		json_t *j = rf_obj_to_json(dec.root);
		char *s = json_dumps(j, JSON_COMPACT);
		free(s);
		json_decref(j);
		/* the accessors on the fields the mapping reads */
		static const char *const keys[] = {"run_id", "eval_id", "time", "scores", "value",
						   "total_time", "event_uuid", "model_usage", "text"};
		for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
			const msgpack_object *o = rf_obj_get(dec.root, keys[i]);
			const char *str;
			size_t n;
			int64_t iv;
			double dv;
			bool bv, tr;
			(void)rf_obj_str(o, &str, &n);
			(void)rf_obj_int(o, &iv);
			(void)rf_obj_num(o, &dv);
			(void)rf_obj_bool(o, &bv);
			(void)rf_obj_text(o, &str, &n, &tr);
		}
		rf_track_record(track, type, dec.root);
		rf_traces_record(traces, type, dec.root); /* as ringflowd's on_rec */
	} else if (!rf_err_code()) {
		abort(); /* a rejection always says why */
	}
	rf_decoded_free(&dec);
	return rc;
}

/* A well-behaved MLflow server's answers, by request. */
static void answer(void)
{
	struct fuzz_req q;
	char body[512];
	if (!fuzz_http_peek(http, &q))
		return;
	if (strstr(q.url, "experiments/get-by-name")) {
		snprintf(body, sizeof body,
			 "{\"experiment\":{\"experiment_id\":\"1\",\"name\":\"fuzz\","
			 "\"lifecycle_stage\":\"active\"}}");
	} else if (strstr(q.url, "runs/create")) {
		unsigned id = ++run_seq;
		snprintf(body, sizeof body,
			 "{\"run\":{\"info\":{\"run_id\":\"r%u\",\"experiment_id\":\"1\","
			 "\"status\":\"RUNNING\",\"artifact_uri\":\"mlflow-artifacts:/1/r%u/artifacts\"},"
			 "\"data\":{}}}", id, id);
	} else {
		snprintf(body, sizeof body, "{}");
	}
	fuzz_http_answer(http, 200, body, strlen(body));
}

void fuzz_track_end(void)
{
	for (int i = 0; i < 64; i++) {
		rf_track_pump(track, true);
		rf_traces_pump(traces, true);
		if (!fuzz_http_queued(http) && rf_track_idle(track) && rf_traces_empty(traces))
			break;
		while (fuzz_http_queued(http))
			answer();
		fuzz_clock_advance(10000); /* past any backoff */
	}
	while (fuzz_http_queued(http)) /* what is left: no answer, as at shutdown */
		fuzz_http_answer(http, 0, "", 0);
	rf_traces_free(traces); /* before the tracker it asks for run ids */
	traces = NULL;
	rf_track_free(track);
	track = NULL;
}
