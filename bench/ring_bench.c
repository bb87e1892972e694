/*
 * ring_bench.c - throughput and producer-side cost of the ringflow ring,
 * against a UNIX datagram socket baseline, with the same records.
 *
 * One run of a configuration:
 *
 *   coordinator (this process, single-threaded)
 *     +-- consumer process   ring: rf_ring_open(CREATE|CONSUMER), drains with
 *     |                            rf_ring_consume / rf_ring_wait
 *     |                      unix_dgram: recvmmsg on the read end of a
 *     |                            socketpair(AF_UNIX, SOCK_DGRAM)
 *     +-- P producer processes (fork), each opening the ring itself after the
 *           fork (flags 0, RF_RING_FULL_WAIT) and running T threads; every
 *           thread writes records of `bytes` payload bytes:
 *             ring:       rf_ring_claim -> fill in place -> rf_ring_commit
 *             unix_dgram: fill a private buffer -> send() (blocking, no loss)
 *
 * Record payload: {u32 thread id, u32 length, u64 sequence} then the rest of
 * the payload memset to (uint8_t)sequence.  The consumer checks the length,
 * the per-thread sequence (each thread's records must arrive in order, none
 * missing or duplicated) and the last fill byte, and counts every record.
 *
 * Throughput: records consumed / (time the consumer has received every record
 * committed - time the coordinator released the start barrier).  Producers run
 * for --seconds (default) or write a fixed --records each.
 *
 * Producer cost: the claim+fill+commit (or fill+send) of 1 record in every
 * --sample-every (default 8) is timed, with rdtsc (lfence-serialised, calibrated
 * against CLOCK_MONOTONIC) on x86-64, else clock_gettime(CLOCK_MONOTONIC).
 * Samples go to a per-thread log-linear histogram (<= 1.6 % bucket error); the
 * cost of one timer read (back to back) is reported as timer_overhead_ns and is
 * NOT subtracted.  Timing is sampled so that the timer does not slow the
 * throughput measurement.
 *
 * Output: one JSON object per line per configuration on stdout; progress and
 * errors on stderr.  Exit status 0 if every run completed without loss or
 * corruption.
 */
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
static const char *const transport_name[] = { "ring", "unix_dgram" };

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

static bool g_use_tsc;
static double g_ns_per_tick = 1.0;

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

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void timer_calibrate(void)
{
	if (!g_use_tsc) {
		g_ns_per_tick = 1.0;
		return;
	}
	uint64_t m0 = mono_ns(), c0 = ticks();
	sleep_ns(100 * 1000 * 1000);
	uint64_t m1 = mono_ns(), c1 = ticks();
	if (c1 <= c0) { /* a TSC that does not move: fall back */
		g_use_tsc = false;
		g_ns_per_tick = 1.0;
		return;
	}
	g_ns_per_tick = (double)(m1 - m0) / (double)(c1 - c0);
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

/* Representative value (middle) of bucket i. */
static double h_value(unsigned i)
{
	if (i < 2 * H_SUB)
		return (double)i;
	unsigned g = i / H_SUB - 1;
	uint64_t low = ((uint64_t)(H_SUB + i % H_SUB)) << g;
	return (double)low + (double)((1ull << g) - 1) / 2.0;
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

static void sh_fail(struct shared *sh, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sh_fail(struct shared *sh, const char *fmt, ...)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&sh->failed, &expected, 1)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(sh->errmsg, sizeof sh->errmsg, fmt, ap);
		va_end(ap);
		for (char *p = sh->errmsg; *p; p++)
			if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
				*p = '\'';
	}
	atomic_store(&sh->stop, 1);
}

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

static void wait_start(struct shared *sh)
{
	atomic_fetch_add(&sh->threads_ready, 1);
	while (!atomic_load_explicit(&sh->start, memory_order_acquire))
		sched_yield(); /* more threads than CPUs: do not spin hard */
}

static void thread_finish(struct shared *sh, struct thread_slot *s, uint64_t seq,
			  uint64_t eagain)
{
	s->committed = seq;
	s->eagain = eagain;
	atomic_fetch_add(&sh->total_committed, seq); /* before threads_done */
	atomic_fetch_add(&sh->threads_done, 1);
}

static void *ring_producer_thread(void *p)
{
	struct thread_arg *a = p;
	struct run *run = a->run;
	struct shared *sh = run->sh;
	struct thread_slot *s = &sh->slot[a->tid];
	const size_t bytes = run->bytes;
	const uint64_t limit = run->o->records ? run->o->records : UINT64_MAX;
	const uint64_t mask = run->o->sample_every - 1;
	uint64_t seq = 0, eagain = 0, samples = 0;

	wait_start(sh);
	while (seq < limit) {
		if ((seq & 63) == 0 && atomic_load_explicit(&sh->stop, memory_order_relaxed))
			break;
		const bool timed = (seq & mask) == 0;
		uint64_t t0 = timed ? ticks() : 0;
		struct rf_ring_claim c;
		int rc = rf_ring_claim(a->ring, REC_TYPE, bytes, &c);
		if (rc == -EAGAIN) {
			eagain++;
			if (atomic_load_explicit(&sh->stop, memory_order_relaxed))
				break;
			continue;
		}
		if (rc < 0) {
			sh_fail(sh, "rf_ring_claim: %s (%s)", strerror(-rc), rf_ring_errmsg());
			break;
		}
		rec_fill(c.data, bytes, a->tid, seq);
		rc = rf_ring_commit(a->ring, &c);
		if (rc < 0) {
			sh_fail(sh, "rf_ring_commit: %s (%s)", strerror(-rc), rf_ring_errmsg());
			break;
		}
		if (timed) {
			uint64_t t1 = ticks();
			s->hist[h_index(t1 > t0 ? t1 - t0 : 0)]++;
			samples++;
		}
		seq++;
	}
	s->samples = samples;
	thread_finish(sh, s, seq, eagain);
	return NULL;
}

