/*
 * ringflowd - the per-host sidecar: drain the ring, upload to MLflow.
 *
 * One thread, one io_uring loop: the ring's wakeup (FUTEX_WAIT on its parked
 * word), libcurl's sockets and timers, signals (signalfd).  Records are
 * decoded (untrusted: malformed ones are counted and skipped), folded into
 * MLflow runs by rf_track and uploaded in batches.  SIGTERM/SIGINT: stop
 * taking records, flush what is pending (bounded), exit.
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rf_config.h"
#include "rf_ctl.h"
#include "rf_decode.h"
#include "rf_detach.h"
#include "rf_dest.h"
#include "rf_gate.h"
#include "rf_http.h"
#include "rf_journal.h"
#include "rf_loop.h"
#include "rf_mlflow.h"
#include "rf_prom.h"
#include "rf_redact.h"
#include "rf_ring.h"
#include "rf_safefile.h"
#include "rf_status.h"
#include "rf_track.h"
#include "rf_traces.h"
#include "rf_version.h"
#include "ringflow.h"

/* At most one line per `period_ms` for a repeating condition; the lines
 * not written are counted and said in the next one. */
struct rate_limit {
	uint64_t next_ms, suppressed;
};

#define RF_LOG_PERIOD_MS 10000

static bool rate_ok(struct rate_limit *rl, uint64_t now_ms, unsigned long long *suppressed)
{
	if (now_ms < rl->next_ms) {
		rl->suppressed++;
		return false;
	}
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->next_ms = now_ms + RF_LOG_PERIOD_MS;
	return true;
}

/* status file and Prometheus endpoint (ops_* below) */
struct ops {
	rf_status *status;
	rf_prom *prom;
	uint64_t started_ns, published_ms, scanned_ms, spool_bytes, spool_files, last_err_ns;
	char last_err[512];
	/* auth failures and refused credentials, as last logged (rate-limited) */
	uint64_t auth_seen, auth_warned_ms, creds_seen;
	bool auth_failing;
};

struct daemon {
	struct rf_config c;
	struct ops ops;
	rf_ring *ring;
	rf_loop *loop;
	rf_http *http;
	rf_dests *dests; /* each run to its destination (rf_dest.h) */
	rf_journal *journal;
	uint64_t journaled_since_reset;
	bool rec_orphan; /* the last record came from an orphan spill file */
	uint64_t orphan_recs;
	struct rf_gate gate; /* spool and memory bounds (rf_gate.h) */
	uint64_t spill_corrupt_seen; /* spill files quarantined, as last logged */
	uint64_t ring_corrupt_seen, hdr_changed_seen; /* ring damage, as last logged */
	struct rate_limit rl_ring_err, rl_ring_damage, rl_spill, rl_journal;
	uint64_t traces_behind_seen; /* "server not keeping up" episodes, as last logged */
	int sigfd;
	volatile int stopping;
	uint64_t malformed, records;
};

static void logf_(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* logfmt: ts=... level=... msg="..." */
static void logf_(const char *level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if (*p == '"' || *p == '\n')
			*p = '\'';
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char t[32];
	strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
	/* Errors quote records and answers: no known secret value in the log. */
	size_t n = strlen(msg);
	char *m = strdup(msg);
	if (m)
		rf_redact_text(&m, &n);
	fprintf(stderr, "ts=%s.%03ldZ level=%s msg=\"%s\"\n", t, ts.tv_nsec / 1000000, level,
		m ? m : "(out of memory)");
	free(m);
}

static const char *env(const char *a, const char *b)
{
	const char *v = getenv(a);
	if ((!v || !*v) && b)
		v = getenv(b);
	return v && *v ? v : NULL;
}

static bool truthy(const char *v)
{
	return v && (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"));
}

/* The ring the hook chose for one credential set (/ringflow-<uid>-c<8 hex>,
 * docs/DESIGN.md "Destinations"), served owner-only: the user paired the
 * credentials this sidecar inherited with the evals writing to it, so they
 * go to every destination those evals name. */
static bool credential_ring(const char *ring)
{
	unsigned uid;
	char hex[9], end;
	if (!ring || rf_ring_group_requested())
		return false;
	return sscanf(ring, "/ringflow-%u-c%8[0-9a-f]%c", &uid, hex, &end) == 2 &&
	       uid == (unsigned)geteuid() && strlen(hex) == 8;
}

/* Decode (records are untrusted) and fold into the MLflow state. */
static void feed(struct daemon *d, int type, const void *data, uint32_t len)
{
	rf_decoded dec;
	const char *why = NULL;
	d->records++;
	if (rf_decode(&dec, data, len, &why) == 0) {
		rf_dests_record(d->dests, type, dec.root);
	} else {
		if (d->malformed++ < 10)
			logf_("warn", "malformed record (type %d, %u bytes) skipped: %s", type, len, why);
	}
	rf_decoded_free(&dec);
}

static void on_replay(int type, const void *data, uint32_t len, void *arg)
{
	feed(arg, type, data, len);
}

static void wait_orphan_room(struct daemon *d);

static int on_rec(const struct rf_ring_rec *rec, void *arg)
{
	struct daemon *d = arg;
	if (rf_journal_seen(d->journal, rec))
		return 0; /* journaled before a restart; the ring had not freed it */
	rf_journal_append(d->journal, rec);
	d->journaled_since_reset++;
	d->rec_orphan = rec->flags & RF_REC_ORPHAN;
	if (d->rec_orphan && ++d->orphan_recs % 1024 == 0)
		wait_orphan_room(d);
	feed(d, rec->type, rec->data, rec->len);
	return 0;
}

static void on_signal(rf_loop *l, int fd, unsigned events, void *arg)
{
	(void)l;
	(void)events;
	struct daemon *d = arg;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof si) == sizeof si)
		d->stopping = 1;
}

