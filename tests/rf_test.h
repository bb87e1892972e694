/*
 * rf_test.h - tiny helpers shared by the C test programs.
 *
 * Each test is its own program (liburing style): exit 0 = pass, 1 = fail,
 * 77 = skip.  tests/run.sh runs them under a timeout and prints the summary.
 */
#ifndef RF_TEST_H
#define RF_TEST_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RF_T_PASS 0
#define RF_T_FAIL 1
#define RF_T_SKIP 77

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,   \
				__LINE__, #cond);                                \
			exit(RF_T_FAIL);                                         \
		}                                                                \
	} while (0)

#define CHECK_EQ(a, b)                                                           \
	do {                                                                     \
		long long _a = (long long)(a), _b = (long long)(b);              \
		if (_a != _b) {                                                  \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s = %lld, %s = %lld\n", \
				__FILE__, __LINE__, #a, _a, #b, _b);             \
			exit(RF_T_FAIL);                                         \
		}                                                                \
	} while (0)

static inline uint64_t rf_test_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A ring name unique to this test process, so tests can run in parallel. */
static inline void rf_test_ring_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/rf-test-%s-%d", tag, (int)getpid());
}

/* A fresh private spool directory under /tmp. */
static inline void rf_test_spool_dir(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/tmp/rf-test-spool-%s-%d", tag, (int)getpid());
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", buf);
	if (system(cmd) != 0)
		exit(RF_T_FAIL);
}

static inline void rf_test_rm_rf(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", dir);
}

#endif
