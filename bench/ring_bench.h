/*
 * ring_bench.h - private to ring_bench (bench/ring_bench*.c): options, the
 * memory the coordinator shares with its children, the self-checking record,
 * the timer and histogram, and the parts' entry points.  The parts are split
 * along the benchmark's seams: ring_bench.c (command line), ring_bench_run.c
 * (one configuration: processes, barrier, collection), ring_bench_ring.c (the
 * ring workload), ring_bench_dgram.c (the UNIX datagram baseline),
 * ring_bench_report.c (timer, percentiles, the JSON line).
 */
#ifndef RING_BENCH_H
#define RING_BENCH_H

#include "rf_ring.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256 /* producers x threads */
#define MAX_LIST 16
#define REC_TYPE 1
#define HDR_BYTES 16u /* struct rec_hdr */
#define RECV_BATCH 64
#define MAX_REPEAT 64

enum transport { T_RING = 0, T_DGRAM = 1 };
extern const char *const transport_name[];

/* ---- options ---- */

struct opts {
	unsigned transports;           /* bit mask of 1 << T_* */
	unsigned n_pt;                 /* (producers, threads) pairs */
	unsigned pt[MAX_LIST * MAX_LIST][2];
	unsigned n_bytes;
	size_t bytes[MAX_LIST];
	double seconds;                /* run length per configuration */
	uint64_t records;              /* per thread; 0 = run for `seconds` */
	size_t capacity;               /* ring data area */
	uint64_t full_wait_ns;
	unsigned sample_every;         /* power of two */
	unsigned batch;                /* rf_ring_consume max */
	unsigned repeat;               /* runs per configuration; the median is reported */
	int sockbuf;                   /* SO_SNDBUF / SO_RCVBUF */
	double timeout;                /* extra seconds before a run is declared hung */
	bool use_tsc;
};

/* ---- timer ---- */

extern bool g_use_tsc;
extern double g_ns_per_tick;
extern double g_timer_overhead_ns, g_timer_res_ns;

static inline uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t ticks(void)
{
#if defined(__x86_64__)
	if (g_use_tsc) {
		uint32_t lo, hi;
		/* lfence: rdtsc does not run before earlier instructions finish. */
		__asm__ __volatile__("lfence\n\trdtsc" : "=a"(lo), "=d"(hi) : : "memory");
		return ((uint64_t)hi << 32) | lo;
	}
#endif
	return mono_ns();
}

/* ---- log-linear histogram of tick counts ---- */

#define H_SUB_BITS 6
#define H_SUB (1u << H_SUB_BITS)
#define H_BUCKETS ((64 - H_SUB_BITS) * H_SUB + H_SUB)

