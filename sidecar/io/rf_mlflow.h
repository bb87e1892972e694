/*
 * rf_mlflow.h - the MLflow tracking REST calls ringflowd makes, asynchronous.
 *
 * Each call builds its JSON with jansson, goes through rf_http (retries) and
 * reports the parsed result to a callback.  Names and payloads are MLflow
 * 3.17's REST API (/api/2.0/mlflow/..., /api/3.0/mlflow/traces, /v1/traces).
 */
#ifndef RF_MLFLOW_H
#define RF_MLFLOW_H

#include <jansson.h>

#include "rf_http.h"

typedef struct rf_mlflow rf_mlflow;

/* ok: 2xx; status: HTTP status; resp: the parsed JSON body (NULL if none or
 * not JSON; borrowed); msg: the server's message or curl's error. */
typedef void (*rf_mlflow_cb)(int ok, long status, json_t *resp, const char *msg, void *arg);

int rf_mlflow_new(rf_mlflow **out, rf_http *http, const char *tracking_uri);
void rf_mlflow_free(rf_mlflow *m);
/* A foreign server: its requests carry none of the sidecar's credentials
 * or TLS settings (rf_http_request_ex's no_auth; docs/DESIGN.md "Destinations"). */
void rf_mlflow_set_foreign(rf_mlflow *m, bool foreign);

/* POST /api/2.0/mlflow/<path> with `body` (stolen; retry: enum rf_http_retry),
 * or GET with the query. */
int rf_mlflow_post(rf_mlflow *m, const char *path, json_t *body, enum rf_http_retry retry,
		   rf_mlflow_cb cb, void *arg);
int rf_mlflow_get(rf_mlflow *m, const char *path_and_query, rf_mlflow_cb cb, void *arg);
/* POST a body already serialised (stolen). */
int rf_mlflow_post_raw(rf_mlflow *m, const char *path, char *body, size_t len,
		       enum rf_http_retry retry, rf_mlflow_cb cb, void *arg);
/* Any call: `api_path` from the server root ("/v1/traces",
 * "/api/3.0/mlflow/traces"), body stolen, extra headers as rf_http_request_ex. */
int rf_mlflow_call(rf_mlflow *m, const char *method, const char *api_path, char *body, size_t len,
		   const char *content_type, const char *const *headers, enum rf_http_retry retry,
		   rf_mlflow_cb cb, void *arg);
/* PUT an artifact (a sealed rf_blob, taken over) under a run's artifact_uri.
 * Its bytes go as written: whoever wrote a text body redacted it first
 * (rf_redact_json on each row).  -ENOTSUP (no callback) when the artifact
 * store is not served over HTTP by the server; -EINVAL when a segment of
 * either path is not rf_mlflow_segment_ok(). */
struct rf_blob;
int rf_mlflow_put_artifact(rf_mlflow *m, const char *artifact_uri, const char *rel_path,
			   struct rf_blob *body, const char *content_type, rf_mlflow_cb cb,
			   void *arg);

/* An id that becomes one path or URL segment: 1..max bytes, not "." or "..",
 * no '/', '\\', '%', '?', '#' or control characters. */
bool rf_mlflow_segment_ok(const char *s, size_t max);

/* Metric/param/tag keys limited to what MLflow accepts: [A-Za-z0-9_-. :/],
 * no leading or doubled '/', no '.'/'..' segment, <= 250 chars.  Anything
 * else becomes '_' so a key is never rejected (a model name never makes a
 * metric vanish). */
void rf_mlflow_sanitize_key(char *key);

#endif
