/*
 * rf_ctl.c - `ringflowd status` and `ringflowd flush` (see rf_ctl.h).
 *
 * Both attach to the ring as an observer (no create, no consumer lock: a
 * plain producer handle that never claims, so they change nothing in the
 * segment) for the ring's own counters and its consumer's pid, and read the
 * snapshot the sidecar publishes every 200 ms (rf_status.c).
 *
 * flush: "everything queued when flush started is in MLflow" means: every
 * record claimed in the ring before flush started (ring positions below the
 * tail read at start) and every record spilled to a file before it started
 * has been taken by the sidecar, and a snapshot taken after that shows
 * nothing waiting to be sent (no pending entity, no run waiting to be
 * created, no upload, run status or request queued, in flight or waiting to
 * retry).  Artifacts of a task that is still running are not "queued" yet:
 * they are built and uploaded at the task's end.
 *
 * Losses: flush succeeds (0) only if no loss counter (rf_status_loss_table)
 * is non-zero; otherwise it says which and exits RF_CTL_LOST.  The counters
 * are the sidecar's since it started and the ring's since it was created:
 * a loss is not forgotten by a later flush (it stays reported until the
 * sidecar is restarted, after the cause is dealt with; docs/OPERATIONS.md).
 */
#include "rf_clock.h"
#include "rf_ctl.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rf_ring.h"
#include "rf_status.h"

struct ctl {
	const char *cmd;
	char ring[128];
	char spool[256];
	char stats_path[600];
	long interval_ms;  /* status: rate sampling */
	double timeout_s;  /* flush */
	bool json, quiet;
};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Alive and not a zombie (a sidecar killed but not yet reaped). */
static bool pid_alive(int pid)
{
	if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
		return false;
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')'); /* comm may contain spaces */
	return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

