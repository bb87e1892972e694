/*
 * rf_log.h - ringflowd's log lines: logfmt on stderr (ts=... level=...
 * msg="..."), known secret values masked (rf_redact), and a rate limit for
 * conditions that repeat.  For the daemon's own code only: the libraries
 * under it never print (ringbuf/rf_err.h).
 */
#ifndef RF_LOG_H
#define RF_LOG_H

#include <stdbool.h>
#include <stdint.h>

void rf_logf(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* At most one line per RF_LOG_PERIOD_MS for a repeating condition; the
 * lines not written are counted and said in the next one. */
#define RF_LOG_PERIOD_MS 10000

struct rf_rate_limit {
	uint64_t next_ms, suppressed;
};

/* Whether a line may be written at now_ms; if so *suppressed is how many
 * were held back since the last one. */
bool rf_rate_ok(struct rf_rate_limit *rl, uint64_t now_ms, unsigned long long *suppressed);

#endif
