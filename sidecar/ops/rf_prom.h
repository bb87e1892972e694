/*
 * rf_prom.h - Prometheus text exposition of ringflowd's counters on a
 * loopback port (off unless --metrics-port / RINGFLOW_METRICS_PORT).
 *
 * HTTP is libmicrohttpd's, driven from the sidecar's io_uring loop without
 * a thread: MHD runs in epoll mode, its epoll fd is watched with
 * rf_loop_watch and MHD_run is called when it is readable and when the
 * timeout MHD asks for (MHD_get_timeout) expires.
 */
#ifndef RF_PROM_H
#define RF_PROM_H

#include <stddef.h>

#include "rf_loop.h"
#include "rf_status.h"

typedef struct rf_prom rf_prom;

/* Fill a fresh snapshot (called on the loop for every scrape). */
typedef void (*rf_prom_snap_fn)(struct rf_status_snap *snap, void *arg);

/* Listen on 127.0.0.1:port (never another address).  -errno on failure. */
int rf_prom_start(rf_prom **out, rf_loop *loop, int port, rf_prom_snap_fn fn, void *arg);
void rf_prom_stop(rf_prom *p);

#endif