static void *dgram_producer_thread(void *p)
{
	struct thread_arg *a = p;
	struct run *run = a->run;
	struct shared *sh = run->sh;
	struct thread_slot *s = &sh->slot[a->tid];
	const size_t bytes = run->bytes;
	const uint64_t limit = run->o->records ? run->o->records : UINT64_MAX;
	const uint64_t mask = run->o->sample_every - 1;
	uint64_t seq = 0, eagain = 0, samples = 0;
	void *buf = aligned_alloc(64, (bytes + 63) & ~(size_t)63);

	if (!buf) {
		sh_fail(sh, "out of memory");
		thread_finish(sh, s, 0, 0);
		return NULL;
	}
	wait_start(sh);
	while (seq < limit) {
		if ((seq & 63) == 0 && atomic_load_explicit(&sh->stop, memory_order_relaxed))
			break;
		const bool timed = (seq & mask) == 0;
		uint64_t t0 = timed ? ticks() : 0;
		rec_fill(buf, bytes, a->tid, seq);
		ssize_t w = send(a->fd, buf, bytes, 0);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == ENOBUFS) {
				eagain++;
				if (atomic_load_explicit(&sh->stop, memory_order_relaxed))
					break;
				continue;
			}
			sh_fail(sh, "send: %s", strerror(errno));
			break;
		}
		if ((size_t)w != bytes) {
			sh_fail(sh, "send: short datagram %zd of %zu", w, bytes);
			break;
		}
		if (timed) {
			uint64_t t1 = ticks();
			s->hist[h_index(t1 > t0 ? t1 - t0 : 0)]++;
			samples++;
		}
		seq++;
	}
	free(buf);
	s->samples = samples;
	thread_finish(sh, s, seq, eagain);
	return NULL;
}

static void child_setup(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* do not outlive a killed coordinator */
}

