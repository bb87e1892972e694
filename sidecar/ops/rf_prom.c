/*
 * rf_prom.c - /metrics in Prometheus text format 0.0.4 (see rf_prom.h).
 *
 * libmicrohttpd does the HTTP; this file only renders the text and ties
 * MHD's external-epoll mode to rf_loop: watch MHD's epoll fd, run MHD when
 * it is readable, and keep one loop timer at the timeout MHD reports.
 */
#include "rf_err.h"
#include "rf_log.h"
#include "rf_prom.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

/* MHD's own messages as ringflowd's log lines. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = 0;
	rf_logf("warn", "metrics endpoint: %s", msg);
}

struct rf_prom {
	struct MHD_Daemon *mhd;
	rf_loop *loop;
	int timer; /* handed out by the loop */
	int epfd;
	rf_prom_snap_fn fn;
	void *arg;
};

static void on_timer(rf_loop *l, void *arg);

/* MHD must run again no later than the timeout it reports (idle
 * connections are closed, partly read requests finished). */
static void run(struct rf_prom *p)
{
	MHD_run(p->mhd);
	MHD_UNSIGNED_LONG_LONG t;
	if (MHD_get_timeout(p->mhd, &t) == MHD_YES)
		rf_loop_timer_set(p->loop, p->timer, (int64_t)(t > 60000 ? 60000 : t));
	else
		rf_loop_timer_set(p->loop, p->timer, -1);
}

static void on_timer(rf_loop *l, void *arg)
{
	(void)l;
	run(arg);
}

static void on_epoll(rf_loop *l, int fd, unsigned events, void *arg)
{
	(void)l;
	(void)fd;
	(void)events;
	run(arg);
}

static void metric(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
		(unsigned long long)v);
}