/* Long ring work (a large or damaged spill file) stops for SIGTERM/SIGINT:
 * they are blocked and read from the signalfd by the loop, so a pending one
 * is seen with sigpending(). */
static int stop_requested(void *arg)
{
	struct daemon *d = arg;
	sigset_t p;
	return d->stopping ||
	       (sigpending(&p) == 0 && (sigismember(&p, SIGTERM) || sigismember(&p, SIGINT)));
}

static void on_futex(rf_loop *l, void *arg)
{
	(void)l;
	(void)arg; /* the wakeup itself is the event: the loop goes round */
}

static unsigned long long traces_held(struct daemon *d)
{
	struct rf_traces_stats x;
	rf_dests_traces_stats(d->dests, &x);
	return (unsigned long long)x.held;
}

static void report_traces(struct daemon *d, const char *level)
{
	struct rf_traces_stats x;
	struct rf_track_stats ts;
	rf_dests_traces_stats(d->dests, &x);
	rf_dests_track_stats(d->dests, &ts);
	if (!x.traces && !x.late)
		return;
	logf_(level,
	      "traces=%llu traces_done=%llu traces_failed=%llu spans=%llu spans_sent=%llu "
	      "spans_failed=%llu spans_forced=%llu assessments=%llu late=%llu otlp_requests=%llu "
	      "info_requests=%llu export_spans=%llu export_failed=%llu run_ends_held=%llu "
	      "run_end_hold_expired=%llu trace_mem_bytes=%llu traces_spooled=%llu "
	      "traces_spooled_now=%llu trace_spool_bytes=%llu last_error='%s'",
	      (unsigned long long)x.traces, (unsigned long long)x.traces_done,
	      (unsigned long long)x.traces_failed, (unsigned long long)x.spans,
	      (unsigned long long)x.spans_sent, (unsigned long long)x.spans_failed,
	      (unsigned long long)x.spans_forced, (unsigned long long)x.assessments,
	      (unsigned long long)x.late, (unsigned long long)x.otlp_requests,
	      (unsigned long long)x.info_requests, (unsigned long long)x.export_spans,
	      (unsigned long long)x.export_failed, (unsigned long long)ts.ends_held,
	      (unsigned long long)ts.end_hold_expired, (unsigned long long)x.mem_bytes,
	      (unsigned long long)x.spooled_total, (unsigned long long)x.spooled,
	      (unsigned long long)x.spool_bytes, x.last_error);
}

/* The spool and memory bounds (rf_gate.h): closed = take nothing from the ring. */
static bool gate_closed(struct daemon *d)
{
	struct rf_track_stats ts;
	struct rf_http_stats hs;
	struct rf_traces_stats xs;
	rf_dests_track_stats(d->dests, &ts);
	rf_http_stats(d->http, &hs);
	rf_dests_traces_stats(d->dests, &xs);
	/* Traces weigh their bytes (complete ones past half of it wait on disk). */
	struct rf_gate_in in = {.now_ms = rf_loop_now_ms(), .journal_bytes = rf_journal_size(d->journal),
				.journal_failing = rf_journal_failing(d->journal),
				.pending = ts.pending, .trace_bytes = xs.mem_bytes,
				.http_ok = hs.ok, .http_pending = rf_http_pending(d->http)};
	if (rf_gate_update(&d->gate, &in)) {
		char msg[512];
		rf_gate_describe(&d->gate, &in, msg, sizeof msg);
		logf_(rf_gate_closed(&d->gate) ? "warn" : "info", "%s", msg);
	}
	if (d->gate.reason == RF_GATE_MEMORY && xs.spans_unsent)
		rf_dests_pressure(d->dests); /* held spans must be able to drain */
	return rf_gate_closed(&d->gate);
}

