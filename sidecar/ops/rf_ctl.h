/*
 * rf_ctl.h - `ringflowd status` and `ringflowd flush`: read a ring's own
 * counters and the stats its sidecar publishes (rf_status.h), without a
 * round trip to the sidecar and whether or not one is running.
 */
#ifndef RF_CTL_H
#define RF_CTL_H

/* Exit codes */
#define RF_CTL_OK 0        /* status: a sidecar serves the ring; flush: done */
#define RF_CTL_TIMEOUT 1   /* flush: not done in time */
#define RF_CTL_NO_SIDECAR 2 /* no sidecar serves the ring (or it exited mid-flush) */
#define RF_CTL_ERROR 3     /* bad usage, unreadable ring or stats */
#define RF_CTL_LOST 4      /* flush: done, but the sidecar lost data since it started */

/* argv[0] is the subcommand ("status" or "flush"). */
int rf_ctl_main(int argc, char **argv);

#endif
