/*
 * rf_experiments.c - an experiment's id by name, restored or created as
 * needed (see rf_experiments.h).
 */
#include "rf_experiments.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "rf_loop.h"
#include "rf_resp.h"

void rf_exp_init(struct rf_exp *e, rf_mlflow *m, const char *name, rf_exp_err_fn err, void *arg)
{
	memset(e, 0, sizeof *e);
	e->m = m;
	snprintf(e->name, sizeof e->name, "%s", name);
	e->err = err;
	e->err_arg = arg;
}

/* MLflow's own verdict on the request, not a transient failure. */
static bool verdict(long status, const json_t *resp)
{
	return status >= 400 && status < 500 && status != 429 &&
	       json_is_string(json_object_get(resp, "error_code"));
}

static void fail(struct rf_exp *e, long status, const json_t *resp, const char *msg)
{
	if (verdict(status, resp)) {
		e->state = RF_EXP_REFUSED;
	} else {
		e->state = RF_EXP_UNKNOWN;
		e->retry_at = rf_loop_now_ms() + RF_EXP_RETRY_MS;
	}
	if (e->err) {
		char m[600];
		snprintf(m, sizeof m, "experiment %.256s: HTTP %ld: %.300s", e->name, status,
			 msg ? msg : "");
		e->err(e->err_arg, m);
	}
}

/* A request that could not even be queued: try again later. */
static void not_sent(struct rf_exp *e, int rc)
{
	if (rc) {
		e->state = RF_EXP_UNKNOWN;
		e->retry_at = rf_loop_now_ms() + RF_EXP_RETRY_MS;
	}
}

static void on_restored(int ok, long status, json_t *resp, const char *msg, void *arg)
{
	struct rf_exp *e = arg;
	if (ok)
		e->state = RF_EXP_READY;
	else
		fail(e, status, resp, msg);
}

static void get_by_name(struct rf_exp *e);

static bool already_exists(const json_t *resp)
{
	const char *code = json_string_value(json_object_get(resp, "error_code"));
	return code && !strcmp(code, "RESOURCE_ALREADY_EXISTS");
}

static void on_created(int ok, long status, json_t *resp, const char *msg, void *arg)
{
	struct rf_exp *e = arg;
	if (ok && rf_resp_experiment_created(resp, e->id, sizeof e->id))
		e->state = RF_EXP_READY;
	else if (status == 400 && already_exists(resp))
		get_by_name(e); /* created by someone else meanwhile */
	else
		fail(e, status, resp, ok ? "response without a usable experiment_id" : msg);
}

static void on_got(int ok, long status, json_t *resp, const char *msg, void *arg)
{
	struct rf_exp *e = arg;
	bool deleted = false;
	if (ok && rf_resp_experiment(resp, e->id, sizeof e->id, &deleted)) {
		if (!deleted) {
			e->state = RF_EXP_READY;
			return;
		}
		/* Deleted: data logged there would be invisible.  Restore it. */
		not_sent(e, rf_mlflow_post(e->m, "experiments/restore",
					   json_pack("{s:s}", "experiment_id", e->id),
					   RF_HTTP_RETRY_ALL, on_restored, e));
	} else if (status == 404) {
		not_sent(e, rf_mlflow_post(e->m, "experiments/create",
					   json_pack("{s:s}", "name", e->name), RF_HTTP_NO_RETRY,
					   on_created, e));
	} else {
		fail(e, status, resp, ok ? "response without a usable experiment" : msg);
	}
}

static void get_by_name(struct rf_exp *e)
{
	char q[1024];
	char *enc = curl_easy_escape(NULL, e->name, 0);
	snprintf(q, sizeof q, "experiments/get-by-name?experiment_name=%s", enc ? enc : "");
	curl_free(enc);
	e->state = RF_EXP_ASKING;
	not_sent(e, rf_mlflow_get(e->m, q, on_got, e));
}

const char *rf_exp_resolve(struct rf_exp *e)
{
	if (e->state == RF_EXP_UNKNOWN && rf_loop_now_ms() >= e->retry_at)
		get_by_name(e);
	return e->state == RF_EXP_READY ? e->id : e->state == RF_EXP_REFUSED ? "" : NULL;
}

const char *rf_exp_id(const struct rf_exp *e)
{
	return e->state == RF_EXP_READY ? e->id : NULL;
}
