/*
 * rf_http.c - libcurl multi-socket driven by rf_loop (io_uring), plus retries.
 *
 * The shape follows curl's own hiperfifo/ephiperfifo examples: curl tells us
 * which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to call it back
 * (CURLMOPT_TIMERFUNCTION); we watch with io_uring and report readiness with
 * curl_multi_socket_action().
 */
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_err.h"
#include "rf_blob.h"
#include "rf_http.h"
#include "rf_redact.h"
#include "rf_resp.h"

#define BODY_MAX (64u << 20)

struct req {
	struct req *next; /* retry list, by due time */
	struct req *anext, **aprev; /* in-flight list */
	rf_http *h;
	CURL *easy;
	struct curl_slist *hdrs;
	char *method, *url, *body, *ctype;
	size_t len;
	struct rf_blob *blob; /* or the body read back from a file (rf_blob.h) */
	uint64_t rpos;        /* how much of it this attempt has read */
	enum rf_http_retry retry;
	bool no_auth;     /* none of the MLflow credentials or TLS settings */
	bool creds; /* carries MLflow's credentials (only to the tracking origin) */
	rf_http_done cb;
	void *arg;
	char *resp;
	size_t resp_len, resp_cap;
	unsigned attempt;
	uint64_t due;
	char errbuf[CURL_ERROR_SIZE];
};

struct rf_http {
	rf_loop *loop;
	int curl_timer, retry_timer; /* handed out by the loop */
	CURLM *multi;
	struct rf_http_opts o;
	char *auth_header;
	char origin[320]; /* scheme://host:port of the tracking server ("" if unknown) */
	/* More origins the credentials may go to: the destinations of a
	 * credential ring (rf_http_allow_origin). */
	char (*allowed)[320];
	size_t nallowed;
	struct req *retry;
	struct req *active; /* in flight */
	bool closing;
	size_t pending;
	struct rf_http_stats st;
	uint64_t rnd;
};

static bool url_origin(const char *url, char *out, size_t cap);

static bool origin_allowed(const rf_http *h, const char *o)
{
	if (!strcmp(o, h->origin))
		return true;
	for (size_t i = 0; i < h->nallowed; i++)
		if (!strcmp(o, h->allowed[i]))
			return true;
	return false;
}

int rf_http_allow_origin(rf_http *h, const char *uri)
{
	char o[320];
	if (!url_origin(uri, o, sizeof o))
		return -EINVAL;
	if (origin_allowed(h, o))
		return 0;
	void *n = realloc(h->allowed, (h->nallowed + 1) * sizeof *h->allowed);
	if (!n)
		return -ENOMEM;
	h->allowed = n;
	memcpy(h->allowed[h->nallowed++], o, sizeof o);
	return 0;
}

static void check_done(rf_http *h);

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
	struct req *q = arg;
	size_t add = size * n;
	if (q->resp_len + add + 1 > q->resp_cap) {
		size_t cap = q->resp_cap ? q->resp_cap * 2 : 4096;
		while (cap < q->resp_len + add + 1)
			cap *= 2;
		if (cap > BODY_MAX)
			return 0; /* curl reports a write error */
		char *p = realloc(q->resp, cap);
		if (!p)
			return 0;
		q->resp = p;
		q->resp_cap = cap;
	}
	memcpy(q->resp + q->resp_len, ptr, add);
	q->resp_len += add;
	q->resp[q->resp_len] = 0;
	return add;
}

