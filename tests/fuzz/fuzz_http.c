/*
 * fuzz_http.c - see fuzz_http.h.  Linked into the fuzz targets instead of
 * sidecar/io/rf_http.c (same API), so rf_mlflow/rf_runs run unchanged.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_http.h"
#include "rf_blob.h"

struct qreq {
	struct qreq *next;
	struct fuzz_req r;
	rf_http_done cb;
	void *arg;
};

struct rf_http {
	struct qreq *head, **tail;
	size_t n;
	bool cancelled;
	struct rf_http_stats st;
};

int rf_http_new(rf_http **out, rf_loop *loop, const struct rf_http_opts *o)
{
	(void)loop;
	(void)o;
	rf_http *h = calloc(1, sizeof *h);
	if (!h)
		return -ENOMEM;
	h->tail = &h->head;
	*out = h;
	return 0;
}

static struct qreq *pop(rf_http *h)
{
	struct qreq *q = h->head;
	if (q) {
		h->head = q->next;
		if (!h->head)
			h->tail = &h->head;
		h->n--;
	}
	return q;
}

void rf_http_cancel_all(rf_http *h)
{
	h->cancelled = true;
	struct qreq *q;
	while ((q = pop(h))) {
		q->cb(0, "", 0, "cancelled", q->arg);
		free(q);
	}
}

void rf_http_free(rf_http *h)
{
	if (!h)
		return;
	rf_http_cancel_all(h);
	free(h);
}

int rf_http_request(rf_http *h, const char *method, const char *url, char *body, size_t len,
		    const char *content_type, enum rf_http_retry retry, rf_http_done cb, void *arg)
{
	(void)retry;
	if (body && content_type && !strcmp(content_type, "application/json")) {
		json_error_t e;
		/* "\u0000" is valid JSON (a NUL inside a record's string); jansson
		 * only refuses it by default. */
		json_t *j = json_loadb(body, len, JSON_ALLOW_NUL, &e);
		if (!j) {
			fprintf(stderr, "invalid JSON request body for %s %s: %s\n%.*s\n", method, url,
				e.text, (int)(len > 2000 ? 2000 : len), body);
			abort();
		}
		json_decref(j);
	}
	free(body);
	if (h->cancelled)
		return -ECANCELED;
	struct qreq *q = calloc(1, sizeof *q);
	if (!q)
		return -ENOMEM;
	snprintf(q->r.method, sizeof q->r.method, "%s", method);
	snprintf(q->r.url, sizeof q->r.url, "%s", url);
	q->cb = cb;
	q->arg = arg;
	*h->tail = q;
	h->tail = &q->next;
	h->n++;
	h->st.requests++;
	return 0;
}

int rf_http_request_ex(rf_http *h, const char *method, const char *url, char *body, size_t len,
		       const char *content_type, const char *const *headers, bool no_auth,
		       enum rf_http_retry retry, rf_http_done cb, void *arg)
{
	(void)headers;
	(void)no_auth;
	return rf_http_request(h, method, url, body, len, content_type, retry, cb, arg);
}

/* A body from a file: read back whole, then checked as any other. */
int rf_http_request_blob(rf_http *h, const char *method, const char *url, struct rf_blob *body,
			 const char *content_type, const char *const *headers, bool no_auth,
			 enum rf_http_retry retry, rf_http_done cb, void *arg)
{
	(void)headers;
	(void)no_auth;
	size_t len = (size_t)rf_blob_len(body);
	char *copy = malloc(len + 1);
	if (!copy || rf_blob_read(body, 0, copy, len) != (ssize_t)len) {
		fprintf(stderr, "request body from a blob: short read\n");
		abort();
	}
	copy[len] = 0;
	rf_blob_free(body);
	return rf_http_request(h, method, url, copy, len, content_type, retry, cb, arg);
}

void rf_http_retry_now(rf_http *h)
{
	(void)h;
}

size_t rf_http_pending(rf_http *h)
{
	return h->n;
}

void rf_http_stats(rf_http *h, struct rf_http_stats *st)
{
	*st = h->st;
}

/* The tracker's clock (rf_loop_now_ms, rf_loop.c is not linked): virtual,
 * so retries after backoff happen within one input. */
static uint64_t now_ms = 1000000;

uint64_t rf_loop_now_ms(void)
{
	return now_ms;
}

void fuzz_clock_advance(uint64_t ms)
{
	now_ms += ms;
}

size_t fuzz_http_queued(rf_http *h)
{
	return h->n;
}

bool fuzz_http_peek(rf_http *h, struct fuzz_req *out)
{
	if (!h->head)
		return false;
	*out = h->head->r;
	return true;
}

void fuzz_http_answer(rf_http *h, long status, const char *body, size_t len)
{
	struct qreq *q = pop(h);
	if (!q)
		return;
	/* rf_http hands bodies NUL-terminated. */
	char *b = malloc(len + 1);
	if (b) {
		memcpy(b, body, len);
		b[len] = 0;
		q->cb(status, b, len, status ? "" : "connection refused", q->arg);
	} else {
		q->cb(0, "", 0, "out of memory", q->arg);
	}
	free(b);
	free(q);
}

int rf_http_allow_origin(rf_http *h, const char *uri)
{
	(void)h;
	(void)uri;
	return 0; /* no credentials here: nothing to keep on an origin */
}
