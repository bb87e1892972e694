/*
 * rf_test_crash.h - what the ring crash tests (test_ring_crash: producers
 * killed; test_ring_crash_consumer: the consumer killed) share: child process
 * bookkeeping (spawn, reap, kill, cleanup that leaves no process, segment or
 * directory behind), self-checking records (header + crc32), the producer
 * processes and threads (survivor / random / victim / slow roles), and the
 * state they share with the parent through an anonymous MAP_SHARED mapping.
 *
 * One test program per scenario (as liburing does it: one program per
 * feature), so each can be run, timed and debugged alone; this header keeps
 * the producers they both drive identical.  Functions are static inline:
 * each program includes it once and uses only some of them.
 */
#ifndef RF_TEST_CRASH_H
#define RF_TEST_CRASH_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>

#include "rf_ring.h"
#include "rf_test.h"
#include "rf_test_mp.h"

#define MAGIC 0x48535243u /* "CRSH" */
#define NONE UINT64_MAX

/* scenario B (test_ring_crash_consumer): consumer restarts */
#define MAX_INCARNATIONS 64

#define MAXPROD 32
#define MAXCHILD 96

struct hdr {
	uint32_t magic;
	uint32_t producer;
	uint64_t seq;
	uint32_t len;
	uint32_t crc; /* crc32 of the whole payload with this field 0 */
};
_Static_assert(sizeof(struct hdr) == 24, "header");

struct pstate {
	_Atomic uint64_t committed; /* records whose commit returned */
	_Atomic uint64_t held_seq;  /* seq of the claim held across SIGSTOP */
	_Atomic int in_claim;       /* between claim return and commit return */
	_Atomic int held;           /* holding the SIGSTOP claim */
	_Atomic uint64_t eagain;
};

struct shared {
	struct pstate p[MAXPROD];
	_Atomic int go[MAXCHILD];
	_Atomic int stop;
	/* scenario B */
	_Atomic int producers_done;
	_Atomic uint64_t delivered[MAX_INCARNATIONS];
	_Atomic uint64_t dups[MAX_INCARNATIONS];
	_Atomic uint64_t spilled[MAX_INCARNATIONS];
	_Atomic uint64_t open_ns[MAX_INCARNATIONS];
	_Atomic uint32_t open_tries[MAX_INCARNATIONS];
	_Atomic int resumed[MAX_INCARNATIONS]; /* 1 resume() moved, 2 ignored */
	_Atomic int started[MAX_INCARNATIONS];
	_Atomic int at_kill_point[MAX_INCARNATIONS]; /* waiting to be SIGKILLed */
	_Atomic int held_kill[MAX_INCARNATIONS];     /* ... after a held batch */
};

struct child {
	pid_t pid;
	bool kill_expected; /* we SIGKILLed it */
	bool stopped;       /* last waitpid saw it stopped */
	bool exited;
	bool keep_zombie; /* reap() leaves it alone (a zombie once dead) */
	int status;
	const char *what;
};

static pid_t parent_pid;
static struct shared *sh;
static struct child kids[MAXCHILD];
static int nkids;
static char ring_name[64], spool_dir[128], out_dir[128];
static uint64_t seed;
/* Set before producers are spawned (fork passes them on): a pause after each
 * record and a bound on record length, so that a consumer keeps up and
 * records stay in the ring (test_ring_crash_consumer's resume phase).
 * 0 = flat out, up to the ring's max_record. */
static uint64_t producer_pace_ns, producer_len_cap;

/* ---- small helpers ---- */

static inline void sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static inline uint64_t ms(uint64_t ns)
{
	return ns / 1000000ull;
}

static inline uint64_t align8(uint64_t v)
{
	return (v + 7) & ~(uint64_t)7;
}

/* ---- cleanup: no leftover processes, segments, directories ---- */

static inline void kill_all_children(void)
{
	for (int i = 0; i < nkids; i++)
		if (kids[i].pid > 0 && !kids[i].exited) {
			kill(kids[i].pid, SIGKILL);
			waitpid(kids[i].pid, NULL, 0);
			kids[i].exited = true;
		}
}

static inline void cleanup(void)
{
	if (getpid() != parent_pid)
		return;
	kill_all_children();
	if (ring_name[0])
		rf_ring_unlink(ring_name);
	if (spool_dir[0])
		rf_test_rm_rf(spool_dir);
	if (out_dir[0])
		rf_test_rm_rf(out_dir);
}

/* Killed by a timeout (run.sh sends SIGTERM) or ^C: still leave no
 * processes or segments behind (directories are left: removing them is not
 * async-signal-safe). */
static inline void on_signal(int sig)
{
	if (getpid() == parent_pid) {
		for (int i = 0; i < nkids; i++)
			if (kids[i].pid > 0 && !kids[i].exited)
				kill(kids[i].pid, SIGKILL);
		if (ring_name[0])
			shm_unlink(ring_name);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static inline int spawn(const char *what, void (*fn)(int arg), int arg)
{
	CHECK(nkids < MAXCHILD);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent_pid)
			_exit(RF_T_FAIL);
		fn(arg);
		_exit(RF_T_FAIL); /* fn exits */
	}
	kids[nkids] = (struct child){.pid = pid, .what = what};
	return nkids++;
}

/* Collect status changes of children without blocking (children marked
 * keep_zombie are left unreaped).  A child that dies or exits non-zero
 * without us having killed it fails the test. */