/* A blob body, read for each attempt from its start. */
static size_t on_read(char *ptr, size_t size, size_t n, void *arg)
{
	struct req *q = arg;
	ssize_t r = rf_blob_read(q->blob, q->rpos, ptr, size * n);
	if (r < 0)
		return CURL_READFUNC_ABORT;
	q->rpos += (uint64_t)r;
	return (size_t)r;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct req *q = arg;
	if (origin != SEEK_SET || off < 0 || (uint64_t)off > rf_blob_len(q->blob))
		return CURL_SEEKFUNC_CANTSEEK;
	q->rpos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static void on_sock_ready(rf_loop *l, int fd, unsigned events, void *arg)
{
	(void)l;
	rf_http *h = arg;
	int flags = 0, running;
	if (events & POLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & POLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (POLLERR | POLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(h->multi, fd, flags, &running);
	check_done(h);
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)e;
	(void)socketp;
	rf_http *h = userp;
	unsigned ev = 0;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= POLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= POLLOUT;
	rf_loop_watch(h->loop, s, what == CURL_POLL_REMOVE ? 0 : ev, on_sock_ready, h);
	return 0;
}

static void on_curl_timer(rf_loop *l, void *arg)
{
	(void)l;
	rf_http *h = arg;
	int running;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(h);
}

static int on_timer(CURLM *m, long ms, void *userp)
{
	(void)m;
	rf_http *h = userp;
	rf_loop_timer_set(h->loop, h->curl_timer, ms);
	return 0;
}

/* A request that could not be queued: said with its URL, never a password. */
static int not_queued(int code, const char *method, const char *url, const char *why)
{
	char shown[256];
	rf_redact_uri(url, shown, sizeof shown);
	return rf_err_set(code, "%s %s: %s", method, shown, why);
}

static int start(rf_http *h, struct req *q)
{
	q->easy = curl_easy_init();
	if (!q->easy)
		return -ENOMEM;
	CURL *e = q->easy;
	q->resp_len = 0;
	q->errbuf[0] = 0;
	curl_easy_setopt(e, CURLOPT_URL, q->url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
	if (q->blob) {
		q->rpos = 0;
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->len);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, q);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, q);
	} else if (q->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->len);
	} else if (strcmp(q->method, "GET")) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(e, CURLOPT_PRIVATE, q);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->errbuf);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->o.timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	if (h->o.username && q->creds) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, h->o.username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, h->o.password ? h->o.password : "");
	}
	if (q->no_auth) {
		/* the defaults: verified against the system's CAs */
	} else if (h->o.insecure_tls) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (h->o.ca_path) {
		curl_easy_setopt(e, CURLOPT_CAINFO, h->o.ca_path);
	}
	h->st.requests++;
	h->st.bytes_out += q->len;
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK)
		return -EIO;
	q->anext = h->active;
	if (h->active)
		h->active->aprev = &q->anext;
	q->aprev = &h->active;
	h->active = q;
	return 0;
}

static void free_req(struct req *q)
{
	if (q->easy)
		curl_easy_cleanup(q->easy);
	curl_slist_free_all(q->hdrs);
	free(q->method);
	free(q->url);
	free(q->body);
	rf_blob_free(q->blob);
	free(q->ctype);
	free(q->resp);
	free(q);
}

static uint64_t rnd(rf_http *h)
{
	h->rnd ^= h->rnd << 13, h->rnd ^= h->rnd >> 7, h->rnd ^= h->rnd << 17;
	return h->rnd;
}

static void arm_retry_timer(rf_http *h);

static void on_retry_timer(rf_loop *l, void *arg)
{
	(void)l;
	rf_http *h = arg;
	uint64_t now = rf_loop_now_ms();
	while (h->retry && h->retry->due <= now) {
		struct req *q = h->retry;
		h->retry = q->next;
		h->st.retries++;
		if (start(h, q) != 0) {
			q->due = now + 1000;
			q->next = h->retry;
			h->retry = q;
			break;
		}
	}
	arm_retry_timer(h);
}

static void arm_retry_timer(rf_http *h)
{
	if (!h->retry)
		return;
	uint64_t now = rf_loop_now_ms();
	int64_t ms = h->retry->due > now ? (int64_t)(h->retry->due - now) : 0;
	rf_loop_timer_set(h->loop, h->retry_timer, ms);
}