static inline unsigned h_index(uint64_t v)
{
	if (v < H_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= H_SUB_BITS */
	unsigned g = e - H_SUB_BITS;
	return (g + 1) * H_SUB + (unsigned)((v >> g) - H_SUB);
}

/* ---- memory shared by the coordinator and its children ---- */

struct thread_slot {
	uint64_t committed; /* records written by the thread */
	uint64_t eagain;    /* -EAGAIN from claim / send */
	uint64_t samples;
	uint64_t hist[H_BUCKETS];
} __attribute__((aligned(64)));

struct shared {
	_Atomic int consumer_state; /* 0 starting, 1 ready, 2 done, -1 failed */
	_Atomic unsigned threads_ready;
	_Atomic int start;
	_Atomic int stop;
	_Atomic unsigned threads_done;
	_Atomic uint64_t total_committed;
	_Atomic int failed;

	/* written by the consumer */
	uint64_t t_end_ns;
	uint64_t consumed, corrupt, out_of_order, spilled_recs;
	struct rf_ring_stats rstats;
	int have_rstats;
	int sndbuf, rcvbuf; /* effective socket buffer sizes */

	char errmsg[256];
	uint64_t received_next[MAX_THREADS]; /* consumer's next expected seq */
	struct thread_slot slot[];
};
void sh_fail(struct shared *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- records ---- */

struct rec_hdr {
	uint32_t tid;
	uint32_t len;
	uint64_t seq;
};

static inline void rec_fill(void *p, size_t len, uint32_t tid, uint64_t seq)
{
	struct rec_hdr h = { .tid = tid, .len = (uint32_t)len, .seq = seq };
	memcpy(p, &h, sizeof h);
	memset((unsigned char *)p + sizeof h, (int)(seq & 0xff), len - sizeof h);
}

struct verifier {
	struct shared *sh;
	size_t bytes;
	unsigned nthreads;
	uint64_t consumed, corrupt, out_of_order, spilled;
};

static inline void rec_check(struct verifier *v, const void *p, size_t len)
{
	struct rec_hdr h;
	v->consumed++;
	if (len != v->bytes || len < sizeof h) {
		v->corrupt++;
		return;
	}
	memcpy(&h, p, sizeof h);
	if (h.tid >= v->nthreads || h.len != len ||
	    ((const unsigned char *)p)[len - 1] != (unsigned char)h.seq) {
		v->corrupt++;
		return;
	}
	uint64_t *next = &v->sh->received_next[h.tid];
	if (h.seq != *next)
		v->out_of_order++;
	if (h.seq >= *next)
		*next = h.seq + 1;
}

/* ---- one configuration ---- */

struct run {
	const struct opts *o;
	enum transport tr;
	unsigned producers, threads, nthreads;
	size_t bytes;
	char name[64];       /* ring name */
	int sv[2];           /* socketpair: [0] consumer, [1] producers */
	struct shared *sh;
};

struct thread_arg {
	struct run *run;
	rf_ring *ring;
	int fd;
	unsigned tid;
};

/* Give up when nothing arrives for this long after the producers finished. */
#define DRAIN_STALL_NS (10ull * 1000 * 1000 * 1000)

/* Outcome of one run of one configuration. */
struct result {
	uint64_t committed, consumed, lost, corrupt, out_of_order, eagain, samples;
	uint64_t spilled_recs;
	double wall_s, rps, p50, p99, p999, pmax, mean;
	struct rf_ring_stats rstats;
	bool have_rstats, ok;
	int sndbuf, rcvbuf;
	char errmsg[256];
};

/* ring_bench_run.c */
void wait_start(struct shared *sh);
void thread_finish(struct shared *sh, struct thread_slot *s, uint64_t seq, uint64_t eagain);
void child_setup(void);
bool all_received(struct shared *sh, unsigned nthreads, uint64_t consumed);
/* A consumer's turn that read nothing: 1 once every record has arrived
 * (t_end stamped), -1 on a failure (a producer's, or nothing more for
 * DRAIN_STALL_NS after the producers finished; `what` names the unit in the
 * message), else 0.  *last_progress is 0 after a turn that made progress. */
int consumer_idle(struct shared *sh, const struct run *run, uint64_t consumed,
		  uint64_t *last_progress, const char *what);
void consumer_finish(struct shared *sh, struct verifier *v, bool ok);
void run_config(const struct opts *o, enum transport tr, unsigned producers, unsigned threads,
		size_t bytes, unsigned seq_no, struct result *res);

/* ring_bench_ring.c */
void *ring_producer_thread(void *p);
void ring_consumer_process(struct run *run);

/* ring_bench_dgram.c */
void *dgram_producer_thread(void *p);
void dgram_consumer_process(struct run *run);
int set_sockbuf(int fd, int opt_force, int opt, int bytes);

/* ring_bench_report.c */
void sleep_ns(uint64_t ns);
void timer_calibrate(void);
double h_value(unsigned i);
double percentile(const uint64_t *hist, uint64_t n, double q);
double measure_timer_overhead(void);
int report(const struct opts *o, enum transport tr, unsigned producers, unsigned threads,
	   size_t bytes, struct result *runs, unsigned n);

/* One producer thread's loop, the same for every transport: send(a, ctx,
 * seq) writes record `seq` and says how it went; every sample_every-th
 * send is timed (its latency histogram), a full transport is counted in
 * eagain and tried again until the run stops.  Inlined with the transport's
 * send, so no call is added to what is measured. */
enum send_result {
	SEND_OK,
	SEND_FULL,  /* no room now: counted, tried again unless stopping */
	SEND_RETRY, /* interrupted: tried again, not counted */
	SEND_FAIL,  /* sh_fail() said why */
};

static inline __attribute__((always_inline)) void
producer_loop(struct thread_arg *a, enum send_result (*send)(struct thread_arg *, void *, uint64_t),
	      void *ctx)
{
	struct shared *sh = a->run->sh;
	struct thread_slot *s = &sh->slot[a->tid];
	const uint64_t limit = a->run->o->records ? a->run->o->records : UINT64_MAX;
	const uint64_t mask = a->run->o->sample_every - 1;
	uint64_t seq = 0, eagain = 0, samples = 0;

	wait_start(sh);
	while (seq < limit) {
		if ((seq & 63) == 0 && atomic_load_explicit(&sh->stop, memory_order_relaxed))
			break;
		const bool timed = (seq & mask) == 0;
		uint64_t t0 = timed ? ticks() : 0;
		enum send_result r = send(a, ctx, seq);
		if (r == SEND_RETRY)
			continue;
		if (r == SEND_FULL) {
			eagain++;
			if (atomic_load_explicit(&sh->stop, memory_order_relaxed))
				break;
			continue;
		}
		if (r == SEND_FAIL)
			break;
		if (timed) {
			uint64_t t1 = ticks();
			s->hist[h_index(t1 > t0 ? t1 - t0 : 0)]++;
			samples++;
		}
		seq++;
	}
	s->samples = samples;
	thread_finish(sh, s, seq, eagain);
}

#endif
