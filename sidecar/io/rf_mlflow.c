/*
 * rf_mlflow.c - MLflow REST calls over rf_http, JSON by jansson.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_err.h"
#include "rf_blob.h"
#include "rf_mlflow.h"
#include "rf_redact.h"
#include "rf_resp.h"

struct rf_mlflow {
	rf_http *http;
	char uri[512]; /* without trailing '/' */
	bool foreign;  /* no credentials */
};

struct call {
	rf_mlflow_cb cb;
	void *arg;
};

int rf_mlflow_new(rf_mlflow **out, rf_http *http, const char *tracking_uri)
{
	rf_mlflow *m = calloc(1, sizeof *m);
	if (!m)
		return rf_err_set(ENOMEM, "mlflow client: out of memory");
	m->http = http;
	snprintf(m->uri, sizeof m->uri, "%s", tracking_uri);
	size_t n = strlen(m->uri);
	while (n && m->uri[n - 1] == '/')
		m->uri[--n] = 0;
	*out = m;
	return 0;
}

void rf_mlflow_free(rf_mlflow *m)
{
	free(m);
}

void rf_mlflow_set_foreign(rf_mlflow *m, bool foreign)
{
	m->foreign = foreign;
}

static void on_done(long status, const char *body, size_t len, const char *err, void *arg)
{
	struct call *c = arg;
	const char *msg;
	json_t *j = rf_resp_parse(status, body, len, err, &msg);
	if (c->cb)
		c->cb(status >= 200 && status < 300, status, j, msg, c->arg);
	json_decref(j);
	free(c);
}

/* Every call: a full URL, the body (in memory, or a blob) taken over, its
 * result parsed by on_done. */
static int send(rf_mlflow *m, const char *method, const char *url, char *body, size_t len,
		struct rf_blob *blob, const char *content_type, const char *const *headers,
		enum rf_http_retry retry, rf_mlflow_cb cb, void *arg)
{
	struct call *c = malloc(sizeof *c);
	if (!c) {
		free(body);
		rf_blob_free(blob);
		return rf_err_set(ENOMEM, "%s request: out of memory", method);
	}
	c->cb = cb;
	c->arg = arg;
	/* Text bodies: no known secret value leaves, whoever put it there (a
	 * blob's writer redacted it: it goes as written). */
	if (body && content_type && !strncmp(content_type, "application/json", 16))
		rf_redact_text(&body, &len);
	int rc = blob ? rf_http_request_blob(m->http, method, url, blob, content_type, headers,
					     m->foreign, retry, on_done, c)
		      : rf_http_request_ex(m->http, method, url, body, len, content_type, headers,
					   m->foreign, retry, on_done, c);
	if (rc)
		free(c);
	return rc;
}

static int send_json(rf_mlflow *m, const char *method, const char *url, json_t *body,
		     enum rf_http_retry retry, rf_mlflow_cb cb, void *arg)
{
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
	bool lost = body && !s;
	json_decref(body);
	if (lost)
		return rf_err_set(ENOMEM, "%s request: out of memory for its body", method);
	return send(m, method, url, s, s ? strlen(s) : 0, NULL, "application/json", NULL, retry, cb,
		    arg);
}

int rf_mlflow_post(rf_mlflow *m, const char *path, json_t *body, enum rf_http_retry retry,
		   rf_mlflow_cb cb, void *arg)
{
	char url[1024];
	snprintf(url, sizeof url, "%s/api/2.0/mlflow/%s", m->uri, path);
	return send_json(m, "POST", url, body, retry, cb, arg);
}

int rf_mlflow_post_raw(rf_mlflow *m, const char *path, char *body, size_t len,
		       enum rf_http_retry retry, rf_mlflow_cb cb, void *arg)
{
	char url[1024];
	snprintf(url, sizeof url, "%s/api/2.0/mlflow/%s", m->uri, path);
	return send(m, "POST", url, body, len, NULL, "application/json", NULL, retry, cb, arg);
}

int rf_mlflow_call(rf_mlflow *m, const char *method, const char *api_path, char *body, size_t len,
		   const char *content_type, const char *const *headers, enum rf_http_retry retry,
		   rf_mlflow_cb cb, void *arg)
{
	char url[2048];
	snprintf(url, sizeof url, "%s%s", m->uri, api_path);
	return send(m, method, url, body, len, NULL, content_type, headers, retry, cb, arg);
}

