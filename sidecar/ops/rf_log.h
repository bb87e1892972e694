/*
 * rf_log.h - ringflowd's log: one logfmt line per message on stderr,
 *
 *     ts=2026-01-02T03:04:05.678Z level=warn msg="..."
 *
 * (UTC, milliseconds; quotes and newlines in the message become ', so a
 * line is always one record).  Messages quote records and server answers,
 * so every secret value the process knows (rf_redact.h) is masked first.
 * The daemon's one place that prints; the modules below it return errors
 * and count, and the daemon logs them here.
 */
#ifndef RF_LOG_H
#define RF_LOG_H

#include <stdarg.h>

void rf_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rf_logv(const char *level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif
