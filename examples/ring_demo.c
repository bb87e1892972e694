/*
 * ring_demo - the ring end to end, as `make demo` shows it today: several
 * producer processes (each with a few threads) write records into one ring
 * while a consumer drains them, then a summary of what went through.
 * It grows into the full eval -> ring -> sidecar -> MLflow demo.
 */
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rf_ring.h"

#define PROCS 4
#define THREADS 2
#define PER_THREAD 250000

static const char *ring_name;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static rf_ring *prod;

static void *producer(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	for (uint64_t seq = 0; seq < PER_THREAD; seq++) {
		struct rf_ring_claim c;
		size_t len = 48 + seq % 200;
		if (rf_ring_claim(prod, 1, len, &c)) {
			fprintf(stderr, "claim: %s\n", rf_ring_errmsg());
			exit(1);
		}
		memset(c.data, (int)(seq & 0xff), len);
		memcpy(c.data, &id, 8);
		memcpy((char *)c.data + 8, &seq, 8);
		rf_ring_commit(prod, &c);
	}
	return NULL;
}

struct tally {
	uint64_t records, bytes, next[PROCS * THREADS], out_of_order;
};

static int on_rec(const struct rf_ring_rec *rec, void *arg)
{
	struct tally *t = arg;
	uint64_t id, seq;
	memcpy(&id, rec->data, 8);
	memcpy(&seq, (const char *)rec->data + 8, 8);
	if (id < PROCS * THREADS) {
		if (seq != t->next[id])
			t->out_of_order++;
		t->next[id] = seq + 1;
	}
	t->records++;
	t->bytes += rec->len;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		bool help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");
		fprintf(help ? stdout : stderr,
			"usage: ring_demo\n  4 processes x 2 threads write 2,000,000 records into a private ring;\n"
			"  one consumer checks per-producer order and prints the rate.\n");
		return help ? 0 : 2;
	}
	char name[64];
	snprintf(name, sizeof name, "/ringflow-demo-%d", (int)getpid());
	ring_name = name;
	rf_ring *cons;
	struct rf_ring_opts o = {.flags = RF_RING_CREATE | RF_RING_CONSUMER};
	if (rf_ring_open(&cons, name, &o)) {
		fprintf(stderr, "ring_demo: %s\n", rf_ring_errmsg());
		return 1;
	}
	printf("ring %s: %u MiB, max record %zu bytes\n", name, RF_RING_DEFAULT_CAPACITY >> 20,
	       (size_t)RF_RING_MAX_RECORD(RF_RING_DEFAULT_CAPACITY));
	uint64_t t0 = now_ns();
	pid_t kids[PROCS];
	for (int p = 0; p < PROCS; p++) {
		if ((kids[p] = fork()) == 0) {
			if (rf_ring_open(&prod, name, NULL))
				_exit(1);
			pthread_t th[THREADS];
			for (int i = 0; i < THREADS; i++)
				pthread_create(&th[i], NULL, producer,
					       (void *)(uintptr_t)(p * THREADS + i));
			for (int i = 0; i < THREADS; i++)
				pthread_join(th[i], NULL);
			rf_ring_close(prod);
			_exit(0);
		}
	}
	struct tally t = {0};
	const uint64_t want = (uint64_t)PROCS * THREADS * PER_THREAD;
	while (t.records < want) {
		int n = rf_ring_consume(cons, on_rec, &t, 4096);
		if (n < 0) {
			fprintf(stderr, "consume: %s\n", rf_ring_errmsg());
			return 1;
		}
		if (n == 0)
			rf_ring_wait(cons, 100000000);
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	int failed = 0;
	for (int p = 0; p < PROCS; p++) {
		int st;
		waitpid(kids[p], &st, 0);
		failed |= !WIFEXITED(st) || WEXITSTATUS(st);
	}
	struct rf_ring_stats s;
	rf_ring_stats(cons, &s);
	printf("%d processes x %d threads wrote %llu records (%.1f MB) in %.2f s: %.1f M records/s\n",
	       PROCS, THREADS, (unsigned long long)t.records, (double)t.bytes / 1e6, secs,
	       (double)t.records / secs / 1e6);
	printf("per-producer order violations: %llu; spilled %llu, dropped %llu, abandoned %llu, "
	       "consumer wakeups %llu\n", (unsigned long long)t.out_of_order,
	       (unsigned long long)s.spilled, (unsigned long long)s.dropped,
	       (unsigned long long)s.abandoned, (unsigned long long)s.wakeups);
	rf_ring_close(cons);
	rf_ring_unlink(name);
	return failed || t.out_of_order ? 1 : 0;
}
