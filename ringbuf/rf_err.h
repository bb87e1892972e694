/*
 * rf_err.h - the one error contract of all ringflow C code.
 *
 * A function that fails returns -errno and leaves a message in this thread's
 * error (as Aeron's C client does: one thread-local error with context).  The
 * failing function says what failed with rf_err_set(); each caller that adds
 * meaning prefixes its context with rf_err_wrap(), so the message reads from
 * the outermost operation to the cause:
 *
 *     return rf_err_set(EINVAL, "record type %d outside 1..%d", t, max);
 *     ...
 *     if ((rc = rf_ring_open(...)) < 0)
 *             return rf_err_wrap("sidecar: ring %s", name);
 *     -> "sidecar: ring /rf-x: record type 99 outside 1..31"
 *
 * Libraries never print: the caller (a program's main, the Python extension)
 * decides what the user sees.  Long-lived state keeps counters, not strings;
 * a program logs the message where it handles the failure.
 */
#ifndef RF_ERR_H
#define RF_ERR_H

#include <stdarg.h>

#define RF_ERR_MAX 512 /* longer messages are cut, never overflow */

/* Record a new error: code (a positive errno value; a negative one is taken
 * as its magnitude, 0 as EIO) and a printf-style message.  Returns -code. */
int rf_err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same for a failed system call: the message ends with ": strerror(code)". */
int rf_err_set_sys(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix context to the current error ("context: previous message"); the code
 * stays.  Returns -code (-EIO if no error was set). */
int rf_err_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* This thread's last error: message ("no error" if none) and code (0 if none). */
const char *rf_err_msg(void);
int rf_err_code(void);
void rf_err_clear(void);

/* A long-lived module's failures that no caller returns to (a request MLflow
 * refused, a record ignored): the module counts them and reports each one to
 * its owner's sink, which logs it and keeps what it shows (the daemon: the
 * status file's last error).  Stats structs keep counters, never strings. */
struct rf_err_sink {
	void (*fn)(void *arg, const char *msg);
	void *arg;
};
/* Format and hand to the sink (nothing if it has no fn). */
void rf_err_report(const struct rf_err_sink *sink, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void rf_err_vreport(const struct rf_err_sink *sink, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#endif