static inline void reap(void)
{
	for (int i = 0; i < nkids; i++) {
		struct child *k = &kids[i];
		int st;
		while (k->pid > 0 && !k->exited && !k->keep_zombie &&
		       waitpid(k->pid, &st, WNOHANG | WUNTRACED | WCONTINUED) == k->pid) {
			if (WIFSTOPPED(st)) {
				k->stopped = true;
			} else if (WIFCONTINUED(st)) {
				k->stopped = false;
			} else {
				k->exited = true;
				k->status = st;
				if (!k->kill_expected && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
					FAIL("%s (pid %d) died unexpectedly: status %#x%s%s", k->what,
					     (int)k->pid, st, WIFSIGNALED(st) ? ", signal " : "",
					     WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "");
			}
		}
	}
}

static inline void kill_child(int i)
{
	kids[i].kill_expected = true;
	CHECK_EQ(kill(kids[i].pid, SIGKILL), 0);
}

static inline void wait_child_blocking(int i)
{
	while (!kids[i].exited) {
		int st;
		pid_t pid = waitpid(kids[i].pid, &st, 0);
		if (pid == kids[i].pid && (WIFEXITED(st) || WIFSIGNALED(st))) {
			kids[i].exited = true;
			kids[i].status = st;
			if (!kids[i].kill_expected && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
				FAIL("%s (pid %d) failed: status %#x", kids[i].what, (int)pid, st);
		} else if (pid < 0 && errno != EINTR) {
			FAIL("waitpid: %s", strerror(errno));
		}
	}
}

/* ---- records ---- */

static inline void make_record(uint8_t *d, uint32_t producer, uint64_t seq, size_t len, uint64_t x)
{
	struct hdr h = {.magic = MAGIC, .producer = producer, .seq = seq, .len = (uint32_t)len};
	size_t i = sizeof h;
	x |= 1;
	for (; i + 8 <= len; i += 8) {
		uint64_t w = xorshift(&x);
		memcpy(d + i, &w, 8);
	}
	for (; i < len; i++)
		d[i] = (uint8_t)xorshift(&x);
	memcpy(d, &h, sizeof h);
	h.crc = (uint32_t)crc32(0, d, (uInt)len);
	memcpy(d, &h, sizeof h);
}

/* 0 if `d` is an intact record; *h gets its header. */
static inline int check_record(const void *d, uint32_t len, struct hdr *h)
{
	if (len < sizeof *h)
		return -1;
	memcpy(h, d, sizeof *h);
	if (h->magic != MAGIC || h->len != len)
		return -1;
	struct hdr z = *h;
	z.crc = 0;
	uLong c = crc32(0, (const Bytef *)&z, sizeof z);
	c = crc32(c, (const Bytef *)d + sizeof z, (uInt)(len - sizeof z));
	return (uint32_t)c == h->crc ? 0 : -1;
}

static inline size_t pick_len(uint64_t *rnd, uint64_t max_record)
{
	uint64_t x = xorshift(rnd);
	if (x % 100 < 2)
		return (size_t)(max_record - (x >> 8) % 128);
	if (x % 100 < 60)
		return sizeof(struct hdr) + (size_t)((x >> 8) % 200);
	return sizeof(struct hdr) + (size_t)((x >> 8) % 2000);
}

/* ---- producers (both scenarios) ---- */

struct pconf {
	int policy;
	uint64_t full_wait_ns;
	int first_id;
	int threads;
	int proc; /* index into sh->go */
	int role;
	uint64_t hold_at; /* victim / slow: hold the claim of this seq */
};

enum { ROLE_SURVIVOR, ROLE_RANDOM, ROLE_VICTIM, ROLE_SLOW };

static struct pconf pconfs[MAXCHILD];

struct pthread_arg {
	rf_ring *r;
	uint32_t id;
	uint64_t max_record;
	const struct pconf *pc;
};

static inline void claim_retry(rf_ring *r, uint32_t id, size_t len,
			       struct rf_ring_claim *c, uint64_t seq)
{
	for (;;) {
		int rc = rf_ring_claim(r, 1 + (int32_t)(seq % 5), len, c);
		if (rc == 0)
			return;
		if (rc != -EAGAIN)
			FAIL("producer %u: claim %zu bytes: %d %s", id, len, rc, rf_ring_errmsg());
		atomic_fetch_add(&sh->p[id].eagain, 1);
	}
}

static inline void put(struct pthread_arg *a, uint64_t seq, uint64_t *rnd)
{
	struct pstate *ps = &sh->p[a->id];
	size_t len = pick_len(rnd, a->max_record);
	struct rf_ring_claim c;
	claim_retry(a->r, a->id, len, &c, seq);
	atomic_store(&ps->in_claim, 1);
	make_record(c.data, a->id, seq, len, *rnd ^ seq);
	/* Producers that get killed at random linger inside some claims, so
	 * that kills land between claim and commit too. */
	if (a->pc->role == ROLE_RANDOM && *rnd % 8 == 0)
		sleep_ns(50000 + *rnd % 400000);
	int rc = rf_ring_commit(a->r, &c);
	if (rc)
		FAIL("producer %u: commit: %d %s", a->id, rc, rf_ring_errmsg());
	/* in_claim cleared before committed moves: a thread found dead with
	 * in_claim set and its record `committed` undelivered held a claim. */
	atomic_store(&ps->in_claim, 0);
	atomic_store(&ps->committed, seq + 1);
	if (producer_pace_ns)
		sleep_ns(producer_pace_ns);
}

static inline void *producer_thread(void *p)
{
	struct pthread_arg *a = p;
	const struct pconf *pc = a->pc;
	struct pstate *ps = &sh->p[a->id];
	uint64_t rnd = seed ^ (0x9e3779b97f4a7c15ull * (a->id + 1)) ^ (uint64_t)getpid();
	uint64_t seq = 0;
	if (pc->role == ROLE_VICTIM || pc->role == ROLE_SLOW) {
		for (; seq < pc->hold_at; seq++)
			put(a, seq, &rnd);
		/* Hold a claim across SIGSTOP: the header says "claimed", the
		 * payload is complete, the commit has not happened. */
		size_t len = pick_len(&rnd, a->max_record);
		struct rf_ring_claim c;
		claim_retry(a->r, a->id, len, &c, seq);
		make_record(c.data, a->id, seq, len, rnd);
		atomic_store(&ps->held_seq, seq);
		atomic_store(&ps->held, 1);
		raise(SIGSTOP);
		/* Only the slow producer gets here (SIGCONT). */
		int rc = rf_ring_commit(a->r, &c);
		if (rc)
			FAIL("slow producer: commit after SIGCONT: %d %s", rc, rf_ring_errmsg());
		atomic_store(&ps->committed, seq + 1);
		atomic_store(&ps->held, 0);
		for (uint64_t end = seq + 1 + 50; ++seq < end;)
			put(a, seq, &rnd);
		return NULL;
	}
	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed))
		put(a, seq++, &rnd);
	return NULL;
}

