/* rf_daemon_int.h - the daemon's state, shared by rf_daemon.c (setup),
 * rf_daemon_cycle.c (drain/journal/pump) and rf_daemon_ops.c (logs, stats
 * file, /metrics). */
#ifndef RF_DAEMON_INT_H
#define RF_DAEMON_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "rf_config.h"
#include "rf_dest.h"
#include "rf_gate.h"
#include "rf_http.h"
#include "rf_journal.h"
#include "rf_log.h"
#include "rf_loop.h"
#include "rf_prom.h"
#include "rf_ring.h"
#include "rf_status.h"

typedef struct rf_daemon rf_daemon;

/* status file and Prometheus endpoint (rf_daemon_ops.c) */
struct rf_daemon_ops {
	rf_status *status;
	rf_prom *prom;
	uint64_t started_ns, published_ms, scanned_ms, spool_bytes, spool_files, last_err_ns;
	char last_err[512];
	char http_err[512]; /* the last retried HTTP failure (rf_http's on_retry) */
	char mod_err[512];  /* the last failure a tracker, uploader or the routing handled */
	struct rf_rate_limit rl_mod_err;
	/* auth failures and refused credentials, as last logged (rate-limited) */
	uint64_t auth_seen, auth_warned_ms, creds_seen;
	bool auth_failing;
};

struct rf_daemon {
	struct rf_config *c;
	struct rf_daemon_ops ops;
	rf_ring *ring;
	rf_loop *loop;
	rf_http *http;
	rf_dests *dests; /* each run to its destination (rf_dest.h) */
	rf_journal *journal;
	char jpath[600];
	uint64_t journaled_since_reset;
	uint64_t ring_head; /* the ring's head after the last batch (trickle()) */
	bool rec_orphan; /* the last record came from an orphan spill file */
	uint64_t orphan_recs;
	struct rf_gate gate; /* spool and memory bounds (rf_gate.h) */
	uint64_t spill_corrupt_seen; /* spill files quarantined, as last logged */
	uint64_t ring_corrupt_seen, hdr_changed_seen; /* ring damage, as last logged */
	struct rf_rate_limit rl_ring_err, rl_ring_damage, rl_spill, rl_journal;
	uint64_t traces_behind_seen; /* "server not keeping up" episodes, as last logged */
	bool tspool_said;            /* "traces wait on disk" logged, its end not yet */
	struct rf_rate_limit rl_tspool;
	int sigfd;
	volatile int stopping;
	uint64_t malformed, records;
	char own_uri[512], ui_user[256], ui_pass[256]; /* the tracking URI, its userinfo apart */
	char shown_uri[1024]; /* the tracking URI as given, a password masked (the start line) */
	char otlp[1024];
};

/* rf_daemon.c: a failed call's error with context: wrapped when the callee
 * set one since the last rf_err_clear(), else made from rc (-errno). */
int rf_daemon_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* rf_daemon_cycle.c: ring reads stop for SIGTERM/SIGINT (arg: the daemon). */
int rf_daemon_stop_requested(void *arg);
/* Ring reads also stop for the memory gate (a spill file mid-way; see
 * rf_daemon_cycle.c), and for a stop. */
int rf_daemon_ring_interrupt(void *arg);
/* The stop signals' fd, on the loop (arg: the daemon). */
void rf_daemon_on_signal(rf_loop *l, int fd, unsigned events, void *arg);
/* Replayed journal records (arg: the daemon). */
void rf_daemon_on_replay(int type, const void *data, uint32_t len, void *arg);

/* Every component's counters at once (rf_daemon_ops.c). */
struct rf_daemon_stats {
	struct rf_track_stats track;   /* summed over destinations */
	struct rf_traces_stats traces; /* ditto */
	struct rf_dests_stats dests;
	struct rf_http_stats http;
	struct rf_ring_stats ring;
	struct rf_journal_stats journal;
};
void rf_daemon_stats(rf_daemon *d, struct rf_daemon_stats *s);

/* rf_daemon_ops.c */
/* The destinations' error sink (rf_err.h): logged (rate-limited) and kept
 * for the status file's last error (arg: the daemon). */
void rf_daemon_on_error(void *arg, const char *msg);
int rf_daemon_ops_start(rf_daemon *d);
/* Publish the stats file (every RF_STATUS_PERIOD_MS, or now if force);
 * state overrides the running/stopping state when non-zero. */
void rf_daemon_ops_tick(rf_daemon *d, bool force, uint64_t state);
void rf_daemon_ops_stop(rf_daemon *d);
/* The counters as log lines (every minute, and at exit). */
void rf_daemon_report(rf_daemon *d, const char *level);
/* Ring damage and quarantined spill files, said (rate-limited). */
void rf_daemon_ring_damage(rf_daemon *d);
unsigned long long rf_daemon_traces_held(rf_daemon *d);

#endif
