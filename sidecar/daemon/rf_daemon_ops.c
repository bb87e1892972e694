/*
 * rf_daemon_ops.c - what the daemon tells its operator: the counters as log
 * lines, the stats file `ringflowd status` reads (rf_status), /metrics
 * (rf_prom), and warnings for conditions that need a person (auth failing,
 * credentials refused, ring damage, a server not keeping up).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rf_daemon.h"
#include "rf_clock.h"
#include "rf_daemon_int.h"
#include "rf_err.h"
#include "rf_redact.h"
#include "rf_traces.h"
#include "rf_track.h"

void rf_daemon_stats(rf_daemon *d, struct rf_daemon_stats *s)
{
	memset(s, 0, sizeof *s);
	rf_dests_track_stats(d->dests, &s->track);
	rf_dests_traces_stats(d->dests, &s->traces);
	rf_dests_stats(d->dests, &s->dests);
	rf_http_stats(d->http, &s->http);
	rf_ring_stats(d->ring, &s->ring);
	rf_journal_stats(d->journal, &s->journal);
}

unsigned long long rf_daemon_traces_held(rf_daemon *d)
{
	struct rf_traces_stats x;
	rf_dests_traces_stats(d->dests, &x);
	return (unsigned long long)x.held;
}

/* One logfmt line of counters: "[what ]k=v k=v ...[ last_error='...']". */
struct counter {
	const char *name;
	uint64_t v;
};

static void log_counters(const char *level, const char *what, const struct counter *c, size_t n,
			 const char *last_error)
{
	char line[1024];
	size_t at = 0;
	int w = what ? snprintf(line, sizeof line, "%s", what) : 0;
	for (size_t i = 0; i <= n && w >= 0 && (at += (size_t)w) < sizeof line; i++) {
		if (i < n)
			w = snprintf(line + at, sizeof line - at, "%s%s=%llu", at ? " " : "",
				     c[i].name, (unsigned long long)c[i].v);
		else if (last_error)
			w = snprintf(line + at, sizeof line - at, " last_error='%s'", last_error);
		else
			break;
	}
	rf_logf(level, "%s", line);
}

#define COUNTERS(level, what, err, ...)                                                   \
	do {                                                                              \
		const struct counter c_[] = {__VA_ARGS__};                                \
		log_counters(level, what, c_, sizeof c_ / sizeof c_[0], err);             \
	} while (0)

void rf_daemon_on_error(void *arg, const char *msg)
{
	rf_daemon *d = arg;
	snprintf(d->ops.mod_err, sizeof d->ops.mod_err, "%s", msg);
	unsigned long long more = 0;
	if (!rf_rate_ok(&d->ops.rl_mod_err, rf_loop_now_ms(), &more))
		return;
	if (more)
		rf_logf("warn", "%s (%llu more before it since the last such line)", msg, more);
	else
		rf_logf("warn", "%s", msg);
}

/* Total time the gate has been closed, the current closure included. */
static uint64_t gate_closed_ms(const struct rf_gate *g)
{
	return g->closed_ms + (rf_gate_closed(g) ? rf_loop_now_ms() - g->closed_at : 0);
}

/* The counters as log lines: every minute and at exit (ringflowd status
 * and /metrics show the same and more). */