/* A spill file comes in as one batch (hundreds of MB): the memory bound
 * stops it too (asked every MiB of it).  The file stays and is read again
 * from its start once the gate opens; what was journaled is skipped.  Not
 * an orphan file (its producer died before its marker was in the ring): its
 * records have no stable position, the journal cannot tell which were
 * taken, so it is read whole, waiting for room (wait_orphan_room). */
static int ring_interrupt(void *arg)
{
	struct daemon *d = arg;
	if (stop_requested(d))
		return 1;
	return !d->rec_orphan && gate_closed(d) && d->gate.reason == RF_GATE_MEMORY;
}

static void report(struct daemon *d, const char *level)
{
	struct rf_track_stats ts;
	struct rf_http_stats hs;
	struct rf_ring_stats rs;
	struct rf_journal_stats js;
	rf_journal_stats(d->journal, &js);
	rf_dests_track_stats(d->dests, &ts);
	rf_http_stats(d->http, &hs);
	rf_ring_stats(d->ring, &rs);
	logf_(level,
	      "records=%llu malformed=%llu invalid=%llu bad_fields=%llu runs_created=%llu runs_reused=%llu runs_ended=%llu "
	      "metrics=%llu params=%llu tags=%llu batches=%llu rejected=%llu pending=%llu "
	      "requests=%llu retries=%llu http_failed=%llu ring_spilled=%llu ring_dropped=%llu "
	      "ring_abandoned=%llu journal_records=%llu journal_errors=%llu artifacts=%llu "
	      "artifacts_failed=%llu last_error='%s'",
	      (unsigned long long)d->records, (unsigned long long)d->malformed,
	      (unsigned long long)ts.invalid, (unsigned long long)ts.bad_fields,
	      (unsigned long long)ts.runs_created, (unsigned long long)ts.runs_reused,
	      (unsigned long long)ts.runs_ended, (unsigned long long)ts.metrics,
	      (unsigned long long)ts.params, (unsigned long long)ts.tags,
	      (unsigned long long)ts.batches, (unsigned long long)ts.rejected,
	      (unsigned long long)ts.pending, (unsigned long long)hs.requests,
	      (unsigned long long)hs.retries, (unsigned long long)hs.failed,
	      (unsigned long long)rs.spilled, (unsigned long long)rs.dropped,
	      (unsigned long long)rs.abandoned, (unsigned long long)js.records,
	      (unsigned long long)js.write_errors, (unsigned long long)ts.artifacts,
	      (unsigned long long)ts.artifacts_failed, ts.last_error[0] ? ts.last_error : hs.last_error);
	const struct rf_gate *g = &d->gate;
	logf_(level,
	      "spool journal_bytes=%llu journal_corrupt=%llu journal_corrupt_bytes=%llu "
	      "ring_spill_failed=%llu ring_spill_corrupt=%llu ring_corrupt=%llu ring_corrupt_bytes=%llu "
	      "ring_hdr_changed=%llu gate_spool_full=%llu gate_memory=%llu "
	      "gate_journal=%llu gate_closed_ms=%llu",
	      (unsigned long long)rf_journal_size(d->journal), (unsigned long long)js.corrupt,
	      (unsigned long long)js.corrupt_bytes, (unsigned long long)rs.spill_failed,
	      (unsigned long long)rs.spill_corrupt, (unsigned long long)rs.corrupt,
	      (unsigned long long)rs.corrupt_bytes, (unsigned long long)rs.hdr_changed, (unsigned long long)g->closes[RF_GATE_SPOOL_FULL],
	      (unsigned long long)g->closes[RF_GATE_MEMORY], (unsigned long long)g->closes[RF_GATE_JOURNAL],
	      (unsigned long long)(g->closed_ms +
				   (rf_gate_closed(g) ? rf_loop_now_ms() - g->closed_at : 0)));
	report_traces(d, level);
	struct rf_dests_stats ds;
	rf_dests_stats(d->dests, &ds);
	if (ds.destinations > 1 || ds.refused_runs)
		logf_(level, "destinations=%llu refused_runs=%llu refused_records=%llu",
		      (unsigned long long)ds.destinations, (unsigned long long)ds.refused_runs,
		      (unsigned long long)ds.refused_records);
}

/* ---- ops: the stats file (rf_status) and /metrics (rf_prom) ---- */

