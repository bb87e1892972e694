/*
 * rf_config.h - ringflowd's configuration: flags over environment
 * variables over defaults, every value validated before the daemon starts
 * (a typo is an error with the reason, exit 2, never a silent default).
 */
#ifndef RF_CONFIG_H
#define RF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct rf_config {
	const char *ring, *spool, *uri, *experiment, *token, *user, *password, *ca;
	bool insecure, detach;
	long flush_ms, metrics_ms, batch_max, shutdown_ms, idle_exit_ms, metrics_port;
	long spool_max_mb, pending_max, trace_timeout_s, trace_mem_mb;
	int fsync_policy;        /* RF_FSYNC_* (rf_journal.h) */
	char ring_buf[128];      /* `ring` when it had to be normalised */
	char warn[256];          /* a non-fatal remark for the log ("" if none) */
};

enum rf_config_result { RF_CONFIG_RUN = 0, RF_CONFIG_HELP = 1, RF_CONFIG_VERSION = 2 };

/* Fill `c` from the environment and argv (the daemon's options, argv[0]
 * the program).  RF_CONFIG_RUN, RF_CONFIG_HELP / RF_CONFIG_VERSION (the
 * program prints them and exits 0), or -EINVAL with the reason in rf_err.
 * Unknown subcommands and stray arguments are errors. */
int rf_config_parse(struct rf_config *c, int argc, char **argv);

/* Whether ringflowd can serve this tracking URI: 0, or -EINVAL with the
 * reason and what to do in rf_err (http:// and https:// with a host only;
 * sqlite:, file:, databricks, bare paths and unknown schemes are refused). */
int rf_config_check_uri(const char *uri);

void rf_config_usage(FILE *f);

#endif
