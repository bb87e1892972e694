/*
 * rf_daemon.c - the daemon's setup and teardown (see rf_daemon.h): the
 * spool directory, the ring, the loop and HTTP client, each run's
 * destination, the journal (a killed predecessor's records first), the
 * stats file and /metrics.  The drain/journal/pump cycle is in
 * rf_daemon_cycle.c, what the operator sees in rf_daemon_ops.c.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "rf_daemon.h"
#include "rf_daemon_int.h"
#include "rf_detach.h"
#include "rf_err.h"
#include "rf_redact.h"
#include "ringflow.h"

int rf_daemon_fail(int rc, const char *fmt, ...)
{
	char ctx[RF_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof ctx, fmt, ap);
	va_end(ap);
	if (rf_err_code())
		return rf_err_wrap("%s", ctx);
	return rf_err_set_sys(rc, "%s", ctx);
}

static const char *env(const char *a, const char *b)
{
	const char *v = getenv(a);
	if ((!v || !*v) && b)
		v = getenv(b);
	return v && *v ? v : NULL;
}

/* MLFLOW_INSPECT_TRACING as inspect-mlflow and the hook read it: on iff
 * "true" in any case ("1" or "yes" leave it off, as they do there). */
static bool inspect_tracing_on(const char *v)
{
	return v && !strcasecmp(v, "true");
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

int rf_daemon_prepare(struct rf_config *c)
{
	static char spool[256], spool_abs[PATH_MAX];
	rf_redact_init(); /* secret values this process knows (the eval's, when autostarted) */
	/* A password inside the tracking URI is a secret like the others, and
	 * never shown: logs, stats file and status get the masked form. */
	rf_redact_add_uri(c->uri);
	if (!c->spool) {
		rf_ring_default_spool_dir(spool, sizeof spool);
		c->spool = spool;
	}
	/* Owner-only unless group access was asked for (--group,
	 * RINGFLOW_RING_GROUP=1): the ring, spill files, journal, id map, log.
	 * Created if missing; a name another user took is named, with its
	 * owner and what to do, not just "Permission denied". */
	int rc = rf_ring_spool_check(c->spool);
	if (rc < 0)
		return rc; /* the message is in rf_err (rf_ring_errmsg) */
	if (access(c->spool, W_OK | X_OK) < 0 || !realpath(c->spool, spool_abs))
		return rf_err_set_sys(errno, "spool dir %s (set RINGFLOW_SPOOL_DIR or --spool-dir to a "
				      "directory this user can write)", c->spool);
	c->spool = spool_abs; /* --detach changes to "/" */
	return 0;
}

/* The MLflow side: loop, HTTP client, destinations (the sidecar's own first). */
/* rf_http retries a failed attempt: its reason is the status' last error. */
static void on_http_retry(void *arg)
{
	rf_daemon *d = arg;
	snprintf(d->ops.http_err, sizeof d->ops.http_err, "%s", rf_err_msg());
}

/* The journal's replay found damage and handled it (rf_journal_set_note). */
static void on_journal_note(void *arg, const char *msg)
{
	(void)arg;
	rf_logf("warn", "%s", msg);
}

static int start_mlflow(rf_daemon *d)
{
	struct rf_config *c = d->c;
	/* The start line shows the URI as given, a password masked. */
	rf_redact_uri(c->uri, d->shown_uri, sizeof d->shown_uri);
	/* The tracking URI's userinfo is a credential from our environment:
	 * kept with the others, never in the URI we log, compare or report. */
	if (rf_dest_uri_normalize(c->uri, d->own_uri, sizeof d->own_uri, d->ui_user, sizeof d->ui_user,
				  d->ui_pass, sizeof d->ui_pass) == 0) {
		c->uri = d->own_uri;
		if (d->ui_user[0] && !c->user) {
			c->user = d->ui_user;
			c->password = d->ui_pass;
		}
	}
	struct rf_http_opts ho = {.token = c->token, .username = c->user, .password = c->password,
				  .insecure_tls = c->insecure, .ca_path = c->ca, .origin = c->uri,
				  .on_retry = on_http_retry, .on_retry_arg = d};
	/* As inspect-mlflow: INSPECT_MLFLOW_LOG_ARTIFACTS wins over the legacy
	 * MLFLOW_INSPECT_LOG_ARTIFACTS; anything but "false" means on. */
	const char *art = env("INSPECT_MLFLOW_LOG_ARTIFACTS", "MLFLOW_INSPECT_LOG_ARTIFACTS");
	struct rf_dests_opts to = {.uri = c->uri, .experiment = c->experiment,
				   .state_dir = c->spool, .metrics_ms = c->metrics_ms,
				   .max_batch = (int)c->batch_max,
				   .log_artifacts = !art || strcasecmp(art, "false"),
				   .creds_everywhere = credential_ring(c->ring),
				   .err = {rf_daemon_on_error, d}};
	/* Traces: MLFLOW_INSPECT_TRACING=true here traces every run; an eval
	 * with it set asks for its own runs through its run_start record. */
	const char *tm = env("MLFLOW_INSPECT_TRACE_MODE", NULL);
	const char *otlp = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", NULL);
	if (!otlp && env("OTEL_EXPORTER_OTLP_ENDPOINT", NULL)) {
		snprintf(d->otlp, sizeof d->otlp, "%s/v1/traces", env("OTEL_EXPORTER_OTLP_ENDPOINT", NULL));
		otlp = d->otlp;
	}
	to.traces = (struct rf_traces_opts){
		.inspect_all = inspect_tracing_on(env("MLFLOW_INSPECT_TRACING", NULL)),
		.run_mode_default = tm && !strcasecmp(tm, "run"),
		.flush_ms = c->flush_ms,
		.timeout_ms = c->trace_timeout_s * 1000L,
		.otlp_endpoint = otlp,
		.otlp_headers = env("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
		.spool_dir = c->spool,
		.mem_max = (uint64_t)c->trace_mem_mb << 20};
	int rc;
	rf_err_clear();
	if ((rc = rf_loop_new(&d->loop)))
		return rf_daemon_fail(rc, "startup failed: event loop");
	if ((rc = rf_http_new(&d->http, d->loop, &ho)))
		return rf_daemon_fail(rc, "startup failed: HTTP client");
	if ((rc = rf_dests_new(&d->dests, d->http, &to)))
		return rf_daemon_fail(rc, "startup failed");
	return 0;
}

/* The journal: what a killed predecessor took from the ring goes to MLflow
 * first (re-sent rows are exact duplicates, which MLflow drops). */
static int open_journal(rf_daemon *d, const struct rf_ring_stats *rs)
{
	const char *rn = d->c->ring ? d->c->ring : "default";
	snprintf(d->jpath, sizeof d->jpath, "%s/journal-%s.rfj", d->c->spool, rn[0] == '/' ? rn + 1 : rn);
	rf_journal_set_interrupt(rf_daemon_stop_requested, d);
	rf_journal_set_note(&(struct rf_err_sink){on_journal_note, NULL});
	rf_err_clear();
	int rc = rf_journal_open(&d->journal, d->jpath, rs->created_ns, d->c->fsync_policy,
				 rf_daemon_on_replay, d);
	if (rc == -EINTR) /* SIGTERM during the replay: the journal is whole for the next start */
		return rf_err_set(EINTR, "stopped while replaying the journal %s", d->jpath);
	if (rc)
		return rf_daemon_fail(rc, "cannot open the journal");
	struct rf_journal_stats js;
	rf_journal_stats(d->journal, &js);
	if (js.replayed)
		rf_logf("info", "replayed %llu journaled records", (unsigned long long)js.replayed);
	return 0;
}

static int start(rf_daemon *d, const sigset_t *stop)
{
	struct rf_config *c = d->c;
	/* Opened by the daemon process itself (after --detach forked): the
	 * ring records this pid as its consumer. */
	struct rf_ring_opts ro = {.flags = RF_RING_CREATE | RF_RING_CONSUMER, .spool_dir = c->spool};
	int rc = rf_ring_open(&d->ring, c->ring, &ro);
	if (rc) /* -EBUSY: another sidecar serves this ring (autostart races) */
		return rc;
	rf_ring_set_interrupt(d->ring, rf_daemon_ring_interrupt, d);
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, stop, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0)
		return rf_err_set_sys(errno, "signalfd");
	if ((rc = start_mlflow(d)))
		return rc;
	struct rf_ring_stats rs;
	rf_ring_stats(d->ring, &rs);
	if ((rc = open_journal(d, &rs)))
		return rc;
	d->spill_corrupt_seen = rs.spill_corrupt;
	d->ring_corrupt_seen = rs.corrupt;
	d->hdr_changed_seen = rs.hdr_changed;
	rf_gate_init(&d->gate, (uint64_t)(c->spool_max_mb > 0 ? c->spool_max_mb : 0) << 20,
		     (uint64_t)(c->pending_max > 0 ? c->pending_max : 0), rf_loop_now_ms());
	d->gate.trace_max = (uint64_t)c->trace_mem_mb << 20; /* all destinations together */
	rf_loop_watch(d->loop, d->sigfd, POLLIN, rf_daemon_on_signal, d);
	if ((rc = rf_daemon_ops_start(d)))
		return rc;
	if (c->detach) {
		char log[PATH_MAX + 32];
		snprintf(log, sizeof log, "%s/ringflowd.log", c->spool);
		rf_err_clear();
		if ((rc = rf_detach_redirect(log, rf_ring_group_requested())))
			return rf_daemon_fail(rc, "cannot detach: log %s", log);
	}
	if (c->warn[0])
		rf_logf("warn", "%s", c->warn);
	return 0;
}

int rf_daemon_new(rf_daemon **out, struct rf_config *c, const sigset_t *stop)
{
	rf_daemon *d = calloc(1, sizeof *d);
	*out = NULL;
	if (!d)
		return rf_err_set(ENOMEM, "daemon: out of memory");
	d->c = c;
	d->sigfd = -1;
	int rc = start(d, stop);
	if (rc) {
		int keep = rf_err_code(); /* teardown must not replace the reason */
		char msg[RF_ERR_MAX];
		snprintf(msg, sizeof msg, "%s", rf_err_msg());
		rf_daemon_free(d);
		rf_err_set(keep ? keep : rc, "%s", msg);
		return rc;
	}
	*out = d;
	return 0;
}

void rf_daemon_free(rf_daemon *d)
{
	if (!d)
		return;
	if (d->ops.started_ns)
		rf_daemon_ops_stop(d);
	rf_journal_close(d->journal);
	if (d->http)
		rf_http_cancel_all(d->http); /* before the state its callbacks touch is freed */
	rf_dests_free(d->dests);
	rf_http_free(d->http);
	rf_loop_free(d->loop);
	if (d->sigfd >= 0)
		close(d->sigfd);
	rf_ring_close(d->ring);
	free(d);
}
