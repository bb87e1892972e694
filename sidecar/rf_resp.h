/*
 * rf_resp.h - what ringflowd takes from MLflow's response bodies.
 *
 * A server's answer is untrusted input: any body (HTML from a proxy, JSON of
 * another shape, a field of the wrong type, an id too long) must give a clear
 * "no", never a crash nor a half-used value.  These are pure functions over
 * parsed JSON, used by rf_mlflow.c and rf_runs.c and fuzzed directly
 * (tests/fuzz/mlflow_resp).
 */
#ifndef RF_RESP_H
#define RF_RESP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The body as JSON (NULL unless it is a JSON object) and the message to
 * report: the server's "message", else the body of a non-2xx answer, else
 * curl's error text (`err`), else "". */
json_t *rf_resp_parse(long status, const char *body, size_t len, const char *err,
		      const char **msg);

/* experiments/get-by-name: {"experiment": {"experiment_id": "...",
 * "lifecycle_stage": "active"|"deleted"}}.  False unless the id is a
 * non-empty string that fits in `cap`. */
bool rf_resp_experiment(const json_t *resp, char *id, size_t cap, bool *deleted);
/* experiments/create: {"experiment_id": "..."}. */
bool rf_resp_experiment_created(const json_t *resp, char *id, size_t cap);
/* A run object ({"info": {"run_id", "artifact_uri"}}) of runs/create
 * ("run") or runs/search ("runs"[0]); artifact_uri may be absent (""). */
bool rf_resp_run(const json_t *run, char *id, size_t id_cap, char *uri, size_t uri_cap);

#endif