/* Every metric that is one counter or gauge of the snapshot. */
static const struct metric {
	const char *name, *type, *help;
	size_t off; /* of a uint64_t in struct rf_status_snap */
} metrics[] = {
	{"ringflow_records_in_total", "counter",
	 "records taken from the ring (incl. spilled and replayed ones)",
	 offsetof(struct rf_status_snap, records_in)},
	{"ringflow_records_out_total", "counter",
	 "entities (metrics, params, tags) accepted by MLflow",
	 offsetof(struct rf_status_snap, records_out)},
	{"ringflow_batches_total", "counter",
	 "log-batch requests completed",
	 offsetof(struct rf_status_snap, batches)},
	{"ringflow_retries_total", "counter",
	 "HTTP attempts repeated after a retryable failure",
	 offsetof(struct rf_status_snap, retries)},
	{"ringflow_http_failed_total", "counter",
	 "requests whose final answer was not 2xx (incl. 404s of lookups)",
	 offsetof(struct rf_status_snap, http_failed)},
	{"ringflow_rejected_total", "counter",
	 "entities MLflow refused (4xx), reported",
	 offsetof(struct rf_status_snap, rejected)},
	{"ringflow_malformed_total", "counter",
	 "records refused by the decoder",
	 offsetof(struct rf_status_snap, malformed)},
	{"ringflow_dropped_total", "counter",
	 "records dropped by producers (DROP policy)",
	 offsetof(struct rf_status_snap, dropped)},
	{"ringflow_spill_failed_total", "counter",
	 "records producers could neither put in the ring nor spill",
	 offsetof(struct rf_status_snap, spill_failed)},
	{"ringflow_claim_timeouts_total", "counter",
	 "WAIT-policy claims that found the ring full",
	 offsetof(struct rf_status_snap, claim_timeouts)},
	{"ringflow_abandoned_total", "counter",
	 "claims of dead producers turned into padding",
	 offsetof(struct rf_status_snap, abandoned)},
	{"ringflow_spilled_total", "counter",
	 "records producers wrote to spill files",
	 offsetof(struct rf_status_snap, spilled)},
	{"ringflow_spill_ingested_total", "counter",
	 "spilled records delivered",
	 offsetof(struct rf_status_snap, spill_ingested)},
	{"ringflow_spill_corrupt_total", "counter",
	 "spill files quarantined as corrupt",
	 offsetof(struct rf_status_snap, spill_corrupt)},
	{"ringflow_ring_corrupt_total", "counter",
	 "corrupt ring records skipped (forged headers or padding)",
	 offsetof(struct rf_status_snap, ring_corrupt)},
	{"ringflow_ring_corrupt_bytes_total", "counter",
	 "ring bytes skipped with corrupt records (records lost)",
	 offsetof(struct rf_status_snap, ring_corrupt_bytes)},
	{"ringflow_ring_header_rewrites_total", "counter",
	 "rewrites of the ring's shared header (capacity, head, tail) undone",
	 offsetof(struct rf_status_snap, ring_hdr_changed)},
	{"ringflow_spool_bytes", "gauge",
	 "bytes of this ring's spill files and journal",
	 offsetof(struct rf_status_snap, spool_bytes)},
	{"ringflow_ring_capacity_bytes", "gauge",
	 "ring data area",
	 offsetof(struct rf_status_snap, ring_capacity)},
	{"ringflow_pending", "gauge",
	 "entities taken from the ring not yet sent",
	 offsetof(struct rf_status_snap, pending)},
	{"ringflow_artifact_jobs", "gauge",
	 "tasks whose artifacts are being built from their Inspect log",
	 offsetof(struct rf_status_snap, artifact_jobs)},
	{"ringflow_http_pending", "gauge",
	 "requests queued, in flight or waiting to retry",
	 offsetof(struct rf_status_snap, http_pending)},
	{"ringflow_runs_created_total", "counter",
	 "MLflow runs created",
	 offsetof(struct rf_status_snap, runs_created)},
	{"ringflow_runs_ended_total", "counter",
	 "MLflow runs given a final status",
	 offsetof(struct rf_status_snap, runs_ended)},
	{"ringflow_artifacts_total", "counter",
	 "artifacts uploaded",
	 offsetof(struct rf_status_snap, artifacts)},
	{"ringflow_artifacts_failed_total", "counter",
	 "artifacts that failed for good",
	 offsetof(struct rf_status_snap, artifacts_failed)},
	{"ringflow_journal_errors_total", "counter",
	 "journal write errors",
	 offsetof(struct rf_status_snap, journal_errors)},
	{"ringflow_traces_total", "counter",
	 "traces begun (MLFLOW_INSPECT_TRACING)",
	 offsetof(struct rf_status_snap, traces)},
	{"ringflow_traces_done_total", "counter",
	 "traces fully in MLflow",
	 offsetof(struct rf_status_snap, traces_done)},
	{"ringflow_traces_failed_total", "counter",
	 "traces MLflow refused",
	 offsetof(struct rf_status_snap, traces_failed)},
	{"ringflow_spans_sent_total", "counter",
	 "spans MLflow accepted",
	 offsetof(struct rf_status_snap, spans_sent)},
	{"ringflow_spans_failed_total", "counter",
	 "spans MLflow refused",
	 offsetof(struct rf_status_snap, spans_failed)},
	{"ringflow_traces_waiting", "gauge",
	 "complete traces not yet all in MLflow (kept, never dropped)",
	 offsetof(struct rf_status_snap, traces_waiting)},
	{"ringflow_trace_lag_ms", "gauge",
	 "how long the oldest complete trace has waited for MLflow",
	 offsetof(struct rf_status_snap, trace_lag_ms)},
	{"ringflow_traces_behind_total", "counter",
	 "times the oldest complete trace waited over 10 s (server not keeping up)",
	 offsetof(struct rf_status_snap, traces_behind)},
	{"ringflow_traces_late_total", "counter",
	 "records for a trace already uploaded (dropped)",
	 offsetof(struct rf_status_snap, traces_late)},
	{"ringflow_auth_failures_total", "counter",
	 "401/403/407 answers (retried with backoff; nothing dropped)",
	 offsetof(struct rf_status_snap, auth_failures)},
	{"ringflow_auth_failing", "gauge",
	 "1 while the last answer with credentials was an auth failure",
	 offsetof(struct rf_status_snap, auth_failing)},
	{"ringflow_trace_mem_bytes", "gauge",
	 "what the traces held in memory weigh (bounded by RINGFLOW_TRACE_MEM_MB)",
	 offsetof(struct rf_status_snap, trace_mem_bytes)},
	{"ringflow_trace_mem_max_bytes", "gauge",
	 "RINGFLOW_TRACE_MEM_MB in bytes (0: no bound)",
	 offsetof(struct rf_status_snap, trace_mem_max)},
	{"ringflow_traces_spooled", "gauge",
	 "complete traces waiting for MLflow on disk now (the trace spool)",
	 offsetof(struct rf_status_snap, traces_spooled)},
	{"ringflow_traces_spooled_total", "counter",
	 "complete traces written to the trace spool (memory bound reached; nothing dropped)",
	 offsetof(struct rf_status_snap, traces_spooled_total)},
	{"ringflow_trace_spool_bytes", "gauge",
	 "bytes the trace spool holds now",
	 offsetof(struct rf_status_snap, trace_spool_bytes)},
};

