/*
 * rf_dest.h - destinations: each Inspect run to its own MLflow server and
 * experiment (docs/DESIGN.md "Destinations").
 *
 * A destination is (tracking URI, experiment, artifact switch), created the
 * first time a run_start names it and reused after; tracing and its mode are
 * per run (rf_traces).  Each destination has its own tracker (rf_track) and
 * trace uploader (rf_traces), so its in-flight limits, retries and failures
 * are its own: a server that is down, refuses the credentials or does not
 * resolve holds back only the runs sent to it.  One rf_mlflow per distinct
 * URI; all share the one rf_http (libcurl multi) and its connection cache.
 *
 * Routing: run_start maps its run_id to the destination it names (or to the
 * sidecar's own when it names none); task_start maps its eval_id to its
 * run's; every other record goes where its run_id (else eval_id) maps, and
 * records with neither (C programs, tracing records 24-27) to the sidecar's
 * own destination.  The journal replays run_starts, so routing survives a
 * restart.
 *
 * Credentials: the sidecar's (rf_http_opts) go only to destinations on its
 * own scheme://host:port, unless `creds_everywhere` (a credential ring the
 * hook chose for exactly these credentials, owner-only).
 */
#ifndef RF_DEST_H
#define RF_DEST_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rf_http.h"
#include "rf_traces.h"
#include "rf_track.h"

typedef struct rf_dests rf_dests;

#define RF_DEST_MAX 64 /* destinations per sidecar; runs naming more are refused (counted) */

struct rf_dests_opts {
	const char *uri;          /* the sidecar's MLFLOW_TRACKING_URI (userinfo stripped) */
	const char *experiment;   /* its MLFLOW_EXPERIMENT_NAME (NULL: inspect_ai) */
	bool log_artifacts;       /* its artifact switch */
	bool creds_everywhere;    /* its credentials go to every destination */
	const char *state_dir;    /* id maps */
	int64_t metrics_ms;       /* a running run's metrics are sent at least this often */
	int max_batch;
	struct rf_traces_opts traces;
	/* Every tracker's, uploader's and the routing's handled failures, a
	 * destination other than the sidecar's own named in the message. */
	struct rf_err_sink err;
};

struct rf_dests_stats {
	uint64_t destinations;    /* created so far (the sidecar's own included) */
	uint64_t refused_runs;    /* run_starts naming an unusable destination */
	uint64_t refused_records; /* records of those runs, dropped */
};

int rf_dests_new(rf_dests **out, rf_http *http, const struct rf_dests_opts *o);
void rf_dests_free(rf_dests *d);
void rf_dests_record(rf_dests *d, int type, const msgpack_object *root);
void rf_dests_pump(rf_dests *d, bool flush_now);
bool rf_dests_idle(rf_dests *d);        /* every tracker and uploader idle */
bool rf_dests_drained(rf_dests *d);     /* rf_track_drained + rf_traces_idle, everywhere */
bool rf_dests_empty(rf_dests *d);       /* no run open, no trace held, anywhere */
/* Sums over destinations. */
void rf_dests_track_stats(rf_dests *d, struct rf_track_stats *st);
void rf_dests_traces_stats(rf_dests *d, struct rf_traces_stats *st);
uint64_t rf_dests_trace_mem(rf_dests *d); /* the traces' mem_bytes, cheaply */
void rf_dests_stats(rf_dests *d, struct rf_dests_stats *st);
/* Memory pressure: every idle uploader sends the ended spans it holds
 * (rf_traces_pressure). */
void rf_dests_pressure(rf_dests *d);

/* "scheme://host[:port]/path" without userinfo or a trailing '/', for
 * comparing URIs (NULL-safe; -EINVAL when not an http(s) URL with a host).
 * With user/pass non-NULL, the userinfo is returned there (percent-decoded). */
int rf_dest_uri_normalize(const char *uri, char *out, size_t cap, char *user, size_t ucap,
			  char *pass, size_t pcap);
/* Same scheme, host and port (default ports filled in). */
bool rf_dest_same_origin(const char *a, const char *b);

#endif