void rf_daemon_report(rf_daemon *d, const char *level)
{
	struct rf_daemon_stats a;
	rf_daemon_stats(d, &a);
	const struct rf_track_stats *ts = &a.track;
	const struct rf_http_stats *hs = &a.http;
	const struct rf_ring_stats *rs = &a.ring;
	const struct rf_journal_stats *js = &a.journal;
	const struct rf_traces_stats *x = &a.traces;
	const struct rf_gate *g = &d->gate;
	COUNTERS(level, NULL, d->ops.mod_err[0] ? d->ops.mod_err : d->ops.http_err,
		 {"records", d->records}, {"malformed", d->malformed}, {"invalid", ts->invalid},
		 {"bad_fields", ts->bad_fields}, {"runs_created", ts->runs_created},
		 {"runs_reused", ts->runs_reused}, {"runs_ended", ts->runs_ended},
		 {"metrics", ts->metrics}, {"params", ts->params}, {"tags", ts->tags},
		 {"batches", ts->batches}, {"rejected", ts->rejected}, {"pending", ts->pending},
		 {"requests", hs->requests}, {"retries", hs->retries}, {"http_failed", hs->failed},
		 {"ring_spilled", rs->spilled}, {"ring_dropped", rs->dropped},
		 {"ring_abandoned", rs->abandoned}, {"journal_records", js->records},
		 {"journal_errors", js->write_errors}, {"artifacts", ts->artifacts},
		 {"artifacts_failed", ts->artifacts_failed});
	COUNTERS(level, "spool", NULL,
		 {"journal_bytes", rf_journal_size(d->journal)}, {"journal_corrupt", js->corrupt},
		 {"journal_corrupt_bytes", js->corrupt_bytes}, {"ring_spill_failed", rs->spill_failed},
		 {"ring_spill_corrupt", rs->spill_corrupt}, {"ring_corrupt", rs->corrupt},
		 {"ring_corrupt_bytes", rs->corrupt_bytes}, {"ring_hdr_changed", rs->hdr_changed},
		 {"gate_spool_full", g->closes[RF_GATE_SPOOL_FULL]},
		 {"gate_memory", g->closes[RF_GATE_MEMORY]}, {"gate_journal", g->closes[RF_GATE_JOURNAL]},
		 {"gate_closed_ms", gate_closed_ms(g)});
	if (x->traces || x->late)
		COUNTERS(level, NULL, NULL,
			 {"traces", x->traces}, {"traces_done", x->traces_done},
			 {"traces_failed", x->traces_failed}, {"spans", x->spans},
			 {"spans_sent", x->spans_sent}, {"spans_failed", x->spans_failed},
			 {"spans_forced", x->spans_forced}, {"assessments", x->assessments},
			 {"late", x->late}, {"otlp_requests", x->otlp_requests},
			 {"info_requests", x->info_requests}, {"export_spans", x->export_spans},
			 {"export_failed", x->export_failed}, {"run_ends_held", ts->ends_held},
			 {"run_end_hold_expired", ts->end_hold_expired},
			 {"trace_mem_bytes", x->mem_bytes}, {"traces_spooled", x->spooled_total},
			 {"traces_spooled_now", x->spooled}, {"trace_spool_bytes", x->spool_bytes});
	const struct rf_dests_stats *ds = &a.dests;
	if (ds->destinations > 1 || ds->refused_runs)
		COUNTERS(level, NULL, NULL, {"destinations", ds->destinations},
			 {"refused_runs", ds->refused_runs}, {"refused_records", ds->refused_records});
}

/* ---- ops: the stats file (rf_status) and /metrics (rf_prom) ---- */

/* Complete traces going to disk mean MLflow is slower than the eval: one
 * line when that starts (at most one per RF_LOG_PERIOD_MS), one when the
 * trace spool is empty again; status and /metrics show it meanwhile. */
static void say_trace_spool(rf_daemon *d, const struct rf_traces_stats *xs)
{
	const double mib = 1024.0 * 1024.0;
	unsigned long long more = 0;
	if (xs->spooled && !d->tspool_said && rf_rate_ok(&d->rl_tspool, rf_loop_now_ms(), &more)) {
		rf_logf("info",
			"traces: complete traces now wait on disk (%llu, %.1f MiB; traces in memory "
			"%.1f MiB, bound %.1f MiB, RINGFLOW_TRACE_MEM_MB): more wait for MLflow than "
			"the bound holds; they are sent in order as it answers, nothing is dropped "
			"(status: traces_spooled)",
			(unsigned long long)xs->spooled, (double)xs->spool_bytes / mib,
			(double)xs->mem_bytes / mib, (double)d->gate.trace_max / mib);
		d->tspool_said = true;
	} else if (!xs->spooled && d->tspool_said) {
		rf_logf("info", "traces: none wait on disk any more (%llu went through the trace "
				"spool since start)", (unsigned long long)xs->spooled_total);
		d->tspool_said = false;
	}
}