static void schedule_retry(rf_http *h, struct req *q)
{
	/* Exponential backoff with full jitter on the upper half: 250 ms
	 * doubling, capped, times U(0.5, 1.0). */
	uint64_t base = 250ull << (q->attempt < 10 ? q->attempt : 10);
	if (base > (uint64_t)h->o.backoff_max_ms)
		base = (uint64_t)h->o.backoff_max_ms;
	uint64_t delay = base / 2 + rnd(h) % (base / 2 + 1);
	q->attempt++;
	q->due = rf_loop_now_ms() + delay;
	struct req **pp = &h->retry;
	while (*pp && (*pp)->due <= q->due)
		pp = &(*pp)->next;
	q->next = *pp;
	*pp = q;
	arm_retry_timer(h);
}

/* Only the server's own verdict ends a request (rf_resp_classify): a
 * proxy's page, an auth failure, a 5xx, 429 or no answer at all waits and
 * is tried again, for as long as it takes (what waits meanwhile is bounded
 * by the spool gate, not by a clock). */
static bool retryable(struct req *q, long status, enum rf_resp_kind kind)
{
	if (q->retry == RF_HTTP_NO_RETRY || kind == RF_RESP_OK || kind == RF_RESP_VERDICT)
		return false;
	if (status == 500 && q->retry == RF_HTTP_RETRY_SAFE && q->resp && q->resp[0] == '{')
		return false; /* MLflow's INTERNAL_ERROR of a request that must not run twice */
	return true;
}

/* scheme://host:port (lower case, default port filled in) of `url`; false
 * if it does not parse. */
static bool url_origin(const char *url, char *out, size_t cap)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	bool ok = u && !curl_url_set(u, CURLUPART_URL, url, 0) &&
		  !curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) &&
		  !curl_url_get(u, CURLUPART_HOST, &host, 0) &&
		  !curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	if (ok)
		ok = (size_t)snprintf(out, cap, "%s://%s:%s", scheme, host, port) < cap;
	for (char *p = out; ok && *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return ok;
}

static void check_done(rf_http *h)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(h->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct req *q;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
		long status = 0;
		if (m->data.result == CURLE_OK)
			curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		curl_multi_remove_handle(h->multi, q->easy);
		curl_easy_cleanup(q->easy);
		q->easy = NULL;
		*q->aprev = q->anext; /* off the in-flight list */
		if (q->anext)
			q->anext->aprev = q->aprev;
		enum rf_resp_kind kind = rf_resp_classify(status, q->resp, q->resp_len);
		if (kind == RF_RESP_AUTH) {
			/* Reported loudly by the daemon (WARN, rate-limited) and
			 * in status; retried with the capped backoff. */
			h->st.auth_failures++;
			h->st.auth_failing = true;
			h->st.auth_status = status;
			if (!url_origin(q->url, h->st.auth_origin, sizeof h->st.auth_origin))
				snprintf(h->st.auth_origin, sizeof h->st.auth_origin, "%s", "?");
		} else if (kind == RF_RESP_OK && q->creds) {
			h->st.auth_failing = false;
		}
		if (status >= 200 && status < 300)
			h->st.status_2xx++;
		else if (status >= 400 && status < 500)
			h->st.status_4xx++;
		else if (status >= 500)
			h->st.status_5xx++;
		else
			h->st.conn_errors++;
		/* A verdict is its caller's to judge (a 404 of a lookup is an
		 * answer; a refused entity is reported by rf_runs): everything
		 * else that is not a success is an error here. */
		if ((kind == RF_RESP_AUTH || kind == RF_RESP_TRANSIENT) && h->o.on_retry) {
			char shown[256]; /* never the password of a user:pw@host URL */
			rf_redact_uri(q->url, shown, sizeof shown);
			rf_err_set(status ? EPROTO : EIO, "%s %.200s: HTTP %ld: %.250s", q->method,
				   shown, status, status ? (q->resp ? q->resp : "") : q->errbuf);
			h->o.on_retry(h->o.on_retry_arg);
		}
		if (retryable(q, status, kind)) {
			schedule_retry(h, q);
			continue;
		}
		if (status >= 200 && status < 300)
			h->st.ok++;
		else
			h->st.failed++;
		h->pending--;
		if (q->cb)
			q->cb(status, q->resp ? q->resp : "", q->resp_len, q->errbuf, q->arg);
		free_req(q);
	}
}