static void producer_process(struct run *run, unsigned proc)
{
	struct shared *sh = run->sh;
	struct thread_arg args[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	rf_ring *ring = NULL;
	unsigned started = 0;

	child_setup();
	if (run->tr == T_RING) {
		close(run->sv[0]);
		struct rf_ring_opts ro = {
			.flags = 0,
			.full_policy = RF_RING_FULL_WAIT,
			.full_wait_ns = run->o->full_wait_ns,
		};
		int rc = rf_ring_open(&ring, run->name, &ro);
		if (rc < 0) {
			sh_fail(sh, "producer %u: rf_ring_open(%s): %s (%s)", proc, run->name,
				strerror(-rc), rf_ring_errmsg());
			_exit(1);
		}
	} else {
		close(run->sv[0]);
	}
	for (unsigned t = 0; t < run->threads; t++) {
		struct thread_arg *a = &args[t];
		a->run = run;
		a->ring = ring;
		a->fd = run->sv[1];
		a->tid = proc * run->threads + t;
		int rc = pthread_create(&th[t], NULL,
					run->tr == T_RING ? ring_producer_thread
							  : dgram_producer_thread,
					a);
		if (rc != 0) {
			sh_fail(sh, "pthread_create: %s", strerror(rc));
			break;
		}
		started++;
	}
	for (unsigned t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	if (ring)
		rf_ring_close(ring);
	_exit(started == run->threads ? 0 : 1);
}

/* True once every producer thread has finished and every record it committed
 * has been received. */
static bool all_received(struct shared *sh, unsigned nthreads, uint64_t consumed)
{
	if (atomic_load_explicit(&sh->threads_done, memory_order_acquire) != nthreads)
		return false;
	return consumed >= atomic_load_explicit(&sh->total_committed, memory_order_acquire);
}

static int ring_handler(const struct rf_ring_rec *rec, void *arg)
{
	struct verifier *v = arg;
	if (rec->flags & RF_REC_SPILLED)
		v->spilled++;
	rec_check(v, rec->data, rec->len);
	return 0;
}

/* Give up when nothing arrives for this long after the producers finished. */
#define DRAIN_STALL_NS (10ull * 1000 * 1000 * 1000)

static void consumer_finish(struct shared *sh, struct verifier *v, bool ok)
{
	sh->consumed = v->consumed;
	sh->corrupt = v->corrupt;
	sh->out_of_order = v->out_of_order;
	sh->spilled_recs = v->spilled;
	atomic_store(&sh->consumer_state, ok ? 2 : -1);
}

static void ring_consumer_process(struct run *run)
{
	struct shared *sh = run->sh;
	struct verifier v = { .sh = sh, .bytes = run->bytes, .nthreads = run->nthreads };
	rf_ring *ring = NULL;
	bool ok = true;

	child_setup();
	struct rf_ring_opts ro = {
		.capacity = run->o->capacity,
		.flags = RF_RING_CREATE | RF_RING_CONSUMER,
		.full_policy = RF_RING_FULL_WAIT,
		.full_wait_ns = run->o->full_wait_ns,
	};
	int rc = rf_ring_open(&ring, run->name, &ro);
	if (rc < 0) {
		sh_fail(sh, "consumer: rf_ring_open(%s, CREATE|CONSUMER): %s (%s)", run->name,
			strerror(-rc), rf_ring_errmsg());
		atomic_store(&sh->consumer_state, -1);
		_exit(1);
	}
	atomic_store(&sh->consumer_state, 1);

	uint64_t last_progress = mono_ns();
	for (;;) {
		int n = rf_ring_consume(ring, ring_handler, &v, run->o->batch);
		if (n < 0) {
			sh_fail(sh, "rf_ring_consume: %s (%s)", strerror(-n), rf_ring_errmsg());
			ok = false;
			break;
		}
		if (n > 0) {
			last_progress = 0;
			continue;
		}
		if (all_received(sh, run->nthreads, v.consumed)) {
			sh->t_end_ns = mono_ns();
			break;
		}
		if (atomic_load(&sh->failed)) {
			ok = false;
			break;
		}
		if (atomic_load_explicit(&sh->threads_done, memory_order_acquire) ==
		    run->nthreads) {
			uint64_t now = mono_ns();
			if (last_progress == 0)
				last_progress = now;
			else if (now - last_progress > DRAIN_STALL_NS) {
				sh_fail(sh, "consumer: no record for %llu s after the producers "
					    "finished (%" PRIu64 " of %" PRIu64 ")",
					DRAIN_STALL_NS / 1000000000ull, v.consumed,
					atomic_load(&sh->total_committed));
				sh->t_end_ns = now;
				ok = false;
				break;
			}
		}
		rf_ring_wait(ring, 1000 * 1000);
	}
	if (rf_ring_stats(ring, &sh->rstats) == 0)
		sh->have_rstats = 1;
	rf_ring_close(ring);
	consumer_finish(sh, &v, ok);
	_exit(ok ? 0 : 1);
}

static void dgram_consumer_process(struct run *run)
{
	struct shared *sh = run->sh;
	struct verifier v = { .sh = sh, .bytes = run->bytes, .nthreads = run->nthreads };
	const int fd = run->sv[0];
	const size_t slot_bytes = (run->bytes + 64) & ~(size_t)63; /* room to see oversize */
	bool ok = true;

	child_setup();
	close(run->sv[1]);
	unsigned char *buf = malloc(slot_bytes * RECV_BATCH);
	struct mmsghdr *mm = calloc(RECV_BATCH, sizeof *mm);
	struct iovec *iov = calloc(RECV_BATCH, sizeof *iov);
	if (!buf || !mm || !iov) {
		sh_fail(sh, "consumer: out of memory");
		atomic_store(&sh->consumer_state, -1);
		_exit(1);
	}
	for (unsigned i = 0; i < RECV_BATCH; i++) {
		iov[i].iov_base = buf + i * slot_bytes;
		iov[i].iov_len = slot_bytes;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	atomic_store(&sh->consumer_state, 1);

	uint64_t last_progress = 0;
	for (;;) {
		int n = recvmmsg(fd, mm, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n > 0) {
			for (int i = 0; i < n; i++) {
				if (mm[i].msg_hdr.msg_flags & MSG_TRUNC)
					v.corrupt++;
				rec_check(&v, iov[i].iov_base, mm[i].msg_len);
				mm[i].msg_hdr.msg_flags = 0;
			}
			last_progress = 0;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			sh_fail(sh, "recvmmsg: %s", strerror(errno));
			ok = false;
			break;
		}
		if (all_received(sh, run->nthreads, v.consumed)) {
			sh->t_end_ns = mono_ns();
			break;
		}
		if (atomic_load(&sh->failed)) {
			ok = false;
			break;
		}
		if (atomic_load_explicit(&sh->threads_done, memory_order_acquire) ==
		    run->nthreads) {
			uint64_t now = mono_ns();
			if (last_progress == 0)
				last_progress = now;
			else if (now - last_progress > DRAIN_STALL_NS) {
				sh_fail(sh, "consumer: no datagram for %llu s after the producers "
					    "finished (%" PRIu64 " of %" PRIu64 ")",
					DRAIN_STALL_NS / 1000000000ull, v.consumed,
					atomic_load(&sh->total_committed));
				sh->t_end_ns = now;
				ok = false;
				break;
			}
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		poll(&pfd, 1, 1);
	}
	consumer_finish(sh, &v, ok);
	_exit(ok ? 0 : 1);
}

static int set_sockbuf(int fd, int opt_force, int opt, int bytes)
{
	int got = 0;
	socklen_t len = sizeof got;
	/* SO_*BUFFORCE passes net.core.[wr]mem_max when privileged. */
	if (setsockopt(fd, SOL_SOCKET, opt_force, &bytes, sizeof bytes) != 0)
		setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
	getsockopt(fd, SOL_SOCKET, opt, &got, &len);
	return got;
}

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

static double percentile(const uint64_t *hist, uint64_t n, double q)
{
	if (n == 0)
		return NAN;
	uint64_t rank = (uint64_t)ceil(q * (double)n);
	if (rank < 1)
		rank = 1;
	uint64_t cum = 0;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		cum += hist[i];
		if (cum >= rank)
			return h_value(i) * g_ns_per_tick;
	}
	return NAN;
}

static void print_num(const char *key, double v, int prec)
{
	if (isfinite(v))
		printf(",\"%s\":%.*f", key, prec, v);
	else
		printf(",\"%s\":null", key);
}

static double g_timer_overhead_ns, g_timer_res_ns = NAN;

/* One run of one configuration into *res; res->ok if every record arrived intact. */
static void run_config(const struct opts *o, enum transport tr, unsigned producers,
		       unsigned threads, size_t bytes, unsigned seq_no, struct result *res)
{
	memset(res, 0, sizeof *res);
	res->rps = res->p50 = res->p99 = res->p999 = res->pmax = res->mean = NAN;
	struct run run = {
		.o = o, .tr = tr, .producers = producers, .threads = threads,
		.nthreads = producers * threads, .bytes = bytes, .sv = { -1, -1 },
	};
	size_t shsize = sizeof(struct shared) + run.nthreads * sizeof(struct thread_slot);
	struct shared *sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		snprintf(res->errmsg, sizeof res->errmsg, "mmap: %s", strerror(errno));
		return;
	}
	run.sh = sh;
	snprintf(run.name, sizeof run.name, "/rf-bench-%d-%u", (int)getpid(), seq_no);

	if (tr == T_DGRAM) {
		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, run.sv) != 0) {
			snprintf(res->errmsg, sizeof res->errmsg, "socketpair: %s",
				 strerror(errno));
			munmap(sh, shsize);
			return;
		}
		sh->sndbuf = set_sockbuf(run.sv[1], SO_SNDBUFFORCE, SO_SNDBUF, o->sockbuf);
		sh->rcvbuf = set_sockbuf(run.sv[0], SO_RCVBUFFORCE, SO_RCVBUF, o->sockbuf);
	}

	fprintf(stderr, "ring_bench: %s producers=%u threads=%u bytes=%zu ...\n",
		transport_name[tr], producers, threads, bytes);

	pid_t pids[MAX_THREADS + 1];
	unsigned npids = 0;
	bool reaped[MAX_THREADS + 1] = { false };
	int status_bad = 0;

	/* consumer first: it creates the ring */
	pid_t c = fork();
	if (c < 0) {
		snprintf(res->errmsg, sizeof res->errmsg, "fork: %s", strerror(errno));
		if (run.sv[0] >= 0) {
			close(run.sv[0]);
			close(run.sv[1]);
		}
		munmap(sh, shsize);
		return;
	}
	if (c == 0) {
		if (tr == T_RING)
			ring_consumer_process(&run);
		else
			dgram_consumer_process(&run);
	}
	pids[npids++] = c;

	uint64_t deadline = mono_ns() + 10ull * 1000000000ull;
	while (atomic_load(&sh->consumer_state) == 0 && mono_ns() < deadline)
		sleep_ns(100 * 1000);
	if (atomic_load(&sh->consumer_state) != 1) {
		if (!atomic_load(&sh->failed))
			sh_fail(sh, "consumer did not become ready");
		goto collect;
	}

	for (unsigned p = 0; p < producers; p++) {
		pid_t pid = fork();
		if (pid < 0) {
			sh_fail(sh, "fork: %s", strerror(errno));
			break;
		}
		if (pid == 0)
			producer_process(&run, p);
		pids[npids++] = pid;
	}

	deadline = mono_ns() + 10ull * 1000000000ull;
	while (atomic_load(&sh->threads_ready) < run.nthreads && !atomic_load(&sh->failed) &&
	       mono_ns() < deadline)
		sleep_ns(100 * 1000);
	if (atomic_load(&sh->threads_ready) < run.nthreads && !atomic_load(&sh->failed))
		sh_fail(sh, "producer threads did not become ready");

collect:;
	uint64_t t_start = mono_ns();
	atomic_store_explicit(&sh->start, 1, memory_order_release);

	const uint64_t run_ns = o->records ? 0 : (uint64_t)(o->seconds * 1e9);
	const uint64_t hard_ns = run_ns + (uint64_t)(o->timeout * 1e9);
	unsigned live = npids;
	bool killed = false;
	while (live > 0) {
		int st;
		pid_t w = waitpid(-1, &st, WNOHANG);
		if (w > 0) {
			for (unsigned i = 0; i < npids; i++)
				if (pids[i] == w && !reaped[i]) {
					reaped[i] = true;
					live--;
					if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
						status_bad = 1;
						if (WIFSIGNALED(st))
							sh_fail(sh, "child %d killed by signal %d",
								(int)w, WTERMSIG(st));
						else
							sh_fail(sh, "child %d exited with status %d",
								(int)w, WEXITSTATUS(st));
					}
					if (i == 0 && live > 0) /* consumer gone early */
						atomic_store(&sh->stop, 1);
				}
			continue;
		}
		if (w < 0 && errno != EINTR)
			break;
		uint64_t el = mono_ns() - t_start;
		if (!atomic_load(&sh->stop) && run_ns && el >= run_ns)
			atomic_store(&sh->stop, 1);
		if (!killed && el >= hard_ns + DRAIN_STALL_NS) {
			sh_fail(sh, "run hung: killed after %.1f s", (double)el / 1e9);
			for (unsigned i = 0; i < npids; i++)
				if (!reaped[i])
					kill(pids[i], SIGKILL);
			killed = true;
		}
		sleep_ns(2 * 1000 * 1000);
	}

	if (tr == T_RING)
		rf_ring_unlink(run.name); /* harmless if it was never created */
	if (run.sv[0] >= 0) {
		close(run.sv[0]);
		close(run.sv[1]);
	}

	/* ---- results ---- */
	struct result *const r = res;
	static uint64_t hist[H_BUCKETS];
	memset(hist, 0, sizeof hist);
	double sum_ticks = 0;
	for (unsigned t = 0; t < run.nthreads; t++) {
		struct thread_slot *s = &sh->slot[t];
		r->committed += s->committed;
		r->eagain += s->eagain;
		r->samples += s->samples;
		for (unsigned i = 0; i < H_BUCKETS; i++) {
			hist[i] += s->hist[i];
			sum_ticks += (double)s->hist[i] * h_value(i);
		}
	}
	r->consumed = sh->consumed;
	r->corrupt = sh->corrupt;
	r->out_of_order = sh->out_of_order;
	/* per-thread: every sequence number up to `committed` must have been seen */
	uint64_t missing = 0;
	for (unsigned t = 0; t < run.nthreads; t++)
		if (sh->received_next[t] < sh->slot[t].committed)
			missing += sh->slot[t].committed - sh->received_next[t];
	uint64_t good = r->consumed >= r->corrupt ? r->consumed - r->corrupt : 0;
	r->lost = r->committed > good ? r->committed - good : 0;
	if (missing > r->lost)
		r->lost = missing;
	uint64_t t_end = sh->t_end_ns ? sh->t_end_ns : mono_ns();
	r->wall_s = (double)(t_end - t_start) / 1e9;
	r->rps = r->wall_s > 0 ? (double)r->consumed / r->wall_s : NAN;
	r->p50 = percentile(hist, r->samples, 0.50);
	r->p99 = percentile(hist, r->samples, 0.99);
	r->p999 = percentile(hist, r->samples, 0.999);
	r->pmax = percentile(hist, r->samples, 1.0);
	r->mean = r->samples ? sum_ticks / (double)r->samples * g_ns_per_tick : NAN;

	bool failed = atomic_load(&sh->failed) || status_bad;
	r->ok = !failed && r->lost == 0 && r->corrupt == 0 && r->out_of_order == 0;
	r->spilled_recs = sh->spilled_recs;
	r->have_rstats = sh->have_rstats;
	r->rstats = sh->rstats;
	r->sndbuf = sh->sndbuf;
	r->rcvbuf = sh->rcvbuf;
	memcpy(r->errmsg, sh->errmsg, sizeof r->errmsg);
	r->errmsg[sizeof r->errmsg - 1] = 0;
	munmap(sh, shsize);
}

