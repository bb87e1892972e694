/*
 * rf_resp.c - see rf_resp.h.
 */
#include <string.h>

#include "rf_resp.h"

json_t *rf_resp_parse(long status, const char *body, size_t len, const char *err,
		      const char **msg)
{
	json_t *j = NULL;
	if (body && len && body[0] == '{')
		j = json_loadb(body, len, 0, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	*msg = err && *err ? err : "";
	if (j && json_is_string(json_object_get(j, "message")))
		*msg = json_string_value(json_object_get(j, "message"));
	else if (status && !(status >= 200 && status < 300) && body && len)
		*msg = body; /* NUL-terminated by rf_http */
	return j;
}

/* MLflow's error body: a JSON object with a non-empty string error_code (or
 * FastAPI's "detail"), parsed, not guessed from a prefix. */
static bool mlflow_error(const char *body, size_t len)
{
	if (!body || !len || body[0] != '{')
		return false;
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *c = json_string_value(json_object_get(j, "error_code"));
	bool yes = (c && *c) || (json_is_object(j) && json_object_get(j, "detail"));
	json_decref(j);
	return yes;
}

enum rf_resp_kind rf_resp_classify(long status, const char *body, size_t len)
{
	if (status >= 200 && status < 300)
		return RF_RESP_OK;
	if (status == 401 || status == 403 || status == 407)
		return RF_RESP_AUTH;
	if (status == 404 || status == 413)
		return RF_RESP_VERDICT; /* lookups answer 404; 413 is split by the caller */
	if (status >= 400 && status < 500 && status != 408 && status != 425 && status != 429 &&
	    mlflow_error(body, len))
		return RF_RESP_VERDICT;
	if (status == 501 && mlflow_error(body, len))
		return RF_RESP_VERDICT;
	/* MLflow's own 503 for a route its configuration disables
	 * (--no-serve-artifacts / --artifacts-only) is text and permanent. */
	static const char off[] = "disabled due to the mlflow server running";
	if (status == 503 && body && len > 10 && !strncmp(body, "Endpoint: ", 10) &&
	    memmem(body, len, off, sizeof off - 1))
		return RF_RESP_VERDICT;
	return RF_RESP_TRANSIENT;
}

bool rf_resp_refuses_entities(long status, const json_t *resp)
{
	if (status == 413)
		return true;
	if (status != 400)
		return false;
	const char *c = json_string_value(json_object_get(resp, "error_code"));
	return c && (!strcmp(c, "INVALID_PARAMETER_VALUE") || !strcmp(c, "BAD_REQUEST") ||
		     !strcmp(c, "RESOURCE_ALREADY_EXISTS"));
}

/* A non-empty string field that fits (ids are copied into fixed buffers:
 * one cut short would name another run). */
static bool copy_str(const json_t *o, const char *key, char *out, size_t cap)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (!s || !*s || strlen(s) >= cap)
		return false;
	memcpy(out, s, strlen(s) + 1);
	return true;
}

bool rf_resp_experiment(const json_t *resp, char *id, size_t cap, bool *deleted)
{
	const json_t *e = json_object_get(resp, "experiment");
	if (!json_is_object(e) || !copy_str(e, "experiment_id", id, cap))
		return false;
	const char *stage = json_string_value(json_object_get(e, "lifecycle_stage"));
	*deleted = stage && !strcmp(stage, "deleted");
	return true;
}

bool rf_resp_experiment_created(const json_t *resp, char *id, size_t cap)
{
	return copy_str(resp, "experiment_id", id, cap);
}

bool rf_resp_run(const json_t *run, char *id, size_t id_cap, char *uri, size_t uri_cap)
{
	const json_t *info = json_object_get(run, "info");
	char tmp[512];
	if (!json_is_object(info) || id_cap > sizeof tmp || !copy_str(info, "run_id", tmp, id_cap))
		return false;
	/* No artifact location is not fatal: uploads then fail, reported. */
	const char *u = json_string_value(json_object_get(info, "artifact_uri"));
	if (u && strlen(u) >= uri_cap)
		return false;
	memcpy(id, tmp, strlen(tmp) + 1);
	memcpy(uri, u ? u : "", strlen(u ? u : "") + 1);
	return true;
}