/* The gate's reasons as ringflow_intake_paused{reason} and the times it
 * closed for each (RF_STATUS_GATE_OPEN has no series). */
static const struct {
	uint64_t gate;
	size_t closes; /* offset of its uint64_t counter in struct rf_status_snap */
} gates[] = {
	{RF_STATUS_GATE_SPOOL_FULL, offsetof(struct rf_status_snap, gate_spool_full)},
	{RF_STATUS_GATE_MEMORY, offsetof(struct rf_status_snap, gate_memory)},
	{RF_STATUS_GATE_JOURNAL, offsetof(struct rf_status_snap, gate_journal)},
};

/* The exposition text of one snapshot (malloc'ed; NULL on ENOMEM). */
static char *rf_prom_render(const struct rf_status_snap *s, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	if (!f)
		return NULL;
	fprintf(f, "# HELP ringflow_up 1 while ringflowd serves its ring\n# TYPE ringflow_up gauge\n"
		   "ringflow_up 1\n");
	fprintf(f, "# HELP ringflow_start_time_seconds when ringflowd started (Unix time)\n"
		   "# TYPE ringflow_start_time_seconds gauge\nringflow_start_time_seconds %.3f\n",
		(double)s->started_ns / 1e9);
	fprintf(f, "# HELP ringflow_logged_total entities accepted by MLflow, by kind\n"
		   "# TYPE ringflow_logged_total counter\n"
		   "ringflow_logged_total{kind=\"metric\"} %llu\n"
		   "ringflow_logged_total{kind=\"param\"} %llu\n"
		   "ringflow_logged_total{kind=\"tag\"} %llu\n",
		(unsigned long long)s->metrics, (unsigned long long)s->params,
		(unsigned long long)s->tags);
	fprintf(f, "# HELP ringflow_http_requests_total HTTP attempts to MLflow by outcome "
		   "(error: no response)\n# TYPE ringflow_http_requests_total counter\n"
		   "ringflow_http_requests_total{status=\"2xx\"} %llu\n"
		   "ringflow_http_requests_total{status=\"4xx\"} %llu\n"
		   "ringflow_http_requests_total{status=\"5xx\"} %llu\n"
		   "ringflow_http_requests_total{status=\"error\"} %llu\n",
		(unsigned long long)s->http_2xx, (unsigned long long)s->http_4xx,
		(unsigned long long)s->http_5xx, (unsigned long long)s->http_errors);
	metric(f, "ringflow_ring_used_bytes", "gauge", "ring bytes claimed and not yet freed",
	       s->ring_tail - s->ring_pos);
	for (size_t i = 0; i < sizeof metrics / sizeof *metrics; i++) {
		uint64_t v;
		memcpy(&v, (const char *)s + metrics[i].off, sizeof v);
		metric(f, metrics[i].name, metrics[i].type, metrics[i].help, v);
	}
	fprintf(f, "# HELP ringflow_intake_paused 1 while ringflowd takes no records from the ring, "
		   "by reason (they wait in the ring, then producers spill)\n"
		   "# TYPE ringflow_intake_paused gauge\n");
	for (size_t i = 0; i < sizeof gates / sizeof *gates; i++)
		fprintf(f, "ringflow_intake_paused{reason=\"%s\"} %d\n",
			rf_status_gate_name(gates[i].gate), s->gate == gates[i].gate);
	fprintf(f, "# HELP ringflow_intake_pauses_total times ringflowd stopped taking records, by "
		   "reason\n# TYPE ringflow_intake_pauses_total counter\n");
	for (size_t i = 0; i < sizeof gates / sizeof *gates; i++) {
		uint64_t v;
		memcpy(&v, (const char *)s + gates[i].closes, sizeof v);
		fprintf(f, "ringflow_intake_pauses_total{reason=\"%s\"} %llu\n",
			rf_status_gate_name(gates[i].gate), (unsigned long long)v);
	}
	fprintf(f, "# HELP ringflow_intake_paused_seconds_total time ringflowd took no records\n"
		   "# TYPE ringflow_intake_paused_seconds_total counter\n"
		   "ringflow_intake_paused_seconds_total %.3f\n",
		(double)s->gate_closed_ms / 1000.0);
	fprintf(f, "# HELP ringflow_lost_total data that will not reach MLflow, by counter "
		   "(docs/OPERATIONS.md)\n# TYPE ringflow_lost_total counter\n");
	for (size_t i = 0; i < rf_status_loss_count; i++)
		fprintf(f, "ringflow_lost_total{kind=\"%s\"} %llu\n", rf_status_loss_table[i].name,
			(unsigned long long)rf_status_loss_value(s, i));
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_len, void **req)
{
	(void)version;
	(void)upload;
	(void)upload_len;
	(void)req;
	struct rf_prom *p = cls;
	struct MHD_Response *r;
	unsigned code = MHD_HTTP_OK;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		static const char m[] = "only GET\n";
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
		r = MHD_create_response_from_buffer(sizeof m - 1, (void *)m, MHD_RESPMEM_PERSISTENT);
	} else if (strcmp(url, "/metrics") && strcmp(url, "/")) {
		static const char m[] = "ringflowd: metrics are at /metrics\n";
		code = MHD_HTTP_NOT_FOUND;
		r = MHD_create_response_from_buffer(sizeof m - 1, (void *)m, MHD_RESPMEM_PERSISTENT);
	} else {
		struct rf_status_snap s;
		memset(&s, 0, sizeof s);
		p->fn(&s, p->arg);
		size_t n = 0;
		char *text = rf_prom_render(&s, &n);
		if (!text)
			return MHD_NO;
		r = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
		if (!r)
			free(text);
	}
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type",
				code == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8"
						    : "text/plain");
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

