/*
 * rf_err.c - the thread-local error of rf_err.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rf_err.h"

static __thread char rf_err_buf[RF_ERR_MAX];
static __thread int rf_err_errno;

static int norm(int code)
{
	if (code < 0)
		code = -code;
	return code ? code : EIO;
}

/* Append ": tail" at buf[at], cut to the buffer (truncation is intended). */
static void append(size_t at, const char *tail)
{
	for (const char *p = ": "; at + 1 < sizeof rf_err_buf && *p; p++)
		rf_err_buf[at++] = *p;
	for (; at + 1 < sizeof rf_err_buf && *tail; tail++)
		rf_err_buf[at++] = *tail;
	rf_err_buf[at] = '\0';
}

static int vset(int code, const char *sys, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static int vset(int code, const char *sys, const char *fmt, va_list ap)
{
	rf_err_errno = norm(code);
	int n = vsnprintf(rf_err_buf, sizeof rf_err_buf, fmt, ap);
	if (sys && n >= 0 && (size_t)n < sizeof rf_err_buf)
		append((size_t)n, sys);
	return -rf_err_errno;
}

int rf_err_set(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vset(code, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int rf_err_set_sys(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vset(code, strerror(norm(code)), fmt, ap);
	va_end(ap);
	return rc;
}

int rf_err_wrap(const char *fmt, ...)
{
	char prev[RF_ERR_MAX];
	snprintf(prev, sizeof prev, "%s", rf_err_buf[0] ? rf_err_buf : "unknown error");
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(rf_err_buf, sizeof rf_err_buf, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof rf_err_buf)
		append((size_t)n, prev);
	rf_err_errno = norm(rf_err_errno);
	return -rf_err_errno;
}

const char *rf_err_msg(void)
{
	return rf_err_buf[0] ? rf_err_buf : "no error";
}

int rf_err_code(void)
{
	return rf_err_errno;
}

void rf_err_clear(void)
{
	rf_err_buf[0] = '\0';
	rf_err_errno = 0;
}

void rf_err_vreport(const struct rf_err_sink *sink, const char *fmt, va_list ap)
{
	if (!sink || !sink->fn)
		return;
	char msg[RF_ERR_MAX];
	vsnprintf(msg, sizeof msg, fmt, ap);
	sink->fn(sink->arg, msg);
}

void rf_err_report(const struct rf_err_sink *sink, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rf_err_vreport(sink, fmt, ap);
	va_end(ap);
}