static void ops_snap(struct rf_status_snap *s, void *arg)
{
	struct daemon *d = arg;
	struct rf_track_stats ts;
	struct rf_http_stats hs;
	struct rf_ring_stats rs;
	struct rf_journal_stats js;
	rf_dests_track_stats(d->dests, &ts);
	rf_http_stats(d->http, &hs);
	rf_ring_stats(d->ring, &rs);
	rf_journal_stats(d->journal, &js);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	memset(s, 0, sizeof *s);
	s->pid = getpid();
	s->state = d->stopping ? RF_STATUS_STOPPING : RF_STATUS_RUNNING;
	s->started_ns = d->ops.started_ns;
	s->updated_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	s->ring_created_ns = rs.created_ns;
	s->ring_pos = rs.head; /* released: journaled and folded */
	s->ring_tail = rs.tail;
	s->ring_capacity = rs.capacity;
	s->spilled = rs.spilled;
	s->spill_failed = rs.spill_failed;
	s->spill_ingested = rs.spill_ingested;
	s->spill_corrupt = rs.spill_corrupt;
	s->dropped = rs.dropped;
	s->claim_timeouts = rs.claim_timeouts;
	s->abandoned = rs.abandoned;
	s->ring_corrupt = rs.corrupt;
	s->ring_corrupt_bytes = rs.corrupt_bytes;
	s->ring_hdr_changed = rs.hdr_changed;
	s->records_in = d->records;
	s->malformed = d->malformed;
	s->records_out = ts.metrics + ts.params + ts.tags;
	s->metrics = ts.metrics;
	s->params = ts.params;
	s->tags = ts.tags;
	s->batches = ts.batches;
	s->rejected = ts.rejected;
	s->runs_created = ts.runs_created;
	s->runs_ended = ts.runs_ended;
	s->artifacts = ts.artifacts;
	s->artifacts_failed = ts.artifacts_failed;
	s->pending = ts.pending;
	s->http_pending = rf_http_pending(d->http);
	s->requests = hs.requests;
	s->retries = hs.retries;
	s->http_failed = hs.failed;
	s->http_2xx = hs.status_2xx;
	s->http_4xx = hs.status_4xx;
	s->http_5xx = hs.status_5xx;
	s->http_errors = hs.conn_errors;
	s->journal_records = js.records;
	s->journal_errors = js.write_errors;
	s->journal_replayed = js.replayed;
	s->spool_bytes = d->ops.spool_bytes;
	s->spool_files = d->ops.spool_files;
	s->drained = s->http_pending == 0 && rf_dests_drained(d->dests);
	struct rf_traces_stats xs;
	rf_dests_traces_stats(d->dests, &xs);
	s->traces = xs.traces;
	s->traces_done = xs.traces_done;
	s->traces_failed = xs.traces_failed;
	s->spans_sent = xs.spans_sent;
	s->spans_failed = xs.spans_failed;
	s->traces_late = xs.late;
	s->traces_waiting = xs.waiting;
	s->trace_lag_ms = xs.lag_ms;
	s->traces_behind = xs.behind;
	if (xs.behind != d->traces_behind_seen) {
		d->traces_behind_seen = xs.behind;
		logf_("warn",
		      "traces: MLflow is not keeping up: %llu complete traces waiting, the oldest for "
		      "%.1f s; all are kept and sent as it answers (status: traces_waiting, "
		      "trace_lag_ms)",
		      (unsigned long long)xs.waiting, (double)xs.lag_ms / 1000.0);
	}
	s->invalid = ts.invalid;
	s->bad_fields = ts.bad_fields;
	s->runs_failed = ts.runs_failed;
	s->spans_forced = xs.spans_forced;
	s->export_failed = xs.export_failed;
	s->journal_corrupt = js.corrupt;
	s->creds_refused = hs.creds_refused;
	s->keys_capped = ts.keys_capped;
	s->spans_capped = xs.spans_capped;
	s->auth_failures = hs.auth_failures;
	s->auth_failing = hs.auth_failing;
	snprintf(s->auth_origin, sizeof s->auth_origin, "%.255s", hs.auth_origin);
	struct rf_dests_stats dst;
	rf_dests_stats(d->dests, &dst);
	s->refused_records = dst.refused_records;
	const char *err = ts.last_error[0] ? ts.last_error : hs.last_error;
	if (strcmp(err, d->ops.last_err)) {
		snprintf(d->ops.last_err, sizeof d->ops.last_err, "%s", err);
		d->ops.last_err_ns = s->updated_ns;
	}
	s->last_error_ns = d->ops.last_err_ns;
	snprintf(s->last_error, sizeof s->last_error, "%s", d->ops.last_err);
	rf_redact_uri(d->c.uri, s->tracking_uri, sizeof s->tracking_uri); /* no password */
	snprintf(s->experiment, sizeof s->experiment, "%s",
		 d->c.experiment ? d->c.experiment : "inspect_ai");
}

/* Publish every RF_STATUS_PERIOD_MS (the loop wakes at least every 50 ms);
 * the spool is scanned once a second (a readdir of a small directory). */
/* Auth failures are retried without end, so they must be loud: a WARN line
 * when they start and at most every 30 s while they go on; one when they
 * stop.  Credentials refused for another origin: a WARN per new refusal,
 * rate-limited the same way. */
