/*
 * rf_log.c - ringflowd's logfmt lines (see rf_log.h).
 */
#include "rf_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rf_redact.h"

void rf_logf(const char *level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if (*p == '"' || *p == '\n')
			*p = '\'';
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char t[32];
	strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
	/* Errors quote records and answers: no known secret value in the log. */
	size_t n = strlen(msg);
	char *m = strdup(msg);
	if (m)
		rf_redact_text(&m, &n);
	fprintf(stderr, "ts=%s.%03ldZ level=%s msg=\"%s\"\n", t, ts.tv_nsec / 1000000, level,
		m ? m : "(out of memory)");
	free(m);
}

bool rf_rate_ok(struct rf_rate_limit *rl, uint64_t now_ms, unsigned long long *suppressed)
{
	if (now_ms < rl->next_ms) {
		rl->suppressed++;
		return false;
	}
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->next_ms = now_ms + RF_LOG_PERIOD_MS;
	return true;
}
