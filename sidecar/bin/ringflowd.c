/*
 * ringflowd - the per-host sidecar: drain the ring, upload to MLflow.
 *
 * `ringflowd status|flush` talk to a running one (rf_ctl); otherwise this
 * parses the configuration (rf_config), detaches if asked, and runs the
 * daemon (rf_daemon.h: the drain/journal/pump cycle on one io_uring loop).
 * Exit codes: 0 (stopped, idle, or another sidecar serves the ring),
 * 1 (could not start), 2 (bad configuration).
 */
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "rf_config.h"
#include "rf_ctl.h"
#include "rf_daemon.h"
#include "rf_detach.h"
#include "rf_err.h"
#include "rf_version.h"

int main(int argc, char **argv)
{
	static struct rf_config c; /* the daemon points into it until exit */
	if (argc > 1 && (!strcmp(argv[1], "status") || !strcmp(argv[1], "flush")))
		return rf_ctl_main(argc - 1, argv + 1);
	/* Block the stop signals first: a SIGTERM that arrives while starting
	 * is then read from the signalfd and handled as a clean stop. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	int rc = rf_config_parse(&c, argc, argv);
	if (rc == RF_CONFIG_HELP || rc == RF_CONFIG_VERSION) {
		if (rc == RF_CONFIG_HELP)
			rf_config_usage(stdout);
		else
			printf("ringflowd %s\n", RF_VERSION);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "ringflowd: %s\n", rf_err_msg());
		return 2;
	}
	if (c.warn[0])
		fprintf(stderr, "ringflowd: warning: %s\n", c.warn);
	if (rf_daemon_prepare(&c) < 0) {
		fprintf(stderr, "ringflowd: %s\n", rf_err_msg());
		return 1;
	}
	bool starter = false;
	if (c.detach && (rc = rf_detach_start(&starter)) < 0) {
		fprintf(stderr, "ringflowd: %s\n", rf_err_msg());
		return 1;
	}
	if (starter)
		return rc; /* the daemon's verdict */
	rf_daemon *d;
	rc = rf_daemon_new(&d, &c, &stop);
	if (rc == 0) {
		rc = rf_daemon_run(d);
	} else if (rc == -EBUSY || rc == -EINTR) { /* another sidecar serves the ring; stopped */
		fprintf(stderr, "ringflowd: %s; exiting\n", rf_err_msg());
		rc = 0;
	} else {
		fprintf(stderr, "ringflowd: %s\n", rf_err_msg());
		rc = 1;
	}
	rf_daemon_free(d);
	rf_detach_ready(rc); /* a start that failed (no-op once ready) */
	return rc;
}