static void warn_auth(struct daemon *d, uint64_t now)
{
	struct rf_http_stats hs;
	rf_http_stats(d->http, &hs);
	struct ops *o = &d->ops;
	bool due = !o->auth_warned_ms || now - o->auth_warned_ms >= 30000;
	if (hs.auth_failures != o->auth_seen && hs.auth_failing && (!o->auth_failing || due)) {
		logf_("warn",
		      "auth failing for %s: HTTP %ld (%llu refusals since start); retrying with "
		      "backoff, nothing is dropped (check MLFLOW_TRACKING_TOKEN / "
		      "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)",
		      hs.auth_origin, hs.auth_status, (unsigned long long)hs.auth_failures);
		o->auth_seen = hs.auth_failures;
		o->auth_warned_ms = now;
		o->auth_failing = true;
	} else if (o->auth_failing && !hs.auth_failing) {
		logf_("info", "auth for %s works again", hs.auth_origin);
		o->auth_failing = false;
	}
	if (hs.creds_refused != o->creds_seen && due) {
		logf_("warn",
		      "refused to send MLflow credentials to %s: not the tracking server's scheme, "
		      "host and port (%llu requests refused since start; the artifact store must be "
		      "served by the tracking server, or reached without its credentials)",
		      hs.refused_origin, (unsigned long long)hs.creds_refused);
		o->creds_seen = hs.creds_refused;
		o->auth_warned_ms = now;
	}
}

static void ops_tick(struct daemon *d, bool force, uint64_t state);

/* An orphan spill file cannot be stopped mid-way (ring_interrupt): while the
 * memory gate is closed, its reading waits here, every 1,024 records, and
 * the loop keeps uploading (and serving status) until the gate opens or a
 * stop is asked for. */
static void wait_orphan_room(struct daemon *d)
{
	while (!stop_requested(d) && gate_closed(d) && d->gate.reason == RF_GATE_MEMORY) {
		rf_dests_pump(d->dests, false);
		ops_tick(d, false, 0);
		rf_loop_run_once(d->loop, 50);
	}
}

static void ops_tick(struct daemon *d, bool force, uint64_t state)
{
	uint64_t now = rf_loop_now_ms();
	warn_auth(d, now);
	if (!force && now - d->ops.published_ms < RF_STATUS_PERIOD_MS)
		return;
	if (force || now - d->ops.scanned_ms >= 1000) {
		struct rf_ring_stats rs;
		rf_ring_stats(d->ring, &rs);
		rf_status_spool_usage(d->c.spool, d->c.ring, rs.created_ns, &d->ops.spool_bytes,
				      &d->ops.spool_files);
		d->ops.scanned_ms = now;
	}
	struct rf_status_snap s;
	ops_snap(&s, d);
	if (state)
		s.state = state;
	rf_status_publish(d->ops.status, &s);
	d->ops.published_ms = now;
}

static int ops_start(struct daemon *d)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	d->ops.started_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	char path[600];
	int rc = rf_status_path(path, sizeof path, d->c.spool, d->c.ring);
	if (rc == 0 && (rc = rf_status_open(&d->ops.status, path)) != 0)
		logf_("warn", "stats file: %s (ringflowd status will not see this sidecar)",
		      rc == -ENAMETOOLONG ? "path too long" : rf_ring_errmsg());
	ops_tick(d, true, 0);
	if (d->c.metrics_port > 0) {
		rc = rf_prom_start(&d->ops.prom, d->loop, (int)d->c.metrics_port, ops_snap, d);
		if (rc) {
			logf_("error", "cannot serve metrics on 127.0.0.1:%ld: %s", d->c.metrics_port,
			      strerror(-rc));
			return rc;
		}
		logf_("info", "metrics on http://127.0.0.1:%ld/metrics", d->c.metrics_port);
	}
	return 0;
}

static void ops_stop(struct daemon *d)
{
	ops_tick(d, true, RF_STATUS_EXITED);
	rf_prom_stop(d->ops.prom);
	rf_status_close(d->ops.status);
}

/* Damage the ring recovered from (rf_ring_recover.c) and spill files it
 * quarantined: counted by the ring, said here with the ring's message for
 * the latest one, at most once per RF_LOG_PERIOD_MS each. */
