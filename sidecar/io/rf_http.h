/*
 * rf_http.h - HTTP requests through libcurl's multi-socket API on rf_loop.
 *
 * libcurl does HTTP, TLS, keep-alive and auth; this module only connects
 * its sockets and timers to the io_uring loop and adds the retry policy
 * (rf_resp_classify): only the server's own verdict (MLflow's JSON error of
 * a 4xx, any 404, 413) and successes are final and handed to the caller;
 * everything else - no answer, 5xx, 408, 429, 401/403, a proxy's page - is
 * retried with exponential backoff and jitter, without limit (nothing is
 * dropped; the caller sees progress in the stats, auth failures are
 * flagged).  Credentials go only to the tracking server's origin.
 */
#ifndef RF_HTTP_H
#define RF_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rf_loop.h"

typedef struct rf_http rf_http;

/* status: HTTP status of the final response (0 if none); body: the response
 * body (NUL-terminated); err: curl's error text when status is 0. */
typedef void (*rf_http_done)(long status, const char *body, size_t len, const char *err,
			     void *arg);

struct rf_http_opts {
	const char *token;      /* Bearer (MLFLOW_TRACKING_TOKEN) */
	const char *username;   /* Basic, wins over the token (as MLflow's client) */
	const char *password;
	bool insecure_tls;      /* MLFLOW_TRACKING_INSECURE_TLS=true only */
	const char *ca_path;    /* MLFLOW_TRACKING_SERVER_CERT_PATH */
	long timeout_ms;        /* per attempt; default 30000 */
	long backoff_max_ms;    /* default 5000 */
	const char *origin;     /* the tracking URI: credentials go to its scheme+host+port only */
	/* A failed attempt that is retried (the caller sees only the final
	 * answer): called on the loop thread with the reason in rf_err_msg(). */
	void (*on_retry)(void *arg);
	void *on_retry_arg;
};

struct rf_http_stats {
	uint64_t requests;      /* attempts sent */
	uint64_t ok;            /* 2xx */
	uint64_t retries;       /* attempts repeated */
	uint64_t failed;        /* final non-2xx */
	uint64_t status_2xx, status_4xx, status_5xx, conn_errors;
	uint64_t bytes_out;
	uint64_t auth_failures;  /* 401/403/407 answers (each retried) */
	bool auth_failing;       /* the last answer with credentials was an auth failure */
	long auth_status;
	char auth_origin[320];   /* where it came from */
	uint64_t creds_refused;  /* requests refused: credentials for another origin */
	char refused_origin[320]; /* the last such origin */
};

int rf_http_new(rf_http **out, rf_loop *loop, const struct rf_http_opts *o);
void rf_http_free(rf_http *h);

/* How a failed attempt is retried. */
enum rf_http_retry {
	RF_HTTP_RETRY_SAFE = 0, /* everything but a verdict, except MLflow's JSON 500 */
	RF_HTTP_RETRY_ALL = 1,  /* everything but a verdict: the request is idempotent */
	RF_HTTP_NO_RETRY = 2,   /* the caller decides (e.g. runs/create is not idempotent) */
};

/* Queue a request.  `body` (may be NULL) is taken over and freed.  -EPERM
 * (counted in creds_refused) if the request would carry credentials to
 * another origin than opts.origin. */
int rf_http_request(rf_http *h, const char *method, const char *url, char *body, size_t len,
		    const char *content_type, enum rf_http_retry retry, rf_http_done cb, void *arg);

/* The same with extra header lines ("Name: value", NULL-terminated list,
 * copied) and, with no_auth, without MLflow's credentials (Bearer and Basic)
 * nor its TLS settings (a request to a third party, e.g. an OpenTelemetry
 * collector or another user's MLflow, must not carry them). */
int rf_http_request_ex(rf_http *h, const char *method, const char *url, char *body, size_t len,
		       const char *content_type, const char *const *headers, bool no_auth,
		       enum rf_http_retry retry, rf_http_done cb, void *arg);

/* The same with the body read back from a sealed rf_blob (taken over, freed
 * with the request): from its start at each attempt, never held whole. */
struct rf_blob;
int rf_http_request_blob(rf_http *h, const char *method, const char *url, struct rf_blob *body,
			 const char *content_type, const char *const *headers, bool no_auth,
			 enum rf_http_retry retry, rf_http_done cb, void *arg);

/* End every request in flight or waiting to retry: each callback is called
 * with status 0 so its owner can free what it attached.  Later requests are
 * refused (-ECANCELED).  rf_http_free() does this too; call it earlier when
 * the callbacks' owners are freed before the rf_http. */
void rf_http_cancel_all(rf_http *h);

/* Make every request waiting for a retry due now (e.g. when stopping). */
void rf_http_retry_now(rf_http *h);

/* Requests queued, in flight or waiting to retry. */
size_t rf_http_pending(rf_http *h);
void rf_http_stats(rf_http *h, struct rf_http_stats *st);

/* A credential ring's destination: the sidecar's credentials may go to
 * `uri`'s scheme+host+port as well as the tracking server's. */
int rf_http_allow_origin(rf_http *h, const char *uri);

#endif
