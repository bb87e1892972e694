/*
 * rf_config.c - ringflowd's options and environment (see rf_config.h).
 *
 * Everything is checked here, before the daemon starts: an autostarted
 * sidecar whose configuration is wrong must fail at once with the reason
 * (the hook shows it as a warning in the eval's log) instead of retrying a
 * URI it can never serve or silently running without fsync.
 */
#include "rf_config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rf_err.h"
#include "rf_journal.h"

static const char *env(const char *a)
{
	const char *v = getenv(a);
	return v && *v ? v : NULL;
}

static bool truthy(const char *v)
{
	return v && (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"));
}

/* A whole decimal integer in [min, max]; `what` names the flag/variable. */
static int number(const char *what, const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return rf_err_set(EINVAL, "%s '%s': expected a whole number from %ld to %ld", what,
				  s, min, max);
	*out = v;
	return 0;
}

int rf_config_check_uri(const char *uri)
{
	const char *colon = strchr(uri, ':');
	size_t sl = colon ? (size_t)(colon - uri) : 0;
	bool scheme = sl > 0;
	for (size_t i = 0; i < sl; i++)
		if (!isalnum((unsigned char)uri[i]) && !strchr("+-.", uri[i]))
			scheme = false;
	const char *fix = "ringflowd talks to an MLflow tracking server over its REST API: set "
			  "MLFLOW_TRACKING_URI to its http:// or https:// address";
	if (!strncasecmp(uri, "databricks", 10))
		return rf_err_set(EINVAL, "tracking URI '%s': Databricks workspaces are not "
				  "supported; %s", uri, fix);
	if (!scheme)
		return rf_err_set(EINVAL, "tracking URI '%s' is a path, not a server address; %s "
				  "(run `mlflow server --backend-store-uri ...` over that store)",
				  uri, fix);
	if ((sl == 4 && !strncasecmp(uri, "http", 4)) || (sl == 5 && !strncasecmp(uri, "https", 5))) {
		const char *host = colon + 1;
		if (strncmp(host, "//", 2) || !host[2] || host[2] == '/' || host[2] == ':')
			return rf_err_set(EINVAL, "tracking URI '%s' has no host; expected "
					  "%.*s://HOST[:PORT]", uri, (int)sl, uri);
		return 0;
	}
	if (!strncasecmp(uri, "sqlite", 6) || !strncasecmp(uri, "file", 4) ||
	    !strncasecmp(uri, "postgresql", 10) || !strncasecmp(uri, "mysql", 5) ||
	    !strncasecmp(uri, "mssql", 5))
		return rf_err_set(EINVAL, "tracking URI '%s' is a local store, not a server; %s "
				  "(run `mlflow server --backend-store-uri %s` and point at it)",
				  uri, fix, uri);
	return rf_err_set(EINVAL, "tracking URI '%s': unknown scheme '%.*s'; %s", uri, (int)sl,
			  uri, fix);
}

void rf_config_usage(FILE *f)
{
	fprintf(f,
		"usage: ringflowd [options]\n"
		"       ringflowd status [--help]   ring and sidecar counters, rates, backlog\n"
		"       ringflowd flush [--help]    wait until what is queued is in MLflow\n"
		"Drains the ringflow ring and uploads Inspect AI telemetry to MLflow.\n\n"
		"  --tracking-uri URI   MLflow server, http(s):// (MLFLOW_TRACKING_URI; required)\n"
		"  --experiment NAME    experiment (MLFLOW_EXPERIMENT_NAME, default inspect_ai)\n"
		"  --ring NAME          ring, '/name' (RINGFLOW_RING, default /ringflow-<uid>)\n"
		"  --spool-dir DIR      state and spill directory (RINGFLOW_SPOOL_DIR)\n"
		"  --metrics-ms N       a running eval's metrics: a partial log-batch N ms after the\n"
		"                       last one, a full one at once; a task's end sends them all\n"
		"                       (RINGFLOW_METRICS_MS, 5000)\n"
		"  --flush-ms N         send ended spans of the tracing API (and of Inspect traces\n"
		"                       while trace memory is a quarter full) at least every N ms\n"
		"                       (RINGFLOW_FLUSH_MS, 1000)\n"
		"  --batch-max N        entities per log-batch, <= 1000 (RINGFLOW_BATCH_MAX, 1000)\n"
		"  --shutdown-ms N      on SIGTERM, flush for at most N ms (RINGFLOW_SHUTDOWN_MS, 10000)\n"
		"  --idle-exit-ms N     exit after N ms with nothing to do and nothing pending\n"
		"                       (RINGFLOW_IDLE_EXIT_MS; 0 = never, the default; the hook\n"
		"                       starts its sidecar with 600000)\n"
		"  --detach             run in the background (log to <spool-dir>/ringflowd.log); exits\n"
		"                       once the daemon serves the ring (0) or with its error\n"
		"  --metrics-port N     Prometheus /metrics on 127.0.0.1:N (RINGFLOW_METRICS_PORT; off)\n"
		"  --group              group access (RINGFLOW_RING_GROUP=1): ring, spill files,\n"
		"                       journal 0660 and a group member's ring accepted; default\n"
		"                       owner-only (0600), another user's ring refused\n"
		"  --spool-max-mb N     while MLflow is away, stop taking records from the ring once the\n"
		"                       journal holds N MiB (RINGFLOW_SPOOL_MAX_MB, 1024; 0 = no bound)\n"
		"  RINGFLOW_PENDING_MAX stop taking records while this many entities wait for MLflow\n"
		"                       (125000, ~4 MB of metric rows; 0 = no bound)\n"
		"  --trace-mem-mb N     traces held in memory: complete ones waiting for MLflow past\n"
		"                       N/2 MiB wait on disk in the spool directory, and past N MiB of\n"
		"                       open ones no records are taken (RINGFLOW_TRACE_MEM_MB, 4;\n"
		"                       0 = no bound)\n"
		"  RINGFLOW_FSYNC       journal fdatasync: interval (default, <= 1/s), always, none\n"
		"  --version            print the version\n"
		"  --help\n\n"
		"Auth and TLS as MLflow's client: MLFLOW_TRACKING_TOKEN (Bearer),\n"
		"MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (Basic, wins),\n"
		"MLFLOW_TRACKING_SERVER_CERT_PATH (CA bundle), MLFLOW_TRACKING_INSECURE_TLS=true.\n"
		"Artifacts: INSPECT_MLFLOW_LOG_ARTIFACTS / MLFLOW_INSPECT_LOG_ARTIFACTS (default on).\n"
		"Traces: MLFLOW_INSPECT_TRACING=true (every run; an eval with it set asks for its\n"
		"own), MLFLOW_INSPECT_TRACE_MODE=sample (default) | run, RINGFLOW_TRACE_TIMEOUT_S\n"
		"(600), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / _HEADERS (OTLP/JSON copy).\n\n"
		"Exit: 0 stopped cleanly (or another sidecar already serves the ring), 1 could not\n"
		"start (ring, spool, journal, metrics port), 2 bad configuration or usage.\n");
}

/* Numeric settings: the variable first, a flag overrides it. */
struct num {
	const char *var;
	long min, max, def;
	long *out;
};

int rf_config_parse(struct rf_config *c, int argc, char **argv)
{
	c->uri = env("MLFLOW_TRACKING_URI");
	c->experiment = env("MLFLOW_EXPERIMENT_NAME");
	c->ring = env("RINGFLOW_RING");
	c->spool = env("RINGFLOW_SPOOL_DIR");
	c->token = env("MLFLOW_TRACKING_TOKEN");
	c->user = env("MLFLOW_TRACKING_USERNAME");
	c->password = env("MLFLOW_TRACKING_PASSWORD");
	c->ca = env("MLFLOW_TRACKING_SERVER_CERT_PATH");
	c->insecure = truthy(env("MLFLOW_TRACKING_INSECURE_TLS"));
	const struct num nums[] = {
		{"RINGFLOW_FLUSH_MS", 1, 3600000, 1000, &c->flush_ms},
		{"RINGFLOW_METRICS_MS", 1, 3600000, 5000, &c->metrics_ms},
		{"RINGFLOW_BATCH_MAX", 1, 1000, 1000, &c->batch_max},
		{"RINGFLOW_SHUTDOWN_MS", 0, 86400000, 10000, &c->shutdown_ms},
		{"RINGFLOW_IDLE_EXIT_MS", 0, LONG_MAX / 2, 0, &c->idle_exit_ms},
		{"RINGFLOW_METRICS_PORT", 0, 65535, 0, &c->metrics_port},
		{"RINGFLOW_SPOOL_MAX_MB", 0, 1L << 30, 1024, &c->spool_max_mb},
		{"RINGFLOW_PENDING_MAX", 0, 1L << 40, 125000, &c->pending_max},
		{"RINGFLOW_TRACE_TIMEOUT_S", 1, 86400 * 7, 600, &c->trace_timeout_s},
		{"RINGFLOW_TRACE_MEM_MB", 0, 1L << 20, 4, &c->trace_mem_mb},
	};
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		const char *v = env(nums[i].var);
		*nums[i].out = nums[i].def;
		if (v && number(nums[i].var, v, nums[i].min, nums[i].max, nums[i].out))
			return -EINVAL;
	}
	const char *fs = env("RINGFLOW_FSYNC");
	if (!fs || !strcasecmp(fs, "interval"))
		c->fsync_policy = RF_FSYNC_INTERVAL;
	else if (!strcasecmp(fs, "always"))
		c->fsync_policy = RF_FSYNC_ALWAYS;
	else if (!strcasecmp(fs, "none"))
		c->fsync_policy = RF_FSYNC_NONE;
	else
		return rf_err_set(EINVAL, "RINGFLOW_FSYNC '%s': expected interval, always or none",
				  fs);

	static const struct option o[] = {
		{"tracking-uri", required_argument, 0, 'u'}, {"experiment", required_argument, 0, 'e'},
		{"ring", required_argument, 0, 'r'},         {"spool-dir", required_argument, 0, 's'},
		{"flush-ms", required_argument, 0, 'f'},     {"batch-max", required_argument, 0, 'b'},
		{"shutdown-ms", required_argument, 0, 'S'},  {"idle-exit-ms", required_argument, 0, 'i'},
		{"detach", no_argument, 0, 'd'},             {"help", no_argument, 0, 'h'},
		{"metrics-port", required_argument, 0, 'm'}, {"group", no_argument, 0, 'g'},
		{"spool-max-mb", required_argument, 0, 'M'}, {"version", no_argument, 0, 'V'},
		{"trace-mem-mb", required_argument, 0, 'T'}, {"metrics-ms", required_argument, 0, 'l'},
		{0, 0, 0, 0}};
	int ch, rc = 0;
	opterr = 0; /* our own message, in rf_err */
	while (rc == 0 && (ch = getopt_long(argc, argv, "u:e:r:s:f:b:S:i:m:M:T:l:dgh", o, NULL)) != -1) {
		switch (ch) {
		case 'u': c->uri = optarg; break;
		case 'e': c->experiment = optarg; break;
		case 'r': c->ring = optarg; break;
		case 's': c->spool = optarg; break;
		case 'f': rc = number("--flush-ms", optarg, 1, 3600000, &c->flush_ms); break;
		case 'l': rc = number("--metrics-ms", optarg, 1, 3600000, &c->metrics_ms); break;
		case 'b': rc = number("--batch-max", optarg, 1, 1000, &c->batch_max); break;
		case 'S': rc = number("--shutdown-ms", optarg, 0, 86400000, &c->shutdown_ms); break;
		case 'i': rc = number("--idle-exit-ms", optarg, 0, LONG_MAX / 2, &c->idle_exit_ms); break;
		case 'd': c->detach = true; break;
		case 'm': rc = number("--metrics-port", optarg, 0, 65535, &c->metrics_port); break;
		case 'g': setenv("RINGFLOW_RING_GROUP", "1", 1); break;
		case 'M': rc = number("--spool-max-mb", optarg, 0, 1L << 30, &c->spool_max_mb); break;
		case 'T': rc = number("--trace-mem-mb", optarg, 0, 1L << 20, &c->trace_mem_mb); break;
		case 'h': return RF_CONFIG_HELP;
		case 'V': return RF_CONFIG_VERSION;
		default:
			return rf_err_set(EINVAL, "unknown option or missing value: '%s' "
					  "(ringflowd --help)", argv[optind - 1]);
		}
	}
	if (rc)
		return rc;
	if (optind < argc)
		return rf_err_set(EINVAL, "unknown command '%s' (commands: status, flush; "
				  "options: ringflowd --help)", argv[optind]);
	if (!c->uri)
		return rf_err_set(EINVAL, "MLFLOW_TRACKING_URI (or --tracking-uri) is required");
	if (rf_config_check_uri(c->uri))
		return -EINVAL;
	if (c->insecure && c->ca)
		return rf_err_set(EINVAL, "MLFLOW_TRACKING_INSECURE_TLS and "
				  "MLFLOW_TRACKING_SERVER_CERT_PATH are mutually exclusive");
	if (c->ring && c->ring[0] != '/') {
		/* As rf_ring_default_name does for RINGFLOW_RING: the name gets its '/'. */
		snprintf(c->ring_buf, sizeof c->ring_buf, "/%s", c->ring);
		snprintf(c->warn, sizeof c->warn,
			 "ring name '%s' does not start with '/' (a ring is a POSIX shared memory "
			 "name: '/name', no other '/'); using '%s'", c->ring, c->ring_buf);
		c->ring = c->ring_buf;
	}
	return 0;
}