static void ops_snap(struct rf_status_snap *s, void *arg)
{
	rf_daemon *d = arg;
	struct rf_daemon_stats a;
	rf_daemon_stats(d, &a);
	const struct rf_track_stats ts = a.track;
	const struct rf_http_stats hs = a.http;
	const struct rf_ring_stats rs = a.ring;
	const struct rf_journal_stats js = a.journal;
	const struct rf_traces_stats xs = a.traces;
	const struct rf_dests_stats dst = a.dests;
	memset(s, 0, sizeof *s);
	s->pid = getpid();
	s->state = d->stopping ? RF_SIDECAR_STOPPING : RF_SIDECAR_RUNNING;
	s->started_ns = d->ops.started_ns;
	s->updated_ns = rf_realtime_ns();
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
	s->artifact_jobs = ts.artifact_jobs;
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
		rf_logf("warn",
		      "traces: MLflow is not keeping up: %llu complete traces waiting, the oldest for "
		      "%.1f s; all are kept and sent as it answers (status: traces_waiting, "
		      "trace_lag_ms)",
		      (unsigned long long)xs.waiting, (double)xs.lag_ms / 1000.0);
	}
	say_trace_spool(d, &xs);
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
	s->refused_records = dst.refused_records;
	s->trace_mem_bytes = xs.mem_bytes;
	s->trace_mem_max = d->gate.trace_max;
	s->traces_spooled = xs.spooled;
	s->traces_spooled_total = xs.spooled_total;
	s->trace_spool_bytes = xs.spool_bytes;
	s->pending_max = d->gate.pending_max;
	const struct rf_gate *g = &d->gate;
	switch (g->reason) {
	case RF_GATE_OPEN: s->gate = RF_STATUS_GATE_OPEN; break;
	case RF_GATE_SPOOL_FULL: s->gate = RF_STATUS_GATE_SPOOL_FULL; break;
	case RF_GATE_MEMORY: s->gate = RF_STATUS_GATE_MEMORY; break;
	case RF_GATE_JOURNAL: s->gate = RF_STATUS_GATE_JOURNAL; break;
	}
	s->gate_spool_full = g->closes[RF_GATE_SPOOL_FULL];
	s->gate_memory = g->closes[RF_GATE_MEMORY];
	s->gate_journal = g->closes[RF_GATE_JOURNAL];
	s->gate_closed_ms = gate_closed_ms(g);
	const char *err = d->ops.mod_err[0] ? d->ops.mod_err : d->ops.http_err;
	if (strcmp(err, d->ops.last_err)) {
		snprintf(d->ops.last_err, sizeof d->ops.last_err, "%s", err);
		d->ops.last_err_ns = s->updated_ns;
	}
	s->last_error_ns = d->ops.last_err_ns;
	snprintf(s->last_error, sizeof s->last_error, "%s", d->ops.last_err);
	rf_redact_uri(d->c->uri, s->tracking_uri, sizeof s->tracking_uri); /* no password */
	snprintf(s->experiment, sizeof s->experiment, "%s",
		 d->c->experiment ? d->c->experiment : "inspect_ai");
}

/* Publish every RF_STATUS_PERIOD_MS (the loop wakes at least every 50 ms);
 * the spool is scanned once a second (a readdir of a small directory). */
/* Auth failures are retried without end, so they must be loud: a WARN line
 * when they start and at most every 30 s while they go on; one when they
 * stop.  Credentials refused for another origin: a WARN per new refusal,
 * rate-limited the same way. */
