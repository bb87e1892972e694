/*
 * rf_test_mp.h - helpers for the multi-process ring tests: sanitizer
 * detection, and telling ThreadSanitizer that the ring segment is ordered by
 * another process (the consumer), which it cannot see.
 */
#ifndef RF_TEST_MP_H
#define RF_TEST_MP_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "rf_test.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RF_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RF_SANITIZED 1
#endif
#endif
#ifndef RF_SANITIZED
#define RF_SANITIZED 0
#endif

#if defined(__SANITIZE_THREAD__)
#define RF_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RF_TSAN 1
#endif
#endif

/*
 * ThreadSanitizer sees only this process.  Two producer threads of one
 * process write the same ring bytes a lap apart, ordered through the consumer
 * in another process (commit: release len -> consumer: acquire len, zero,
 * release head -> claim: acquire head), which TSan cannot observe; it would
 * report every reuse of ring space as a race.  So, in TSan builds only, each
 * producer process declares its mapping of the segment a benign-race range
 * (found in /proc/self/maps).  Everything outside the segment - spill state,
 * slot caches, registry, handles, buffers - is still checked, and inside it
 * every field but the record bytes is atomic anyway.
 */
#ifdef RF_TSAN
void AnnotateBenignRaceSized(const char *file, int line, const volatile void *mem,
			     unsigned long size, const char *desc);
static void tsan_ring_segment_is_shared(const char *ring)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512], want[160];
	snprintf(want, sizeof want, "/dev/shm%s\n", ring);
	int found = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		size_t ll = strlen(line), wl = strlen(want);
		if (ll >= wl && strcmp(line + ll - wl, want) == 0 &&
		    sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
			AnnotateBenignRaceSized(__FILE__, __LINE__, (void *)lo, hi - lo,
						"ring segment: ordered by another process");
			found = 1;
		}
	}
	if (f)
		fclose(f);
	CHECK(found);
}
#else
static void tsan_ring_segment_is_shared(const char *ring)
{
	(void)ring;
}
#endif

#define FAIL(...)                                                                \
	do {                                                                     \
		fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);            \
		fprintf(stderr, __VA_ARGS__);                                    \
		fputc('\n', stderr);                                             \
		exit(RF_T_FAIL);                                                 \
	} while (0)

static inline uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static inline uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

/* Anonymous memory shared with the processes this one forks. */
static inline void *rf_test_shared(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	return p;
}

/* `cleanup` at exit and on SIGTERM/SIGINT/SIGHUP (through `on_signal`). */
static inline void rf_test_cleanup_on_exit(void (*cleanup)(void), void (*on_signal)(int))
{
	atexit(cleanup);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN); /* a closed stdout must not skip the cleanup */
}

#endif
