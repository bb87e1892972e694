/*
 * rf_daemon.h - ringflowd's daemon: the ring drained into the journal and
 * folded into each run's destination, pumped to MLflow on one io_uring loop
 * (docs/DESIGN.md "The sidecar").
 *
 * One thread: the ring's wakeup (FUTEX_WAIT on its parked word), libcurl's
 * sockets and timers, the stop signals (a signalfd) all arrive on the loop.
 * Records are decoded (untrusted: malformed ones are counted and skipped),
 * journaled before the ring frees them, and folded by rf_dests.  SIGTERM /
 * SIGINT: stop taking records, flush what is pending (bounded), exit.
 *
 *     rf_daemon_prepare(&c)         spool directory checked, secrets known
 *     [rf_detach_start()]
 *     rf_daemon_new(&d, &c, &stop)  ring, loop, destinations, journal, ops
 *     rf_daemon_run(d)              until stopped or idle
 *     rf_daemon_free(d)
 *
 * Failures return -errno with the reason in rf_err_msg() (ringbuf/rf_err.h).
 */
#ifndef RF_DAEMON_H
#define RF_DAEMON_H

#include <signal.h>

#include "rf_config.h"

typedef struct rf_daemon rf_daemon;

/* Before detaching (errors still reach the terminal): secret values known
 * to the log's redaction, the spool directory checked (created if missing,
 * owner-only unless group access was asked for) and made absolute in
 * c->spool.  0 or -errno (rf_err_msg() says why and what to do). */
int rf_daemon_prepare(struct rf_config *c);

/* Everything from opening the ring to serving: `c` must outlive the daemon;
 * `stop` holds the signals that stop it, already blocked.  0, or -errno:
 * -EBUSY (another sidecar serves this ring) and -EINTR (stopped while
 * replaying the journal) are clean exits, anything else a failed start. */
int rf_daemon_new(rf_daemon **out, struct rf_config *c, const sigset_t *stop);

/* Serve until stopped (the flush window given by c->shutdown_ms) or idle
 * for c->idle_exit_ms; the process's exit code (0). */
int rf_daemon_run(rf_daemon *d);

/* NULL-safe; what is not yet in MLflow stays in the journal. */
void rf_daemon_free(rf_daemon *d);

#endif