static void warn_auth(rf_daemon *d, uint64_t now)
{
	struct rf_http_stats hs;
	rf_http_stats(d->http, &hs);
	struct rf_daemon_ops *o = &d->ops;
	bool due = !o->auth_warned_ms || now - o->auth_warned_ms >= 30000;
	if (hs.auth_failures != o->auth_seen && hs.auth_failing && (!o->auth_failing || due)) {
		rf_logf("warn",
		      "auth failing for %s: HTTP %ld (%llu refusals since start); retrying with "
		      "backoff, nothing is dropped (check MLFLOW_TRACKING_TOKEN / "
		      "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)",
		      hs.auth_origin, hs.auth_status, (unsigned long long)hs.auth_failures);
		o->auth_seen = hs.auth_failures;
		o->auth_warned_ms = now;
		o->auth_failing = true;
	} else if (o->auth_failing && !hs.auth_failing) {
		rf_logf("info", "auth for %s works again", hs.auth_origin);
		o->auth_failing = false;
	}
	if (hs.creds_refused != o->creds_seen && due) {
		rf_logf("warn",
		      "refused to send MLflow credentials to %s: not the tracking server's scheme, "
		      "host and port (%llu requests refused since start; the artifact store must be "
		      "served by the tracking server, or reached without its credentials)",
		      hs.refused_origin, (unsigned long long)hs.creds_refused);
		o->creds_seen = hs.creds_refused;
		o->auth_warned_ms = now;
	}
}

void rf_daemon_ops_tick(rf_daemon *d, bool force, uint64_t state)
{
	uint64_t now = rf_loop_now_ms();
	warn_auth(d, now);
	if (!force && now - d->ops.published_ms < RF_STATUS_PERIOD_MS)
		return;
	if (force || now - d->ops.scanned_ms >= 1000) {
		struct rf_ring_stats rs;
		rf_ring_stats(d->ring, &rs);
		rf_status_spool_usage(d->c->spool, d->c->ring, rs.created_ns, &d->ops.spool_bytes,
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

int rf_daemon_ops_start(rf_daemon *d)
{
	d->ops.started_ns = rf_realtime_ns();
	char path[600];
	rf_err_clear();
	int rc = rf_status_path(path, sizeof path, d->c->spool, d->c->ring);
	if (rc == 0)
		rc = rf_status_open(&d->ops.status, path);
	if (rc) {
		rf_daemon_fail(rc, "stats file");
		rf_logf("warn", "%s (ringflowd status will not see this sidecar)", rf_err_msg());
	}
	rf_daemon_ops_tick(d, true, 0);
	if (d->c->metrics_port > 0) {
		rf_err_clear();
		rc = rf_prom_start(&d->ops.prom, d->loop, (int)d->c->metrics_port, ops_snap, d);
		if (rc)
			return rf_daemon_fail(rc, "cannot serve metrics on 127.0.0.1:%ld",
					      d->c->metrics_port);
		rf_logf("info", "metrics on http://127.0.0.1:%ld/metrics", d->c->metrics_port);
	}
	return 0;
}

void rf_daemon_ops_stop(rf_daemon *d)
{
	rf_daemon_ops_tick(d, true, RF_SIDECAR_EXITED);
	rf_prom_stop(d->ops.prom);
	rf_status_close(d->ops.status);
}

/* Damage the ring recovered from (rf_ring_recover.c) and spill files it
 * quarantined: counted by the ring, said here with the ring's message for
 * the latest one, at most once per RF_LOG_PERIOD_MS each. */
void rf_daemon_ring_damage(rf_daemon *d)
{
	struct rf_ring_stats rs;
	unsigned long long more = 0;
	uint64_t now = rf_loop_now_ms();
	if (rf_ring_stats(d->ring, &rs))
		return;
	if (rs.spill_corrupt != d->spill_corrupt_seen && rf_rate_ok(&d->rl_spill, now, &more)) {
		d->spill_corrupt_seen = rs.spill_corrupt; /* say which file and why */
		rf_logf("warn", "%s (%llu corrupt spill files in all)", rf_ring_errmsg(),
		      (unsigned long long)rs.spill_corrupt);
	}
	if ((rs.corrupt != d->ring_corrupt_seen || rs.hdr_changed != d->hdr_changed_seen) &&
	    rf_rate_ok(&d->rl_ring_damage, now, &more)) {
		rf_logf("warn", "ring damaged by a process that maps it: %llu corrupt records skipped "
			      "(%llu bytes lost), %llu rewrites of its header undone; latest: %s",
		      (unsigned long long)rs.corrupt, (unsigned long long)rs.corrupt_bytes,
		      (unsigned long long)rs.hdr_changed, rf_ring_errmsg());
		d->ring_corrupt_seen = rs.corrupt;
		d->hdr_changed_seen = rs.hdr_changed;
	}
}