int rf_http_new(rf_http **out, rf_loop *loop, const struct rf_http_opts *o)
{
	static bool global;
	if (!global) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT))
			return rf_err_set(EIO, "http: curl_global_init failed");
		global = true;
	}
	rf_http *h = calloc(1, sizeof *h);
	if (!h)
		return rf_err_set(ENOMEM, "http: out of memory");
	h->loop = loop;
	if (o)
		h->o = *o;
	if (!h->o.timeout_ms)
		h->o.timeout_ms = 30000;
	if (!h->o.backoff_max_ms) /* short: a local sidecar should catch up fast */
		h->o.backoff_max_ms = 5000;
	h->rnd = 0x9e3779b97f4a7c15ull ^ (uint64_t)rf_loop_now_ms();
	if (h->o.origin && !url_origin(h->o.origin, h->origin, sizeof h->origin))
		h->origin[0] = 0;
	h->o.origin = NULL; /* not kept: the caller's string */
	if (h->o.token && !h->o.username) {
		size_t n = strlen(h->o.token) + 32;
		h->auth_header = malloc(n);
		if (h->auth_header)
			snprintf(h->auth_header, n, "Authorization: Bearer %s", h->o.token);
	}
	h->curl_timer = h->retry_timer = -1;
	if (loop && ((h->curl_timer = rf_loop_timer_new(loop, on_curl_timer, h)) < 0 ||
		     (h->retry_timer = rf_loop_timer_new(loop, on_retry_timer, h)) < 0)) {
		int rc = h->curl_timer < 0 ? h->curl_timer : h->retry_timer;
		if (h->curl_timer >= 0)
			rf_loop_timer_del(loop, h->curl_timer);
		free(h->auth_header);
		free(h);
		return rf_err_set(-rc, "http: no loop timer left");
	}
	h->multi = curl_multi_init();
	if (!h->multi) {
		if (loop) {
			rf_loop_timer_del(loop, h->curl_timer);
			rf_loop_timer_del(loop, h->retry_timer);
		}
		free(h->auth_header);
		free(h);
		return rf_err_set(ENOMEM, "http: curl_multi_init failed");
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	/* Enough for the trace requests a many-worker server takes at once
	 * (rf_trace_pace.h, at most 16) plus a span batch and tracking: the
	 * callers bound what they keep in flight, not the connection count. */
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 20L);
	*out = h;
	return 0;
}

void rf_http_cancel_all(rf_http *h)
{
	/* Every owner hears about its request (status 0) and can free what it
	 * attached; nothing new is accepted from here on. */
	h->closing = true;
	while (h->active) {
		struct req *q = h->active;
		h->active = q->anext;
		curl_multi_remove_handle(h->multi, q->easy);
		h->pending--;
		if (q->cb)
			q->cb(0, "", 0, "cancelled: ringflowd is stopping", q->arg);
		free_req(q);
	}
	while (h->retry) {
		struct req *q = h->retry;
		h->retry = q->next;
		h->pending--;
		if (q->cb)
			q->cb(0, "", 0, "cancelled: ringflowd is stopping", q->arg);
		free_req(q);
	}
}

void rf_http_free(rf_http *h)
{
	if (!h)
		return;
	rf_http_cancel_all(h);
	curl_multi_cleanup(h->multi);
	if (h->loop) {
		rf_loop_timer_del(h->loop, h->curl_timer);
		rf_loop_timer_del(h->loop, h->retry_timer);
	}
	free(h->auth_header);
	free(h->allowed);
	free(h);
}