static void human_bytes(char *b, size_t n, double v)
{
	const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(b, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void human_age(char *b, size_t n, uint64_t ns)
{
	uint64_t s = ns / 1000000000ull;
	if (s < 120)
		snprintf(b, n, "%llus", (unsigned long long)s);
	else if (s < 7200)
		snprintf(b, n, "%llum%02llus", (unsigned long long)(s / 60), (unsigned long long)(s % 60));
	else
		snprintf(b, n, "%lluh%02llum", (unsigned long long)(s / 3600),
			 (unsigned long long)(s / 60 % 60));
}

static void usage(FILE *f, const char *cmd)
{
	if (!strcmp(cmd, "flush"))
		fprintf(f,
			"usage: ringflowd flush [--ring NAME] [--spool-dir DIR] [--timeout S] [--quiet]\n"
			"Wait until everything queued in the ring when flush started is in MLflow:\n"
			"every record claimed or spilled before then has been taken by the sidecar and\n"
			"nothing it took waits to be sent (artifacts of a running task are sent at its end).\n\n"
			"  --ring NAME       ring (RINGFLOW_RING, default /ringflow-<uid>)\n"
			"  --spool-dir DIR   the sidecar's spool dir (RINGFLOW_SPOOL_DIR)\n"
			"  --timeout S       give up after S seconds (default 300; 0 = never)\n"
			"  --quiet           no progress output\n"
			"  --help\n\n"
			"A progress bar on a terminal, a line per second otherwise.\n"
			"Exit: 0 done and nothing lost, 1 timeout, 2 no sidecar serves the ring (or it\n"
			"exited), 3 error, 4 done but data was lost since the sidecar started (the\n"
			"counters are named; see ringflowd status).\n");
	else
		fprintf(f,
			"usage: ringflowd status [--ring NAME] [--spool-dir DIR] [--interval MS] [--json]\n"
			"Ring occupancy and counters, and the sidecar's: records/s in and out, upload\n"
			"backlog, spool size, retries, errors and the last error.  Works without a sidecar.\n\n"
			"  --ring NAME       ring (RINGFLOW_RING, default /ringflow-<uid>)\n"
			"  --spool-dir DIR   the sidecar's spool dir (RINGFLOW_SPOOL_DIR)\n"
			"  --interval MS     sample twice MS apart for rates (default 1000; 0 = no rates)\n"
			"  --json            one JSON object instead of text\n"
			"  --help\n\n"
			"Exit: 0 a sidecar serves the ring, 2 none does, 3 error.\n");
}

static int parse(struct ctl *c, int argc, char **argv)
{
	c->cmd = argv[0];
	c->interval_ms = 1000;
	c->timeout_s = 300;
	const char *ring = getenv("RINGFLOW_RING"), *spool = getenv("RINGFLOW_SPOOL_DIR");
	static const struct option o[] = {
		{"ring", required_argument, 0, 'r'},     {"spool-dir", required_argument, 0, 's'},
		{"interval", required_argument, 0, 'i'}, {"timeout", required_argument, 0, 't'},
		{"json", no_argument, 0, 'j'},           {"quiet", no_argument, 0, 'q'},
		{"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "r:s:i:t:jqh", o, NULL)) != -1) {
		switch (ch) {
		case 'r': ring = optarg; break;
		case 's': spool = optarg; break;
		case 'i': c->interval_ms = atol(optarg); break;
		case 't': c->timeout_s = atof(optarg); break;
		case 'j': c->json = true; break;
		case 'q': c->quiet = true; break;
		case 'h': usage(stdout, c->cmd); exit(0);
		default: usage(stderr, c->cmd); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringflowd %s: unexpected argument '%s'\n", c->cmd, argv[optind]);
		usage(stderr, c->cmd);
		return -1;
	}
	if (ring && *ring) {
		if (ring[0] != '/') /* as rf_ring_default_name and ringflowd do */
			fprintf(stderr, "ringflowd %s: warning: ring name '%s' does not start with '/' (a "
					"ring is a POSIX shared memory name: '/name'); using '/%s'\n",
				c->cmd, ring, ring);
		snprintf(c->ring, sizeof c->ring, "%s%s", ring[0] == '/' ? "" : "/", ring);
	}
	else
		rf_ring_default_name(c->ring, sizeof c->ring);
	if (spool && *spool)
		snprintf(c->spool, sizeof c->spool, "%s", spool);
	else
		rf_ring_default_spool_dir(c->spool, sizeof c->spool);
	if (rf_status_path(c->stats_path, sizeof c->stats_path, c->spool, c->ring)) {
		fprintf(stderr, "ringflowd %s: spool path too long\n", c->cmd);
		return -1;
	}
	return 0;
}

/* What status and flush look at: the ring (if it exists) and the sidecar's
 * published snapshot (if one serves the ring and publishes). */
struct view {
	int ring_rc;              /* rf_ring_open's result */
	char ring_err[256];
	struct rf_ring_stats rs;
	bool alive;               /* a live process holds the consumer lock */
	int snap_rc;              /* rf_status_read's result */
	struct rf_status_snap s;  /* valid if snap_rc == 0 */
	bool snap_current;        /* the snapshot is the live sidecar's */
	uint64_t at_ns;
};

static void look(struct ctl *c, rf_ring *r, struct view *v)
{
	memset(v, 0, sizeof *v);
	v->at_ns = rf_realtime_ns();
	if (r) {
		rf_ring_stats(r, &v->rs);
		/* The pid is only a label (anyone mapping the ring can write it):
		 * the consumer's lock says whether one is attached. */
		v->alive = rf_ring_consumer_alive(r) == 1 && pid_alive(v->rs.consumer_pid);
	}
	v->snap_rc = rf_status_read(c->stats_path, &v->s);
	v->snap_current = v->snap_rc == 0 && v->alive && v->s.pid == v->rs.consumer_pid &&
			  v->s.ring_created_ns == v->rs.created_ns && v->s.state != RF_SIDECAR_EXITED;
}

static int open_ring(struct ctl *c, rf_ring **r, struct view *v)
{
	struct rf_ring_opts o = {.spool_dir = c->spool};
	int rc = rf_ring_open(r, c->ring, &o); /* observer: no create, no consumer lock */
	if (rc) {
		*r = NULL;
		v->ring_rc = rc;
		snprintf(v->ring_err, sizeof v->ring_err, "%s",
			 rc == -ENOENT ? "does not exist (no producer or sidecar has created it)"
				       : rf_ring_errmsg());
	}
	return rc;
}

static double rate(uint64_t a, uint64_t b, uint64_t dt_ns)
{
	return dt_ns && b >= a ? (double)(b - a) * 1e9 / (double)dt_ns : 0;
}

/* The snapshot's counters in `status --json` (each a uint64_t). */
#define SNAP(f) {#f, offsetof(struct rf_status_snap, f)}
static const struct {
	const char *name;
	size_t off;
} snap_counters[] = {
	SNAP(updated_ns), SNAP(records_in), SNAP(records_out), SNAP(malformed), SNAP(metrics),
	SNAP(params), SNAP(tags), SNAP(batches), SNAP(rejected), SNAP(runs_created),
	SNAP(runs_ended), SNAP(artifacts), SNAP(pending), SNAP(http_pending), SNAP(requests),
	SNAP(retries), SNAP(http_failed), SNAP(http_2xx), SNAP(http_4xx), SNAP(http_5xx),
	SNAP(http_errors), SNAP(spool_bytes), SNAP(spool_files), SNAP(ring_pos), SNAP(traces),
	SNAP(traces_done), SNAP(traces_failed), SNAP(spans_sent), SNAP(spans_failed),
	SNAP(traces_waiting), SNAP(trace_lag_ms), SNAP(traces_behind), SNAP(auth_failures),
	SNAP(trace_mem_bytes), SNAP(trace_mem_max), SNAP(traces_spooled),
	SNAP(traces_spooled_total), SNAP(trace_spool_bytes), SNAP(pending_max),
	SNAP(gate_spool_full), SNAP(gate_memory), SNAP(gate_journal), SNAP(gate_closed_ms),
	SNAP(artifact_jobs),
};
#undef SNAP

static void print_json(struct ctl *c, const struct view *v, const struct view *v0)
{
	json_t *o = json_object();
	json_object_set_new(o, "ring", json_string(c->ring));
	json_object_set_new(o, "ring_exists", json_boolean(v->ring_rc == 0));
	if (v->ring_rc)
		json_object_set_new(o, "ring_error", json_string(v->ring_err));
	else
		json_object_set_new(o, "ring_stats", json_pack(
			"{sI sI sI sI sI sI sI sI sI sI sI sI si}",
			"capacity", (json_int_t)v->rs.capacity, "used", (json_int_t)(v->rs.tail - v->rs.head),
			"head", (json_int_t)v->rs.head, "tail", (json_int_t)v->rs.tail,
			"spilled", (json_int_t)v->rs.spilled, "spill_failed", (json_int_t)v->rs.spill_failed,
			"spill_ingested", (json_int_t)v->rs.spill_ingested,
			"spill_corrupt", (json_int_t)v->rs.spill_corrupt, "dropped", (json_int_t)v->rs.dropped,
			"claim_timeouts", (json_int_t)v->rs.claim_timeouts,
			"abandoned", (json_int_t)v->rs.abandoned, "created_ns", (json_int_t)v->rs.created_ns,
			"consumer_pid", (int)v->rs.consumer_pid));
	if (!v->ring_rc) {
		json_t *rsj = json_object_get(o, "ring_stats");
		json_object_set_new(rsj, "corrupt", json_integer((json_int_t)v->rs.corrupt));
		json_object_set_new(rsj, "corrupt_bytes", json_integer((json_int_t)v->rs.corrupt_bytes));
		json_object_set_new(rsj, "hdr_changed", json_integer((json_int_t)v->rs.hdr_changed));
		json_object_set_new(rsj, "wakeups", json_integer((json_int_t)v->rs.wakeups));
	}
	json_object_set_new(o, "sidecar_alive", json_boolean(v->alive));
	json_object_set_new(o, "stats_path", json_string(c->stats_path));
	if (v->snap_rc == 0) {
		const struct rf_status_snap *s = &v->s;
		json_t *j = json_pack("{sI sb sb ss ss ss}", "pid", (json_int_t)s->pid,
				      "current", v->snap_current, "drained", (int)s->drained,
				      "last_error", s->last_error, "tracking_uri", s->tracking_uri,
				      "experiment", s->experiment);
		for (size_t i = 0; i < sizeof snap_counters / sizeof *snap_counters; i++) {
			uint64_t x;
			memcpy(&x, (const char *)s + snap_counters[i].off, sizeof x);
			json_object_set_new(j, snap_counters[i].name, json_integer((json_int_t)x));
		}
		if (v0 && v0->snap_rc == 0 && v0->s.pid == s->pid) {
			uint64_t dt = s->updated_ns - v0->s.updated_ns;
			json_object_set_new(j, "records_in_per_s", json_real(rate(v0->s.records_in, s->records_in, dt)));
			json_object_set_new(j, "records_out_per_s", json_real(rate(v0->s.records_out, s->records_out, dt)));
		}
		json_t *lost = json_object();
		for (size_t i = 0; i < rf_status_loss_count; i++)
			json_object_set_new(lost, rf_status_loss_table[i].name,
					    json_integer((json_int_t)rf_status_loss_value(s, i)));
		json_object_set_new(j, "lost", lost);
		json_object_set_new(j, "gate", json_string(rf_status_gate_name(s->gate)));
		json_object_set_new(j, "auth_failing", json_boolean(s->auth_failing));
		if (s->auth_failing)
			json_object_set_new(j, "auth_origin", json_string(s->auth_origin));
		json_object_set_new(o, "sidecar", j);
	}
	char *txt = json_dumps(o, JSON_COMPACT);
	puts(txt ? txt : "{}");
	free(txt);
	json_decref(o);
}

static void print_text(struct ctl *c, const struct view *v, const struct view *v0)
{
	char a[32], b[32];
	if (v->ring_rc) {
		printf("ring %s: %s\n", c->ring, v->ring_err);
	} else {
		const struct rf_ring_stats *r = &v->rs;
		human_bytes(a, sizeof a, (double)(r->tail - r->head));
		human_bytes(b, sizeof b, (double)r->capacity);
		printf("ring %s: %s of %s in use (%.1f%%)\n", c->ring, a, b,
		       100.0 * (double)(r->tail - r->head) / (double)r->capacity);
		printf("  producers: spilled %llu (ingested %llu), spill failed %llu, dropped %llu, "
		       "claim timeouts %llu, abandoned %llu, corrupt spill files %llu\n",
		       (unsigned long long)r->spilled, (unsigned long long)r->spill_ingested,
		       (unsigned long long)r->spill_failed, (unsigned long long)r->dropped,
		       (unsigned long long)r->claim_timeouts, (unsigned long long)r->abandoned,
		       (unsigned long long)r->spill_corrupt);
		if (r->corrupt || r->hdr_changed)
			printf("  damage: %llu corrupt records skipped (%llu bytes lost), %llu header "
			       "rewrites undone\n", (unsigned long long)r->corrupt,
			       (unsigned long long)r->corrupt_bytes, (unsigned long long)r->hdr_changed);
		if (v0 && v0->ring_rc == 0 && v->at_ns > v0->at_ns) {
			human_bytes(a, sizeof a, rate(v0->rs.tail, r->tail, v->at_ns - v0->at_ns));
			printf("  written by producers: %s/s; consumer woken %.1f/s (%llu since the ring "
			       "was made)\n", a, rate(v0->rs.wakeups, r->wakeups, v->at_ns - v0->at_ns),
			       (unsigned long long)r->wakeups);
		} else {
			printf("  consumer woken %llu times since the ring was made\n",
			       (unsigned long long)r->wakeups);
		}
	}
	if (!v->alive) {
		printf("no sidecar is serving ring %s\n", c->ring);
		if (v->snap_rc == 0) {
			time_t t = (time_t)(v->s.updated_ns / 1000000000ull);
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(a, sizeof a, "%Y-%m-%dT%H:%M:%SZ", &tm);
			printf("  the last one (pid %lld) %s at %s: %llu records in, %llu entities out, "
			       "%llu pending%s%s\n",
			       (long long)v->s.pid, v->s.state == RF_SIDECAR_EXITED ? "exited" : "stopped updating",
			       a, (unsigned long long)v->s.records_in, (unsigned long long)v->s.records_out,
			       (unsigned long long)v->s.pending, v->s.last_error[0] ? "; last error: " : "",
			       v->s.last_error);
		}
		uint64_t bytes = 0, files = 0;
		if (v->ring_rc == 0 &&
		    rf_status_spool_usage(c->spool, c->ring, v->rs.created_ns, &bytes, &files) == 0 && files) {
			human_bytes(a, sizeof a, (double)bytes);
			printf("  spool %s: %s in %llu file(s) waiting for a sidecar\n", c->spool, a,
			       (unsigned long long)files);
		}
		return;
	}
	if (!v->snap_current) {
		printf("sidecar pid %d serves ring %s but publishes no stats at %s (%s)\n",
		       (int)v->rs.consumer_pid, c->ring, c->stats_path,
		       v->snap_rc ? strerror(-v->snap_rc) : "they belong to another process; "
							 "was it started with another --spool-dir?");
		return;
	}
	const struct rf_status_snap *s = &v->s;
	human_age(a, sizeof a, v->at_ns > s->started_ns ? v->at_ns - s->started_ns : 0);
	printf("sidecar pid %lld, up %s, %s -> %s (experiment %s)\n", (long long)s->pid, a,
	       s->state == RF_SIDECAR_STOPPING ? "stopping" : "serving", s->tracking_uri, s->experiment);
	if (v->at_ns > s->updated_ns + 5000000000ull) {
		human_age(a, sizeof a, v->at_ns - s->updated_ns);
		printf("  WARNING: its stats were last updated %s ago (is it stuck?)\n", a);
	}
	bool rates = v0 && v0->snap_rc == 0 && v0->s.pid == s->pid && s->updated_ns > v0->s.updated_ns;
	uint64_t dt = rates ? s->updated_ns - v0->s.updated_ns : 0;
	printf("  records in   %llu", (unsigned long long)s->records_in);
	if (rates)
		printf(" (%.1f/s)", rate(v0->s.records_in, s->records_in, dt));
	printf(", malformed %llu\n", (unsigned long long)s->malformed);
	printf("  records out  %llu", (unsigned long long)s->records_out);
	if (rates)
		printf(" (%.1f/s)", rate(v0->s.records_out, s->records_out, dt));
	printf(": metrics %llu, params %llu, tags %llu; rejected %llu\n",
	       (unsigned long long)s->metrics, (unsigned long long)s->params,
	       (unsigned long long)s->tags, (unsigned long long)s->rejected);
	printf("  requests %llu (2xx %llu, 4xx %llu, 5xx %llu, no response %llu), batches %llu, "
	       "retries %llu\n",
	       (unsigned long long)s->requests, (unsigned long long)s->http_2xx,
	       (unsigned long long)s->http_4xx, (unsigned long long)s->http_5xx,
	       (unsigned long long)s->http_errors, (unsigned long long)s->batches,
	       (unsigned long long)s->retries);
	human_bytes(a, sizeof a, (double)(s->ring_tail - s->ring_pos));
	printf("  backlog: %s in the ring, %llu entities pending, %llu requests queued or in flight, "
	       "%llu task(s) building artifacts%s\n",
	       a, (unsigned long long)s->pending, (unsigned long long)s->http_pending,
	       (unsigned long long)s->artifact_jobs, s->drained ? " (drained)" : "");
	human_bytes(a, sizeof a, (double)s->spool_bytes);
	printf("  spool %s: %s in %llu file(s) (spill files and journal)\n", c->spool, a,
	       (unsigned long long)s->spool_files);
	if (s->traces || s->traces_late)
		printf("  traces %llu (in MLflow %llu, failed %llu, late records %llu), spans sent %llu "
		       "(failed %llu)\n",
		       (unsigned long long)s->traces, (unsigned long long)s->traces_done,
		       (unsigned long long)s->traces_failed, (unsigned long long)s->traces_late,
		       (unsigned long long)s->spans_sent, (unsigned long long)s->spans_failed);
	if (s->traces_waiting || s->traces_behind)
		printf("  traces waiting for MLflow %llu, the oldest for %.1f s; server fell behind %llu "
		       "time(s) (nothing dropped)\n",
		       (unsigned long long)s->traces_waiting, (double)s->trace_lag_ms / 1000.0,
		       (unsigned long long)s->traces_behind);
	if (s->trace_mem_bytes || s->traces_spooled || s->traces_spooled_total) {
		human_bytes(a, sizeof a, (double)s->trace_mem_bytes);
		if (s->trace_mem_max)
			human_bytes(b, sizeof b, (double)s->trace_mem_max);
		else
			snprintf(b, sizeof b, "no bound");
		char d[32];
		human_bytes(d, sizeof d, (double)s->trace_spool_bytes);
		printf("  trace memory %s (bound %s); %llu complete traces wait on disk (%s), %llu "
		       "since start (nothing dropped)\n", a, b, (unsigned long long)s->traces_spooled, d,
		       (unsigned long long)s->traces_spooled_total);
	}
	if (s->gate) {
		char why[320];
		rf_status_gate_describe(s, why, sizeof why);
		printf("  WARNING: taking no records from the ring (%s); they wait in the ring, then "
		       "producers spill to files (nothing dropped)\n", why);
	}
	if (s->gate_spool_full || s->gate_memory || s->gate_journal)
		printf("  intake paused %llu time(s) (spool full %llu, memory %llu, journal %llu), "
		       "%.1f s in all\n",
		       (unsigned long long)(s->gate_spool_full + s->gate_memory + s->gate_journal),
		       (unsigned long long)s->gate_spool_full, (unsigned long long)s->gate_memory,
		       (unsigned long long)s->gate_journal, (double)s->gate_closed_ms / 1000.0);
	printf("  runs created %llu, ended %llu; artifacts %llu (failed %llu); journal errors %llu\n",
	       (unsigned long long)s->runs_created, (unsigned long long)s->runs_ended,
	       (unsigned long long)s->artifacts, (unsigned long long)s->artifacts_failed,
	       (unsigned long long)s->journal_errors);
	if (s->auth_failing)
		printf("  WARNING: auth failing for %s (%llu refusals; retried, nothing dropped)\n",
		       s->auth_origin, (unsigned long long)s->auth_failures);
	char lost[512];
	if (rf_status_losses(s, lost, sizeof lost)) {
		printf("  LOST since start: %s\n", lost);
		for (size_t i = 0; i < rf_status_loss_count; i++)
			if (rf_status_loss_value(s, i))
				printf("    %s: %s\n", rf_status_loss_table[i].name,
				       rf_status_loss_table[i].help);
	} else {
		printf("  lost: nothing\n");
	}
	if (s->last_error[0]) {
		human_age(a, sizeof a, v->at_ns > s->last_error_ns ? v->at_ns - s->last_error_ns : 0);
		printf("  last error (%s ago): %s\n", a, s->last_error);
	} else {
		printf("  last error: none\n");
	}
}

static int cmd_status(struct ctl *c)
{
	rf_ring *r = NULL;
	struct view v0, v;
	memset(&v0, 0, sizeof v0);
	int orc = open_ring(c, &r, &v0);
	char err[256];
	snprintf(err, sizeof err, "%s", v0.ring_err);
	look(c, r, &v0);
	bool sampled = c->interval_ms > 0 && v0.snap_current;
	if (sampled) {
		sleep_ms(c->interval_ms);
		look(c, r, &v);
	} else {
		v = v0;
	}
	v.ring_rc = orc;
	snprintf(v.ring_err, sizeof v.ring_err, "%s", err);
	if (c->json)
		print_json(c, &v, sampled ? &v0 : NULL);
	else
		print_text(c, &v, sampled ? &v0 : NULL);
	if (r)
		rf_ring_close(r);
	if (orc && orc != -ENOENT)
		return RF_CTL_ERROR;
	return v.alive ? RF_CTL_OK : RF_CTL_NO_SIDECAR;
}

static void progress(bool tty, double frac, const char *detail)
{
	if (!tty) {
		printf("flush: %3.0f%% %s\n", frac * 100, detail);
		fflush(stdout);
		return;
	}
	char bar[31];
	int fill = (int)(frac * 30 + 0.5);
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = 0;
	printf("\r[%s] %3.0f%% %-60.60s", bar, frac * 100, detail);
	fflush(stdout);
}

static int cmd_flush(struct ctl *c)
{
	rf_ring *r = NULL;
	struct view v;
	memset(&v, 0, sizeof v);
	if (open_ring(c, &r, &v)) {
		fprintf(stderr, "ringflowd flush: ring %s %s; no sidecar is serving it\n", c->ring, v.ring_err);
		return v.ring_rc == -ENOENT ? RF_CTL_NO_SIDECAR : RF_CTL_ERROR;
	}
	look(c, r, &v);
	if (!v.alive) {
		fprintf(stderr, "ringflowd flush: no sidecar is serving ring %s; nothing is uploading "
				"what it holds (start one: ringflowd)\n", c->ring);
		rf_ring_close(r);
		return RF_CTL_NO_SIDECAR;
	}
	/* What "queued at start" is: ring positions below this tail, spilled
	 * records up to this count. */
	const uint64_t tail0 = v.rs.tail, head0 = v.rs.head, spilled0 = v.rs.spilled;
	const int pid = v.rs.consumer_pid;
	const uint64_t t0 = rf_realtime_ns();
	bool tty = isatty(1) && !c->quiet;
	uint64_t max_backlog = 1, last_line = 0;
	int rc = RF_CTL_TIMEOUT;
	char detail[160] = "";
	for (;;) {
		look(c, r, &v);
		uint64_t now = v.at_ns;
		if (!v.alive || v.rs.consumer_pid != pid) {
			if (tty)
				printf("\n");
			fprintf(stderr, "ringflowd flush: the sidecar (pid %d) exited before the flush "
					"completed\n", pid);
			rc = RF_CTL_NO_SIDECAR;
			break;
		}
		if (v.snap_rc && v.snap_rc != -EAGAIN && now - t0 > 2000000000ull) {
			if (tty)
				printf("\n");
			fprintf(stderr, "ringflowd flush: sidecar pid %d publishes no stats at %s (%s)\n",
				pid, c->stats_path, strerror(-v.snap_rc));
			rc = RF_CTL_ERROR;
			break;
		}
		if (v.snap_current) {
			const struct rf_status_snap *s = &v.s;
			bool taken = s->ring_pos >= tail0 && s->spill_ingested >= spilled0;
			if (taken && s->drained) {
				rc = RF_CTL_OK;
				break;
			}
			uint64_t backlog = s->pending + s->http_pending;
			if (backlog > max_backlog)
				max_backlog = backlog;
			/* A snapshot may predate the start (ring_pos < head0). */
			double ring_frac = 1.0;
			if (s->ring_pos < tail0)
				ring_frac = s->ring_pos <= head0 ? 0.0
								 : (double)(s->ring_pos - head0) / (double)(tail0 - head0);
			double up_frac = taken ? 1.0 - (double)backlog / (double)max_backlog : 0;
			char a[32];
			human_bytes(a, sizeof a, (double)(s->ring_pos < tail0 ? tail0 - s->ring_pos : 0));
			int k = snprintf(detail, sizeof detail, "%s to take, %llu entities pending, "
					 "%llu requests", a, (unsigned long long)s->pending,
					 (unsigned long long)s->http_pending);
			if (s->artifact_jobs && k > 0 && (size_t)k < sizeof detail)
				snprintf(detail + k, sizeof detail - (size_t)k,
					 ", %llu task(s) building artifacts",
					 (unsigned long long)s->artifact_jobs);
			if (!c->quiet && (tty || now - last_line >= 1000000000ull)) {
				progress(tty, 0.5 * ring_frac + 0.5 * up_frac, detail);
				last_line = now;
			}
		}
		if (c->timeout_s > 0 && (double)(now - t0) / 1e9 >= c->timeout_s) {
			if (tty)
				printf("\n");
			fprintf(stderr, "ringflowd flush: timed out after %.0f s: %s%s%s\n", c->timeout_s,
				detail[0] ? detail : "no stats from the sidecar",
				v.snap_current && v.s.last_error[0] ? "; last error: " : "",
				v.snap_current ? v.s.last_error : "");
			break;
		}
		sleep_ms(100);
	}
	char lost[512] = "";
	if (rc == RF_CTL_OK && rf_status_losses(&v.s, lost, sizeof lost)) {
		if (tty)
			printf("\n");
		fprintf(stderr,
			"ringflowd flush: what was queued is sent, but data was lost since the sidecar "
			"started: %s (ringflowd status says what each means; last error: %s)\n",
			lost, v.s.last_error[0] ? v.s.last_error : "none");
		rc = RF_CTL_LOST;
	} else if (rc != RF_CTL_OK && v.snap_current && rf_status_losses(&v.s, lost, sizeof lost)) {
		fprintf(stderr, "ringflowd flush: also lost since the sidecar started: %s\n", lost);
	}
	if (rc == RF_CTL_OK) {
		if (tty)
			progress(true, 1.0, "done");
		if (!c->quiet)
			printf("%sflushed: everything queued in ring %s is in MLflow, nothing lost (%.1f s; "
			       "%llu records in, %llu entities out in total)\n",
			       tty ? "\n" : "", c->ring, (double)(rf_realtime_ns() - t0) / 1e9,
			       (unsigned long long)v.s.records_in, (unsigned long long)v.s.records_out);
	}
	rf_ring_close(r);
	return rc;
}

int rf_ctl_main(int argc, char **argv)
{
	struct ctl c;
	memset(&c, 0, sizeof c);
	if (parse(&c, argc, argv))
		return RF_CTL_ERROR;
	return !strcmp(c.cmd, "flush") ? cmd_flush(&c) : cmd_status(&c);
}
