/*
 * rf_loop.h - the sidecar's one event loop, on io_uring.
 *
 * File-descriptor readiness (libcurl's sockets, signalfd) is one-shot
 * POLL_ADD re-armed per event; the ring's wakeup is an io_uring FUTEX_WAIT on
 * the ring's parked word (kernel >= 6.7; falls back to a 1 ms poll); timers
 * live in user space and bound each wait.  Single-threaded.
 */
#ifndef RF_LOOP_H
#define RF_LOOP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct rf_loop rf_loop;

/* events: POLLIN/POLLOUT bits; called once per arming. */
typedef void (*rf_fd_cb)(rf_loop *l, int fd, unsigned events, void *arg);
typedef void (*rf_timer_cb)(rf_loop *l, void *arg);

int rf_loop_new(rf_loop **out);
void rf_loop_free(rf_loop *l);

/* Watch fd for `events` (0 removes).  Re-armed after each callback until
 * changed or removed; one watch per fd. */
int rf_loop_watch(rf_loop *l, int fd, unsigned events, rf_fd_cb cb, void *arg);

/* Timers are handed out by the loop (as Redis's ae does), never chosen by
 * callers: rf_loop_timer_new() gives its owner a fresh id (>= 0) for a
 * one-shot timer calling cb(arg), or -ENOSPC when all RF_LOOP_TIMERS are
 * taken.  rf_loop_timer_set() arms it `ms` from now (re-arming replaces the
 * owner's own earlier due time; ms < 0 disarms); rf_loop_timer_del() gives
 * it back.  An id that was given back is refused (-ENOENT), also once its
 * slot serves another owner: a stale id can never move someone else's timer. */
#define RF_LOOP_TIMERS 16
int rf_loop_timer_new(rf_loop *l, rf_timer_cb cb, void *arg);
int rf_loop_timer_set(rf_loop *l, int id, int64_t ms);
int rf_loop_timer_del(rf_loop *l, int id);

/* Ask to be woken when the 32-bit word at uaddr is FUTEX_WAKEd (shared) while
 * it holds val.  Completes once; call again to re-arm.  -EOPNOTSUPP (without
 * a message: the caller polls instead) once io_uring said it has no
 * FUTEX_WAIT (kernel < 6.7). */
int rf_loop_futex_wait(rf_loop *l, uint32_t *uaddr, uint32_t val, rf_timer_cb cb, void *arg);

/* Run one iteration: submit, wait up to the next timer (or max_ms), dispatch. */
int rf_loop_run_once(rf_loop *l, int max_ms);
uint64_t rf_loop_now_ms(void);

#endif
