/*
 * test_answers.c - what ringflowd makes of a server's answer
 * (rf_resp_classify, rf_resp_refuses_entities) and the bounded metric-name
 * table (rf_keys).  The end-to-end behaviour (real MLflow behind a fault
 * proxy; peak RSS under a flood) is tested in tests/python/
 * test_server_answers.py and test_memory_bounds.py; this pins the rules.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_metrics.h"
#include "rf_resp.h"
#include "rf_test.h"

static enum rf_resp_kind kind(long status, const char *body)
{
	return rf_resp_classify(status, body, strlen(body));
}

static bool refuses(long status, const char *body)
{
	json_t *j = json_loads(body, 0, NULL);
	bool r = rf_resp_refuses_entities(status, j);
	json_decref(j);
	return r;
}

int main(void)
{
	const char *html = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>";
	const char *invalid = "{\"error_code\": \"INVALID_PARAMETER_VALUE\", \"message\": \"x\"}";
	/* A proxy's page is never a verdict, whatever its status. */
	CHECK_EQ(kind(503, html), RF_RESP_TRANSIENT);
	CHECK_EQ(kind(400, html), RF_RESP_TRANSIENT);
	CHECK_EQ(kind(502, ""), RF_RESP_TRANSIENT);
	CHECK_EQ(kind(0, ""), RF_RESP_TRANSIENT);
	CHECK_EQ(kind(429, "{\"error_code\": \"REQUEST_LIMIT_EXCEEDED\"}"), RF_RESP_TRANSIENT);
	CHECK_EQ(kind(500, "{\"error_code\": \"INTERNAL_ERROR\"}"), RF_RESP_TRANSIENT);
	CHECK_EQ(kind(400, "{}"), RF_RESP_TRANSIENT);               /* JSON, but no error_code */
	CHECK_EQ(kind(400, "{\"error_code\": \"\"}"), RF_RESP_TRANSIENT);
	CHECK_EQ(kind(400, "{\"error_code\": 7}"), RF_RESP_TRANSIENT);
	CHECK_EQ(kind(400, "{\"error_code\": \"X\""), RF_RESP_TRANSIENT); /* cut short */
	/* Auth failures: their own kind (retried, reported loudly). */
	CHECK_EQ(kind(401, "You are not authenticated."), RF_RESP_AUTH);
	CHECK_EQ(kind(403, "{\"error_code\": \"PERMISSION_DENIED\"}"), RF_RESP_AUTH);
	CHECK_EQ(kind(407, ""), RF_RESP_AUTH);
	/* MLflow's verdicts. */
	CHECK_EQ(kind(200, ""), RF_RESP_OK);
	CHECK_EQ(kind(400, invalid), RF_RESP_VERDICT);
	CHECK_EQ(kind(404, html), RF_RESP_VERDICT);
	CHECK_EQ(kind(413, html), RF_RESP_VERDICT);
	CHECK_EQ(kind(422, "{\"detail\": \"bad\"}"), RF_RESP_VERDICT);
	CHECK_EQ(kind(501, "{\"error_code\": \"NOT_IMPLEMENTED\"}"), RF_RESP_VERDICT);
	CHECK_EQ(kind(503, "Endpoint: /api/2.0/mlflow-artifacts/artifacts/<path:artifact_path> "
			   "disabled due to the mlflow server running with `--no-serve-artifacts`."),
		 RF_RESP_VERDICT);
	CHECK_EQ(kind(503, "{\"error_code\": \"TEMPORARILY_UNAVAILABLE\"}"), RF_RESP_TRANSIENT);
	/* Which verdicts may drop a log-batch's entities. */
	CHECK(refuses(400, invalid));
	CHECK(refuses(400, "{\"error_code\": \"BAD_REQUEST\"}"));
	CHECK(refuses(413, "{}"));
	CHECK(!refuses(404, "{\"error_code\": \"RESOURCE_DOES_NOT_EXIST\"}"));
	CHECK(!refuses(400, "{\"error_code\": \"SOMETHING_ELSE\"}"));
	CHECK(!refuses(400, "{}"));

	/* rf_keys: interned by the sanitised name, bounded. */
	struct rf_keys *k = rf_keys_new(3);
	CHECK(k);
	uint32_t a = rf_keys_id(k, "sample/acc"), b = rf_keys_id(k, "sample/b@d");
	CHECK(a != RF_KEYS_FULL && b != RF_KEYS_FULL && a != b);
	CHECK(!strcmp(rf_keys_str(k, b), "sample/b_d"));
	CHECK_EQ(rf_keys_id(k, "sample/b#d"), b); /* the same name once sanitised */
	char lng[2000];
	memset(lng, 'x', sizeof lng - 1);
	lng[sizeof lng - 1] = 0;
	uint32_t c = rf_keys_id(k, lng);
	CHECK(c != RF_KEYS_FULL && strlen(rf_keys_str(k, c)) <= 250);
	CHECK_EQ(rf_keys_id(k, "new"), RF_KEYS_FULL); /* the fourth name */
	CHECK_EQ(rf_keys_id(k, "sample/acc"), a);     /* known names still work */
	rf_keys_free(k);
	/* Many names: the table grows and finds each again. */
	k = rf_keys_new(5000);
	char name[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof name, "m/%d", i);
		CHECK_EQ(rf_keys_id(k, name), i);
	}
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof name, "m/%d", i);
		CHECK_EQ(rf_keys_id(k, name), i);
	}
	CHECK_EQ(rf_keys_id(k, "m/5000"), RF_KEYS_FULL);
	rf_keys_free(k);
	return RF_T_PASS;
}