int rf_prom_start(rf_prom **out, rf_loop *loop, int port, rf_prom_snap_fn fn, void *arg)
{
	*out = NULL;
	if (port <= 0 || port > 65535)
		return rf_err_set(EINVAL, "metrics port %d: outside 1..65535", port);
	struct rf_prom *p = calloc(1, sizeof *p);
	if (!p)
		return rf_err_set(ENOMEM, "metrics endpoint: out of memory");
	p->loop = loop;
	p->timer = rf_loop_timer_new(loop, on_timer, p);
	if (p->timer < 0) {
		int rc = p->timer;
		free(p);
		return rf_err_set(-rc, "metrics endpoint: no loop timer left");
	}
	p->fn = fn;
	p->arg = arg;
	/* Loopback only: the counters are not secret, but nothing on this
	 * host should be reachable from elsewhere by default. */
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	p->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL,
				  on_request, p, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				  MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT,
				  10u, MHD_OPTION_END);
	int rc = 0;
	const union MHD_DaemonInfo *info = NULL;
	if (!p->mhd)
		rc = rf_err_set_sys(errno ? errno : EADDRINUSE, "cannot serve metrics on "
				    "127.0.0.1:%d", port);
	else if (!(info = MHD_get_daemon_info(p->mhd, MHD_DAEMON_INFO_EPOLL_FD)))
		rc = rf_err_set(ENOTSUP, "cannot serve metrics: libmicrohttpd has no epoll");
	else if ((rc = rf_loop_watch(loop, info->epoll_fd, POLLIN, on_epoll, p)))
		rf_err_set_sys(rc, "cannot serve metrics: watching its socket");
	if (rc) {
		if (p->mhd)
			MHD_stop_daemon(p->mhd);
		rf_loop_timer_del(loop, p->timer);
		free(p);
		return rc;
	}
	p->epfd = info->epoll_fd;
	*out = p;
	return 0;
}

void rf_prom_stop(rf_prom *p)
{
	if (!p)
		return;
	rf_loop_watch(p->loop, p->epfd, 0, NULL, NULL);
	rf_loop_timer_del(p->loop, p->timer);
	MHD_stop_daemon(p->mhd);
	free(p);
}