int rf_mlflow_get(rf_mlflow *m, const char *path_and_query, rf_mlflow_cb cb, void *arg)
{
	char url[2048];
	snprintf(url, sizeof url, "%s/api/2.0/mlflow/%s", m->uri, path_and_query);
	return send_json(m, "GET", url, NULL, RF_HTTP_RETRY_ALL, cb, arg);
}

bool rf_mlflow_segment_ok(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (n == 0 || n > max || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		/* '%', '?', '#', '\\': decoded, cut or turned into '/' on the way */
		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '%' || c == '?' || c == '#')
			return false;
	}
	return true;
}

/* Every '/'-separated segment of p (leading '/' allowed) is a plain name. */
static bool path_ok(const char *p, size_t max)
{
	if (strlen(p) > max)
		return false;
	while (*p == '/')
		p++;
	char seg[256];
	while (*p) {
		const char *e = strchrnul(p, '/');
		if ((size_t)(e - p) >= sizeof seg)
			return false;
		memcpy(seg, p, (size_t)(e - p));
		seg[e - p] = 0;
		if (!rf_mlflow_segment_ok(seg, sizeof seg - 1))
			return false;
		p = *e ? e + 1 : e;
	}
	return true;
}

int rf_mlflow_put_artifact(rf_mlflow *m, const char *artifact_uri, const char *rel_path,
			   struct rf_blob *body, const char *content_type, rf_mlflow_cb cb,
			   void *arg)
{
	/* Both come from untrusted sides (the run's artifact location from the
	 * server's answer, ids in rel_path from records): no segment may climb
	 * ('..') or smuggle a separator, so a PUT never lands in another run. */
	const char *sep = strstr(artifact_uri, "://");
	const char *where = sep ? strchrnul(sep + 3, '/') : strchrnul(artifact_uri, ':');
	if (!path_ok(rel_path, 1024) || !path_ok(where + (*where == ':'), 1024)) {
		rf_blob_free(body);
		char shown[256];
		rf_redact_uri(artifact_uri, shown, sizeof shown);
		return rf_err_set(EINVAL, "artifact %.200s under %s: not a safe path", rel_path, shown);
	}
	/* mlflow-artifacts:/<exp>/<run>/artifacts -> <uri>/api/2.0/mlflow-artifacts/artifacts/... */
	char url[2048];
	const char *pfx = "mlflow-artifacts:";
	if (strncmp(artifact_uri, pfx, strlen(pfx)) == 0) {
		const char *p = artifact_uri + strlen(pfx);
		while (*p == '/')
			p++;
		snprintf(url, sizeof url, "%s/api/2.0/mlflow-artifacts/artifacts/%s/%s", m->uri, p,
			 rel_path);
	} else if (!strncmp(artifact_uri, "http://", 7) || !strncmp(artifact_uri, "https://", 8)) {
		snprintf(url, sizeof url, "%s/%s", artifact_uri, rel_path);
	} else {
		rf_blob_free(body); /* e.g. s3:// — not reachable through the tracking server */
		return -ENOTSUP;
	}
	return send(m, "PUT", url, NULL, 0, body, content_type, NULL, RF_HTTP_RETRY_ALL, cb, arg);
}

void rf_mlflow_sanitize_key(char *key)
{
	char *w = key;
	for (const char *r = key; *r && w - key < 250; r++) {
		unsigned char c = (unsigned char)*r;
		char o = (isalnum(c) || c == '_' || c == '-' || c == '.' || c == ' ' || c == ':' ||
			  c == '/') ? (char)c : '_';
		if (o == '/' && (w == key || w[-1] == '/'))
			continue; /* no leading or doubled '/' */
		*w++ = o;
	}
	*w = 0;
	while (w > key && w[-1] == '/')
		*--w = 0;
	/* "." and ".." path segments would be normalised away by the server. */
	for (char *seg = key; *seg;) {
		char *end = strchr(seg, '/');
		size_t n = end ? (size_t)(end - seg) : strlen(seg);
		if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			memset(seg, '_', n);
		seg += n + (end ? 1 : 0);
	}
	if (!*key)
		strcpy(key, "_");
}
