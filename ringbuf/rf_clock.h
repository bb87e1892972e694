/*
 * rf_clock.h - the one clock of all ringflow C code.
 *
 * rf_now_ns(): CLOCK_MONOTONIC, for intervals, deadlines and timeouts (never
 * steps).  rf_realtime_ns(): CLOCK_REALTIME, for what is shown or sent as a
 * time of day (epoch nanoseconds: spans, status file, log lines).
 */
#ifndef RF_CLOCK_H
#define RF_CLOCK_H

#include <stdint.h>

uint64_t rf_now_ns(void);
uint64_t rf_realtime_ns(void);

static inline uint64_t rf_now_ms(void)
{
	return rf_now_ns() / 1000000;
}

#endif