static void ring_damage(struct daemon *d)
{
	struct rf_ring_stats rs;
	unsigned long long more = 0;
	uint64_t now = rf_loop_now_ms();
	if (rf_ring_stats(d->ring, &rs))
		return;
	if (rs.spill_corrupt != d->spill_corrupt_seen && rate_ok(&d->rl_spill, now, &more)) {
		d->spill_corrupt_seen = rs.spill_corrupt; /* say which file and why */
		logf_("warn", "%s (%llu corrupt spill files in all)", rf_ring_errmsg(),
		      (unsigned long long)rs.spill_corrupt);
	}
	if ((rs.corrupt != d->ring_corrupt_seen || rs.hdr_changed != d->hdr_changed_seen) &&
	    rate_ok(&d->rl_ring_damage, now, &more)) {
		logf_("warn", "ring damaged by a process that maps it: %llu corrupt records skipped "
			      "(%llu bytes lost), %llu rewrites of its header undone; latest: %s",
		      (unsigned long long)rs.corrupt, (unsigned long long)rs.corrupt_bytes,
		      (unsigned long long)rs.hdr_changed, rf_ring_errmsg());
		d->ring_corrupt_seen = rs.corrupt;
		d->hdr_changed_seen = rs.hdr_changed;
	}
}

/* Everything from opening the ring to the end of the loop: the exit code. */
static int serve(struct daemon *d, const sigset_t *mask);

/* The tracking URI as logs and status show it: a password masked. */
static char shown_uri[1024];

int main(int argc, char **argv)
{
	static struct daemon d;
	if (argc > 1 && (!strcmp(argv[1], "status") || !strcmp(argv[1], "flush")))
		return rf_ctl_main(argc - 1, argv + 1);
	/* Block the stop signals first: a SIGTERM that arrives while starting
	 * is then read from the signalfd and handled as a clean stop. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int rc = rf_config_parse(&d.c, argc, argv);
	if (rc == 1)
		return 0; /* --help, --version */
	if (rc) {
		fprintf(stderr, "ringflowd: %s\n", d.c.err);
		return 2;
	}
	if (d.c.warn[0])
		fprintf(stderr, "ringflowd: warning: %s\n", d.c.warn);
	rf_redact_init(); /* secret values this process knows (the eval's, when autostarted) */
	/* A password inside the tracking URI is a secret like the others, and
	 * never shown: logs, stats file and status get the masked form. */
	rf_redact_add_uri(d.c.uri);
	rf_redact_uri(d.c.uri, shown_uri, sizeof shown_uri);
	static char spool[256], spool_abs[PATH_MAX];
	if (!d.c.spool) {
		rf_ring_default_spool_dir(spool, sizeof spool);
		d.c.spool = spool;
	}
	/* Owner-only unless group access was asked for (--group,
	 * RINGFLOW_RING_GROUP=1): the ring, spill files, journal, id map, log.
	 * Created if missing; a name another user took is named, with its
	 * owner and what to do, not just "Permission denied". */
	if (rf_ring_spool_check(d.c.spool) < 0) {
		fprintf(stderr, "ringflowd: %s\n", rf_ring_errmsg());
		return 1;
	}
	if (access(d.c.spool, W_OK | X_OK) < 0 || !realpath(d.c.spool, spool_abs)) {
		fprintf(stderr, "ringflowd: spool dir %s: %s (set RINGFLOW_SPOOL_DIR or --spool-dir to "
				"a directory this user can write)\n", d.c.spool, strerror(errno));
		return 1;
	}
	d.c.spool = spool_abs; /* --detach changes to "/" */
	if (d.c.detach && (rc = rf_detach_start())) {
		fprintf(stderr, "ringflowd: cannot detach: %s\n", strerror(-rc));
		return 1;
	}
	rc = serve(&d, &mask);
	rf_detach_ready(rc); /* a start that failed (no-op once ready) */
	return rc;
}