static int cmp_rps(const void *a, const void *b)
{
	const struct result *x = *(const struct result *const *)a;
	const struct result *y = *(const struct result *const *)b;
	double u = isfinite(x->rps) ? x->rps : -1, v = isfinite(y->rps) ? y->rps : -1;
	return u < v ? -1 : u > v;
}

/* One JSON line for `n` runs of a configuration: the figures of the run with
 * the median throughput, loss and errors summed over every run. */
static int report(const struct opts *o, enum transport tr, unsigned producers,
		  unsigned threads, size_t bytes, struct result *runs, unsigned n)
{
	const struct result *sorted[MAX_REPEAT];
	uint64_t lost = 0, corrupt = 0, ooo = 0, eagain = 0;
	bool ok = true;
	const char *err = NULL;
	for (unsigned i = 0; i < n; i++) {
		sorted[i] = &runs[i];
		lost += runs[i].lost;
		corrupt += runs[i].corrupt;
		ooo += runs[i].out_of_order;
		eagain += runs[i].eagain;
		ok = ok && runs[i].ok;
		if (!err && runs[i].errmsg[0])
			err = runs[i].errmsg;
	}
	qsort(sorted, n, sizeof sorted[0], cmp_rps);
	const struct result *r = sorted[(n - 1) / 2]; /* lower median for even n */

	printf("{\"bench\":\"ring\",\"transport\":\"%s\",\"producers\":%u,\"threads\":%u,"
	       "\"record_bytes\":%zu,\"records\":%" PRIu64,
	       transport_name[tr], producers, threads, bytes, r->consumed);
	print_num("records_per_s", r->rps, 0);
	print_num("mb_per_s", r->rps * (double)bytes / 1e6, 1);
	print_num("p50_ns", r->p50, 1);
	print_num("p99_ns", r->p99, 1);
	print_num("p999_ns", r->p999, 1);
	print_num("max_ns", r->pmax, 0);
	print_num("mean_ns", r->mean, 1);
	printf(",\"lost\":%" PRIu64 ",\"committed\":%" PRIu64 ",\"corrupt\":%" PRIu64
	       ",\"out_of_order\":%" PRIu64 ",\"eagain\":%" PRIu64,
	       lost, r->committed, corrupt, ooo, eagain);
	print_num("wall_s", r->wall_s, 4);
	printf(",\"repeat\":%u,\"records_per_s_runs\":[", n);
	for (unsigned i = 0; i < n; i++) {
		if (i)
			putchar(',');
		if (isfinite(runs[i].rps))
			printf("%.0f", runs[i].rps);
		else
			printf("null");
	}
	printf("]");
	printf(",\"samples\":%" PRIu64 ",\"sample_every\":%u,\"timer\":\"%s\"", r->samples,
	       o->sample_every, g_use_tsc ? "rdtsc" : "clock_gettime");
	print_num("timer_overhead_ns", g_timer_overhead_ns, 1);
	print_num("timer_resolution_ns", g_timer_res_ns, 1);
	if (o->records)
		printf(",\"mode\":\"count\",\"records_per_thread\":%" PRIu64, o->records);
	else
		printf(",\"mode\":\"duration\",\"seconds\":%.3f", o->seconds);
	if (tr == T_RING) {
		printf(",\"capacity\":%zu,\"full_wait_ns\":%" PRIu64 ",\"spilled_records\":%" PRIu64,
		       o->capacity, o->full_wait_ns, r->spilled_recs);
		if (r->have_rstats)
			printf(",\"spilled\":%" PRIu64 ",\"dropped\":%" PRIu64
			       ",\"claim_timeouts\":%" PRIu64 ",\"abandoned\":%" PRIu64
			       ",\"wakeups\":%" PRIu64,
			       r->rstats.spilled, r->rstats.dropped, r->rstats.claim_timeouts,
			       r->rstats.abandoned, r->rstats.wakeups);
	} else {
		printf(",\"sndbuf\":%d,\"rcvbuf\":%d", r->sndbuf, r->rcvbuf);
	}
	printf(",\"ok\":%s", ok ? "true" : "false");
	if (err)
		printf(",\"error\":\"%s\"", err);
	printf("}\n");
	fflush(stdout);
	return ok ? 0 : 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Median cost of one timer read, measured back to back. */
static double measure_timer_overhead(void)
{
	enum { N = 20001 };
	static uint64_t d[N];
	for (unsigned i = 0; i < N; i++) {
		uint64_t a = ticks();
		uint64_t b = ticks();
		d[i] = b - a;
	}
	qsort(d, N, sizeof d[0], cmp_u64);
	for (unsigned i = 0; i < N; i++)
		if (d[i]) { /* smallest step the timer shows */
			g_timer_res_ns = (double)d[i] * g_ns_per_tick;
			break;
		}
	return (double)d[N / 2] * g_ns_per_tick;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ring_bench [options]\n"
		"\n"
		"Benchmarks the ringflow MPSC shared-memory ring against a UNIX datagram\n"
		"socket (socketpair(AF_UNIX, SOCK_DGRAM), blocking sends) with the same\n"
		"records: P producer processes (fork) x T threads each, one consumer\n"
		"process.  Prints one JSON object per configuration on stdout.\n"
		"\n"
		"  --transport LIST   ring, unix_dgram or both (default both)\n"
		"  --config LIST      producers:threads pairs (default 1:1,2:1,4:1,4:4)\n"
		"  --producers LIST   producer processes; with --threads, replaces --config\n"
		"                     by the cross product (e.g. --producers 1,2 --threads 1)\n"
		"  --threads LIST     threads per producer process\n"
		"  --bytes LIST       payload bytes per record, >= %u (default 64,128,1024,4096)\n"
		"  --seconds S        run each configuration for S seconds (default 1.5)\n"
		"  --records N        instead, each thread writes exactly N records\n"
		"  --capacity BYTES   ring data area, power of two (default %u = 16 MiB)\n"
		"  --full-wait-ns NS  RF_RING_FULL_WAIT bound on waiting for room\n"
		"                     (default 10000000000 = 10 s)\n"
		"  --sample-every N   time 1 record in N, power of two (default 8)\n"
		"  --timer tsc|clock  rdtsc (x86-64 default) or clock_gettime(CLOCK_MONOTONIC)\n"
		"  --batch N          rf_ring_consume max records per call (default 4096)\n"
		"  --sockbuf BYTES    SO_SNDBUF/SO_RCVBUF for unix_dgram (default 8 MiB)\n"
		"  --repeat N         run each configuration N times (1..%d, default 1) and\n"
		"                     report the run with the median records/s; loss and\n"
		"                     errors are summed over all N runs\n"
		"  --timeout S        seconds beyond the run before it is declared hung (30)\n"
		"  -h, --help         this text\n"
		"\n"
		"LIST is comma-separated.  Exit status: 0 if every run received every\n"
		"record intact, 1 otherwise, 2 on bad usage.\n",
		HDR_BYTES, RF_RING_DEFAULT_CAPACITY, MAX_REPEAT);
}

