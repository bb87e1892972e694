/*
 * rf_log.c - ringflowd's logfmt lines (see rf_log.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rf_clock.h"
#include "rf_log.h"
#include "rf_redact.h"

void rf_logv(const char *level, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n') /* libraries' messages end in one */
		msg[--n] = 0;
	for (char *p = msg; *p; p++)
		if (*p == '"' || *p == '\n')
			*p = '\'';
	uint64_t now = rf_realtime_ns();
	time_t sec = (time_t)(now / 1000000000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	char t[32];
	strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
	char *m = strdup(msg);
	if (m)
		rf_redact_text(&m, &n);
	fprintf(stderr, "ts=%s.%03uZ level=%s msg=\"%s\"\n", t,
		(unsigned)(now / 1000000 % 1000), level, m ? m : "(out of memory)");
	free(m);
}

void rf_log(const char *level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rf_logv(level, fmt, ap);
	va_end(ap);
}