int rf_http_request(rf_http *h, const char *method, const char *url, char *body, size_t len,
		    const char *content_type, enum rf_http_retry retry, rf_http_done cb, void *arg)
{
	return rf_http_request_ex(h, method, url, body, len, content_type, NULL, false, retry, cb,
				  arg);
}

static int queue(rf_http *h, const char *method, const char *url, char *body, size_t len,
		 struct rf_blob *blob, const char *content_type, const char *const *headers,
		 bool no_auth, enum rf_http_retry retry, rf_http_done cb, void *arg)
{
	struct req *q = h->closing ? NULL : calloc(1, sizeof *q);
	if (!q) {
		free(body);
		rf_blob_free(blob);
		return h->closing ? not_queued(ECANCELED, method, url, "not sent: ringflowd is stopping")
				  : not_queued(ENOMEM, method, url, "out of memory");
	}
	q->h = h;
	q->method = strdup(method);
	q->url = strdup(url);
	q->body = body;
	q->blob = blob;
	q->len = blob ? (size_t)rf_blob_len(blob) : len;
	q->retry = retry;
	q->no_auth = no_auth;
	/* Credentials go to the tracking server's own scheme, host and port
	 * only (or a destination's, on a credential ring: rf_http_allow_origin):
	 * an artifact URI the server names on another origin (plain http,
	 * another host) is refused rather than handed the token. */
	q->creds = !no_auth && (h->auth_header || h->o.username);
	if (q->creds && h->origin[0]) {
		char o[sizeof h->origin];
		if (!url_origin(url, o, sizeof o) || !origin_allowed(h, o)) {
			h->st.creds_refused++;
			snprintf(h->st.refused_origin, sizeof h->st.refused_origin, "%s",
				 url_origin(url, o, sizeof o) ? o : "an unparsable URL");
			free_req(q); /* the body with it */
			return rf_err_set(EPERM, "refused to send MLflow credentials to %.200s "
					  "(not the tracking server %.200s)", h->st.refused_origin,
					  h->origin);
		}
	}
	q->cb = cb;
	q->arg = arg;
	char ct[128];
	snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "application/json");
	q->hdrs = curl_slist_append(q->hdrs, ct);
	q->hdrs = curl_slist_append(q->hdrs, "Expect:"); /* no 100-continue round trip */
	q->hdrs = curl_slist_append(q->hdrs, "User-Agent: ringflowd/0.1");
	if (h->auth_header && q->creds)
		q->hdrs = curl_slist_append(q->hdrs, h->auth_header);
	for (size_t i = 0; headers && headers[i]; i++)
		q->hdrs = curl_slist_append(q->hdrs, headers[i]);
	if (!q->method || !q->url || !q->hdrs) {
		free_req(q);
		return not_queued(ENOMEM, method, url, "out of memory");
	}
	h->pending++;
	int rc = start(h, q);
	if (rc) {
		h->pending--;
		free_req(q);
	}
	return rc;
}

int rf_http_request_ex(rf_http *h, const char *method, const char *url, char *body, size_t len,
		       const char *content_type, const char *const *headers, bool no_auth,
		       enum rf_http_retry retry, rf_http_done cb, void *arg)
{
	return queue(h, method, url, body, len, NULL, content_type, headers, no_auth, retry, cb, arg);
}

int rf_http_request_blob(rf_http *h, const char *method, const char *url, struct rf_blob *body,
			 const char *content_type, const char *const *headers, bool no_auth,
			 enum rf_http_retry retry, rf_http_done cb, void *arg)
{
	return queue(h, method, url, NULL, 0, body, content_type, headers, no_auth, retry, cb, arg);
}

void rf_http_retry_now(rf_http *h)
{
	for (struct req *q = h->retry; q; q = q->next)
		q->due = 0;
	arm_retry_timer(h);
}

size_t rf_http_pending(rf_http *h)
{
	return h->pending;
}

void rf_http_stats(rf_http *h, struct rf_http_stats *st)
{
	*st = h->st;
}