static int serve(struct daemon *d, const sigset_t *mask)
{
	/* Opened by the daemon process itself (after --detach forked): the
	 * ring records this pid as its consumer. */
	struct rf_ring_opts ro = {.flags = RF_RING_CREATE | RF_RING_CONSUMER, .spool_dir = d->c.spool};
	int rc = rf_ring_open(&d->ring, d->c.ring, &ro);
	if (rc == -EBUSY) {
		/* Another sidecar serves this ring: nothing to do (autostart races). */
		fprintf(stderr, "ringflowd: %s; exiting\n", rf_ring_errmsg());
		return 0;
	}
	if (rc) {
		fprintf(stderr, "ringflowd: %s\n", rf_ring_errmsg());
		return 1;
	}
	rf_ring_set_interrupt(d->ring, ring_interrupt, d);
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC);
	/* The tracking URI's userinfo is a credential from our environment:
	 * kept with the others, never in the URI we log, compare or report. */
	static char own_uri[512], ui_user[256], ui_pass[256];
	if (rf_dest_uri_normalize(d->c.uri, own_uri, sizeof own_uri, ui_user, sizeof ui_user,
				  ui_pass, sizeof ui_pass) == 0) {
		d->c.uri = own_uri;
		if (ui_user[0] && !d->c.user) {
			d->c.user = ui_user;
			d->c.password = ui_pass;
		}
	}
	struct rf_http_opts ho = {.token = d->c.token, .username = d->c.user, .password = d->c.password,
				  .insecure_tls = d->c.insecure, .ca_path = d->c.ca, .origin = d->c.uri};
	/* As inspect-mlflow: INSPECT_MLFLOW_LOG_ARTIFACTS wins over the legacy
	 * MLFLOW_INSPECT_LOG_ARTIFACTS; anything but "false" means on. */
	const char *art = env("INSPECT_MLFLOW_LOG_ARTIFACTS", "MLFLOW_INSPECT_LOG_ARTIFACTS");
	struct rf_dests_opts to = {.uri = d->c.uri, .experiment = d->c.experiment,
				   .state_dir = d->c.spool, .flush_ms = d->c.flush_ms,
				   .max_batch = (int)d->c.batch_max,
				   .log_artifacts = !art || strcasecmp(art, "false"),
				   .creds_everywhere = credential_ring(d->c.ring)};
	/* Traces: MLFLOW_INSPECT_TRACING=true here traces every run; an eval
	 * with it set asks for its own runs through its run_start record. */
	const char *tm = env("MLFLOW_INSPECT_TRACE_MODE", NULL);
	const char *otlp = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", NULL);
	static char otlp_buf[1024];
	if (!otlp && env("OTEL_EXPORTER_OTLP_ENDPOINT", NULL)) {
		snprintf(otlp_buf, sizeof otlp_buf, "%s/v1/traces", env("OTEL_EXPORTER_OTLP_ENDPOINT", NULL));
		otlp = otlp_buf;
	}
	to.traces = (struct rf_traces_opts){
		.inspect_all = truthy(env("MLFLOW_INSPECT_TRACING", NULL)),
		.run_mode_default = tm && !strcasecmp(tm, "run"),
		.flush_ms = d->c.flush_ms,
		.timeout_ms = d->c.trace_timeout_s * 1000L,
		.otlp_endpoint = otlp,
		.otlp_headers = env("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
		.spool_dir = d->c.spool,
		.mem_max = (uint64_t)d->c.trace_mem_mb << 20};
	if ((rc = rf_loop_new(&d->loop)) || (rc = rf_http_new(&d->http, d->loop, &ho)) ||
	    (rc = rf_dests_new(&d->dests, d->http, &to))) {
		fprintf(stderr, "ringflowd: startup failed: %s\n", strerror(-rc));
		return 1;
	}
	/* The journal: what a killed predecessor took from the ring goes to
	 * MLflow first (re-sent rows are exact duplicates, which MLflow drops). */
	struct rf_ring_stats rs;
	rf_ring_stats(d->ring, &rs);
	char jpath[600];
	const char *rn = d->c.ring ? d->c.ring : "default";
	snprintf(jpath, sizeof jpath, "%s/journal-%s.rfj", d->c.spool, rn[0] == '/' ? rn + 1 : rn);
	rf_journal_set_interrupt(stop_requested, d);
	rc = rf_journal_open(&d->journal, jpath, rs.created_ns, d->c.fsync_policy, on_replay, d);
	if (rc == -EINTR) { /* SIGTERM during the replay: the journal is whole for the next start */
		logf_("info", "stopped while replaying the journal %s", jpath);
		rf_ring_close(d->ring);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "ringflowd: cannot open the journal: %s\n", rf_ring_errmsg());
		return 1;
	}
	struct rf_journal_stats js;
	rf_journal_stats(d->journal, &js);
	if (js.replayed)
		logf_("info", "replayed %llu journaled records", (unsigned long long)js.replayed);
	if (js.last_error[0])
		logf_("warn", "%s", js.last_error);
	d->spill_corrupt_seen = rs.spill_corrupt;
	d->ring_corrupt_seen = rs.corrupt;
	d->hdr_changed_seen = rs.hdr_changed;
	rf_gate_init(&d->gate, (uint64_t)(d->c.spool_max_mb > 0 ? d->c.spool_max_mb : 0) << 20,
		     (uint64_t)(d->c.pending_max > 0 ? d->c.pending_max : 0), rf_loop_now_ms());
	d->gate.trace_max = (uint64_t)d->c.trace_mem_mb << 20; /* all destinations together */
	rf_loop_watch(d->loop, d->sigfd, POLLIN, on_signal, d);
	if (ops_start(d))
		return 1;
	if (d->c.detach) {
		char log[PATH_MAX + 32];
		snprintf(log, sizeof log, "%s/ringflowd.log", d->c.spool);
		if ((rc = rf_detach_redirect(log, rf_ring_group_requested()))) {
			fprintf(stderr, "ringflowd: cannot detach: log: %s\n", rf_ring_errmsg());
			return 1;
		}
	}
	if (d->c.warn[0])
		logf_("warn", "%s", d->c.warn);
	rf_detach_ready(0); /* serving: `ringflowd --detach` exits 0 */
	logf_("info", "ringflowd %s (pid %d) serving ring %s -> %s (experiment %s%s)", RF_VERSION, (int)getpid(),
	      d->c.ring ? d->c.ring : "(default)", shown_uri, d->c.experiment ? d->c.experiment : "inspect_ai",
	      d->c.idle_exit_ms ? "; exits when idle" : "");

	uint64_t idle_since = rf_loop_now_ms(), last_report = idle_since, stop_at = 0;
	for (;;) {
		int n = 0;
		bool ring_backoff = false;
		bool closed = gate_closed(d);
		if (rf_journal_failing(d->journal) && rf_journal_flush(d->journal) == 0) {
			rf_ring_release(d->ring); /* the held batch is journaled at last */
			closed = gate_closed(d);
		}
		if ((!d->stopping || !stop_at) && !closed) {
			/* Held: the ring frees the batch only once it is journaled. */
			n = rf_ring_consume_held(d->ring, on_rec, d, 4096);
			unsigned long long more = 0;
			if (n == -EINTR) {
				if (d->stopping) /* else the memory gate: logged as it closed */
					logf_("info", "%s", rf_ring_errmsg()); /* read again at the next start */
			} else if (n < 0) {
				/* Not a busy loop: the next try waits (ring_backoff). */
				if (rate_ok(&d->rl_ring_err, rf_loop_now_ms(), &more))
					logf_("error", "%s (%llu more like it)", rf_ring_errmsg(), more);
			}
			if (n < 0) {
				ring_backoff = true;
				n = 0;
			}
			ring_damage(d);
			if (rf_journal_flush(d->journal) < 0) {
				rf_journal_stats(d->journal, &js);
				if (rate_ok(&d->rl_journal, rf_loop_now_ms(), &more))
					logf_("error", "%s (%llu more like it)", js.last_error, more);
				closed = gate_closed(d); /* keep the batch in the ring */
			} else {
				rf_ring_release(d->ring);
			}
		}
		if (d->stopping && !stop_at && n == 0) {
			stop_at = rf_loop_now_ms() + (uint64_t)d->c.shutdown_ms;
			rf_http_retry_now(d->http); /* the flush window is short: try at once */
			logf_("info", "stopping: flushing for at most %ld ms", d->c.shutdown_ms);
		}
		rf_dests_pump(d->dests, stop_at != 0);
		ops_tick(d, false, 0);
		uint64_t now = rf_loop_now_ms();
		bool idle = n == 0 && rf_dests_idle(d->dests) &&
			    rf_http_pending(d->http) == 0;
		if (idle && d->journaled_since_reset && rf_dests_empty(d->dests)) {
			if (rf_journal_reset(d->journal) == 0) /* all of it is in MLflow */
				d->journaled_since_reset = 0;
		}
		if (stop_at && (idle || now >= stop_at))
			break;
		if (!idle)
			idle_since = now;
		else if (d->c.idle_exit_ms > 0 && now - idle_since >= (uint64_t)d->c.idle_exit_ms) {
			logf_("info", "idle for %ld ms with nothing pending: exiting (the hook starts a "
			      "sidecar again at the next eval)", d->c.idle_exit_ms);
			break;
		}
		if (now - last_report >= 60000) {
			report(d, "info");
			last_report = now;
		}
		if (n > 0) {
			rf_loop_run_once(d->loop, 0);
			continue;
		}
		if ((closed || ring_backoff) && !stop_at) { /* the ring is not read: just serve MLflow */
			rf_loop_run_once(d->loop, 50);
			continue;
		}
		uint32_t *word, val;
		int wait_ms = (int)(d->c.flush_ms < 50 ? d->c.flush_ms : 50);
		if (!stop_at && rf_ring_park(d->ring, &word, &val)) {
			if (rf_loop_futex_wait(d->loop, word, val, on_futex, d) != 0)
				wait_ms = 2; /* no io_uring futex on this kernel: poll */
			rf_loop_run_once(d->loop, wait_ms);
			rf_ring_unpark(d->ring);
		} else {
			rf_loop_run_once(d->loop, stop_at ? 10 : 0);
		}
	}
	bool left = !rf_dests_idle(d->dests) || !rf_dests_empty(d->dests);
	report(d, left ? "warn" : "info");
	if (left) /* the shutdown window ran out: say where the rest is */
		logf_("warn",
		      "stopping with work not yet in MLflow (%llu traces held): it stays in the "
		      "journal %s and is sent at the next start",
		      (unsigned long long)traces_held(d), jpath);
	ops_stop(d);
	rf_journal_close(d->journal);
	rf_http_cancel_all(d->http); /* before the state its callbacks touch is freed */
	rf_dests_free(d->dests);
	rf_http_free(d->http);
	rf_loop_free(d->loop);
	rf_ring_close(d->ring);
	return 0;
}