static unsigned parse_list(const char *s, const char *what, unsigned long long *out)
{
	unsigned n = 0;
	const char *p = s;
	while (*p) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(p, &end, 0);
		if (end == p || errno || (*end && *end != ',') || n == MAX_LIST) {
			fprintf(stderr, "ring_bench: bad %s list '%s'\n", what, s);
			exit(2);
		}
		out[n++] = v;
		p = *end ? end + 1 : end;
	}
	if (n == 0) {
		fprintf(stderr, "ring_bench: empty %s list\n", what);
		exit(2);
	}
	return n;
}

static double parse_double(const char *s, const char *what)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !(v > 0)) {
		fprintf(stderr, "ring_bench: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static unsigned long long parse_u64(const char *s, const char *what)
{
	unsigned long long v[MAX_LIST];
	if (parse_list(s, what, v) != 1) {
		fprintf(stderr, "ring_bench: %s takes one value\n", what);
		exit(2);
	}
	return v[0];
}

int main(int argc, char **argv)
{
	struct opts o = {
		.transports = (1u << T_RING) | (1u << T_DGRAM),
		.seconds = 1.5,
		.capacity = RF_RING_DEFAULT_CAPACITY,
		.full_wait_ns = 10ull * 1000 * 1000 * 1000,
		.sample_every = 8,
		.batch = 4096,
		.repeat = 1,
		.sockbuf = 8 << 20,
		.timeout = 30,
#if defined(__x86_64__)
		.use_tsc = true,
#endif
	};
	unsigned long long prod[MAX_LIST], thr[MAX_LIST], tmp[MAX_LIST];
	unsigned n_prod = 0, n_thr = 0;
	static const unsigned def_pt[][2] = { { 1, 1 }, { 2, 1 }, { 4, 1 }, { 4, 4 } };
	static const size_t def_bytes[] = { 64, 128, 1024, 4096 };

	o.n_pt = 4;
	memcpy(o.pt, def_pt, sizeof def_pt);
	o.n_bytes = 4;
	memcpy(o.bytes, def_bytes, sizeof def_bytes);

	enum { O_TRANSPORT = 256, O_CONFIG, O_PRODUCERS, O_THREADS, O_BYTES, O_SECONDS,
	       O_RECORDS, O_CAPACITY, O_FULLWAIT, O_SAMPLE, O_TIMER, O_BATCH, O_SOCKBUF,
	       O_TIMEOUT, O_REPEAT };
	static const struct option lo[] = {
		{ "transport", required_argument, NULL, O_TRANSPORT },
		{ "config", required_argument, NULL, O_CONFIG },
		{ "producers", required_argument, NULL, O_PRODUCERS },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "bytes", required_argument, NULL, O_BYTES },
		{ "seconds", required_argument, NULL, O_SECONDS },
		{ "records", required_argument, NULL, O_RECORDS },
		{ "capacity", required_argument, NULL, O_CAPACITY },
		{ "full-wait-ns", required_argument, NULL, O_FULLWAIT },
		{ "sample-every", required_argument, NULL, O_SAMPLE },
		{ "timer", required_argument, NULL, O_TIMER },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "sockbuf", required_argument, NULL, O_SOCKBUF },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "repeat", required_argument, NULL, O_REPEAT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case O_TRANSPORT:
			if (!strcmp(optarg, "ring"))
				o.transports = 1u << T_RING;
			else if (!strcmp(optarg, "unix_dgram") || !strcmp(optarg, "dgram"))
				o.transports = 1u << T_DGRAM;
			else if (!strcmp(optarg, "both") || !strcmp(optarg, "ring,unix_dgram"))
				o.transports = (1u << T_RING) | (1u << T_DGRAM);
			else {
				fprintf(stderr, "ring_bench: bad --transport '%s'\n", optarg);
				return 2;
			}
			break;
		case O_CONFIG: {
			o.n_pt = 0;
			const char *p = optarg;
			while (*p) {
				char *end;
				unsigned long a = strtoul(p, &end, 10), b;
				if (*end != ':' || o.n_pt == MAX_LIST)
					goto bad_config;
				p = end + 1;
				b = strtoul(p, &end, 10);
				if (end == p || (*end && *end != ','))
					goto bad_config;
				o.pt[o.n_pt][0] = (unsigned)a;
				o.pt[o.n_pt][1] = (unsigned)b;
				o.n_pt++;
				p = *end ? end + 1 : end;
			}
			if (o.n_pt == 0) {
			bad_config:
				fprintf(stderr, "ring_bench: bad --config '%s' (want P:T,...)\n",
					optarg);
				return 2;
			}
			break;
		}
		case O_PRODUCERS:
			n_prod = parse_list(optarg, "--producers", prod);
			break;
		case O_THREADS:
			n_thr = parse_list(optarg, "--threads", thr);
			break;
		case O_BYTES:
			o.n_bytes = parse_list(optarg, "--bytes", tmp);
			for (unsigned i = 0; i < o.n_bytes; i++)
				o.bytes[i] = (size_t)tmp[i];
			break;
		case O_SECONDS:
			o.seconds = parse_double(optarg, "--seconds");
			break;
		case O_RECORDS:
			o.records = parse_u64(optarg, "--records");
			break;
		case O_CAPACITY:
			o.capacity = (size_t)parse_u64(optarg, "--capacity");
			break;
		case O_FULLWAIT:
			o.full_wait_ns = parse_u64(optarg, "--full-wait-ns");
			break;
		case O_SAMPLE:
			o.sample_every = (unsigned)parse_u64(optarg, "--sample-every");
			break;
		case O_TIMER:
			if (!strcmp(optarg, "tsc")) {
#if defined(__x86_64__)
				o.use_tsc = true;
#else
				fprintf(stderr, "ring_bench: --timer tsc needs x86-64\n");
				return 2;
#endif
			} else if (!strcmp(optarg, "clock")) {
				o.use_tsc = false;
			} else {
				fprintf(stderr, "ring_bench: bad --timer '%s'\n", optarg);
				return 2;
			}
			break;
		case O_BATCH:
			o.batch = (unsigned)parse_u64(optarg, "--batch");
			break;
		case O_SOCKBUF:
			o.sockbuf = (int)parse_u64(optarg, "--sockbuf");
			break;
		case O_TIMEOUT:
			o.timeout = parse_double(optarg, "--timeout");
			break;
		case O_REPEAT:
			o.repeat = (unsigned)parse_u64(optarg, "--repeat");
			if (o.repeat < 1 || o.repeat > MAX_REPEAT) {
				fprintf(stderr, "ring_bench: --repeat must be 1..%d\n", MAX_REPEAT);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ring_bench: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (n_prod || n_thr) {
		if (!n_prod) {
			prod[0] = 1;
			n_prod = 1;
		}
		if (!n_thr) {
			thr[0] = 1;
			n_thr = 1;
		}
		o.n_pt = 0;
		for (unsigned i = 0; i < n_prod; i++)
			for (unsigned j = 0; j < n_thr; j++) {
				o.pt[o.n_pt][0] = (unsigned)prod[i];
				o.pt[o.n_pt][1] = (unsigned)thr[j];
				o.n_pt++;
			}
	}
	for (unsigned i = 0; i < o.n_pt; i++) {
		if (o.pt[i][0] == 0 || o.pt[i][1] == 0 ||
		    (unsigned long long)o.pt[i][0] * o.pt[i][1] > MAX_THREADS) {
			fprintf(stderr, "ring_bench: producers x threads must be 1..%d\n",
				MAX_THREADS);
			return 2;
		}
	}
	for (unsigned i = 0; i < o.n_bytes; i++) {
		if (o.bytes[i] < HDR_BYTES || o.bytes[i] > RF_RING_MAX_RECORD(o.capacity)) {
			fprintf(stderr, "ring_bench: --bytes %zu outside %u..%zu\n", o.bytes[i],
				HDR_BYTES, RF_RING_MAX_RECORD(o.capacity));
			return 2;
		}
	}
	if (o.sample_every == 0 || (o.sample_every & (o.sample_every - 1))) {
		fprintf(stderr, "ring_bench: --sample-every must be a power of two\n");
		return 2;
	}
	if (o.batch == 0) {
		fprintf(stderr, "ring_bench: --batch must be > 0\n");
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	g_use_tsc = o.use_tsc;
	timer_calibrate();
	g_timer_overhead_ns = measure_timer_overhead();
	fprintf(stderr, "ring_bench: timer %s, %.4f ns/tick, read overhead %.1f ns, "
			"resolution %.1f ns, sampling 1 in %u\n",
		g_use_tsc ? "rdtsc" : "clock_gettime", g_ns_per_tick, g_timer_overhead_ns,
		g_timer_res_ns, o.sample_every);

	static struct result runs[MAX_REPEAT];
	int rc = 0;
	unsigned seq_no = 0;
	for (unsigned i = 0; i < o.n_pt; i++)
		for (unsigned b = 0; b < o.n_bytes; b++)
			for (unsigned t = 0; t < 2; t++) {
				if (!(o.transports & (1u << t)))
					continue;
				for (unsigned k = 0; k < o.repeat; k++)
					run_config(&o, (enum transport)t, o.pt[i][0], o.pt[i][1],
						   o.bytes[b], seq_no++, &runs[k]);
				rc |= report(&o, (enum transport)t, o.pt[i][0], o.pt[i][1],
					     o.bytes[b], runs, o.repeat);
			}
	return rc;
}
