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

/* What an HTTP answer means for the request that got it (rf_http's retry
 * policy; docs/DESIGN.md, "MLflow server and proxies").  Only MLflow's own
 * JSON error ({"error_code": "...", "message": "..."}; FastAPI's {"detail"}
 * for the OTLP route) is an answer about the request; a body of any other
 * shape (a proxy's HTML, an empty body) never is. */
enum rf_resp_kind {
	RF_RESP_OK = 0,        /* 2xx */
	RF_RESP_VERDICT,       /* final: the server judged this request (MLflow JSON 4xx/501,
				* any 404, 413, MLflow's text "disabled" 503) */
	RF_RESP_AUTH,          /* 401, 403, 407: credentials refused; retried, reported loudly */
	RF_RESP_TRANSIENT,     /* anything else (5xx, 408, 429, proxy pages, no answer): retried */
};
enum rf_resp_kind rf_resp_classify(long status, const char *body, size_t len);

/* A verdict of a log-batch that may drop its entities: 400 with MLflow's
 * JSON error_code INVALID_PARAMETER_VALUE, BAD_REQUEST or
 * RESOURCE_ALREADY_EXISTS (a batch of one such entity is refused for good),
 * or 413 (a proxy's size limit: splitting helps, a single entity over it is
 * refused).  Anything else keeps the entities. */
bool rf_resp_refuses_entities(long status, const json_t *resp);

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