static inline void producer_process(int idx)
{
	const struct pconf *pc = &pconfs[idx];
	while (!atomic_load(&sh->go[pc->proc]))
		sleep_ns(200000);
	struct rf_ring_opts o = {.full_policy = pc->policy, .full_wait_ns = pc->full_wait_ns};
	rf_ring *r;
	int rc = rf_ring_open(&r, ring_name, &o);
	if (rc)
		FAIL("producer process %d: open: %d %s", pc->proc, rc, rf_ring_errmsg());
	tsan_ring_segment_is_shared(ring_name);
	struct rf_ring_stats st;
	rf_ring_stats(r, &st);
	uint64_t max_record = producer_len_cap && producer_len_cap < st.max_record
				      ? producer_len_cap : st.max_record;
	pthread_t th[8];
	struct pthread_arg args[8];
	for (int t = 0; t < pc->threads; t++) {
		args[t] = (struct pthread_arg){r, (uint32_t)(pc->first_id + t), max_record, pc};
		CHECK_EQ(pthread_create(&th[t], NULL, producer_thread, &args[t]), 0);
	}
	for (int t = 0; t < pc->threads; t++)
		pthread_join(th[t], NULL);
	rf_ring_close(r);
	/* exit(): under ASan, LeakSanitizer checks the producers too. */
	exit(RF_T_PASS);
}

static inline int spawn_producer(const char *what, struct pconf pc)
{
	CHECK(pc.proc < MAXCHILD);
	pconfs[pc.proc] = pc;
	return spawn(what, producer_process, pc.proc);
}

static inline void make_ring(const char *tag, size_t capacity)
{
	rf_test_ring_name(ring_name, sizeof ring_name, tag);
	rf_test_spool_dir(spool_dir, sizeof spool_dir, tag);
	rf_ring_unlink(ring_name);
	struct rf_ring_opts o = {.capacity = capacity, .flags = RF_RING_CREATE,
				 .spool_dir = spool_dir};
	rf_ring *r;
	int rc = rf_ring_open(&r, ring_name, &o);
	if (rc)
		FAIL("create %s: %d %s", ring_name, rc, rf_ring_errmsg());
	/* No handle crosses a fork: every process opens its own. */
	rf_ring_close(r);
}

static inline void drop_ring(void)
{
	rf_ring_unlink(ring_name);
	rf_test_rm_rf(spool_dir);
	ring_name[0] = spool_dir[0] = 0;
}

/* Common start of both programs: seed (RF_CRASH_SEED), the shared mapping,
 * and cleanup on exit and on SIGTERM/SIGINT/SIGHUP. */
static inline void crash_setup(void)
{
	parent_pid = getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
	seed = env_u64("RF_CRASH_SEED", rf_test_now_ns() ^ ((uint64_t)getpid() << 32));
	if (!seed)
		seed = 1;
	printf("seed %" PRIu64 " (RF_CRASH_SEED)\n", seed);
	sh = rf_test_shared(sizeof *sh);
	rf_test_cleanup_on_exit(cleanup, on_signal);
}

#endif
