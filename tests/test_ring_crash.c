/*
 * test_ring_crash - crash safety of the ring: producers and the consumer die
 * (SIGKILL) at random points, including between rf_ring_claim and
 * rf_ring_commit.
 *
 * Scenario A - producers killed (the parent is the consumer, WAIT policy):
 *   random  3 processes x 2 threads are SIGKILLed at random times while 3
 *           "survivor" processes x 2 threads keep writing.  Afterwards the
 *           consumer must pass every record that existed at the kills, each
 *           killed thread's records must be exactly its committed ones (only
 *           the one in flight may be missing), and `abandoned` must cover at
 *           least the threads that died holding a claim.
 *   victim  4 single-thread processes each claim a record, fill it and
 *           raise(SIGSTOP) while holding the claim.  Once the consumer has
 *           been stuck on that claim for a while (and has NOT abandoned it:
 *           the claimant is alive), the parent SIGKILLs the victim.  The dead
 *           claim must become padding within 1 s (the spec's bound; the stall
 *           check runs every 20 ms): measured as kill -> `abandoned` + 1 and
 *           kill -> first record delivered behind the dead claim.
 *   slow    one process holds a claim SIGSTOPped for 1.5 s: it must not be
 *           abandoned; after SIGCONT it commits and the record is delivered.
 *   Survivors' records must all arrive intact and in order.
 *
 * Scenario B - consumer killed (SPILL policy, so spill markers are in play):
 *   a consumer child appends (pos, sub, producer, seq) of every delivered
 *   record to its own output file with write(), and is SIGKILLed at random
 *   moments several times while 3 x 2 producer threads write.  Each new
 *   consumer must get the consumer lock at once (flock dies with the holder),
 *   reads the last entry of the previous output, calls rf_ring_resume() past
 *   it when it was a ring record, and skips re-delivered records with
 *   (pos, sub) <= that entry until it has caught up.  At the end the output
 *   files together must hold every committed record exactly once, in order
 *   per producer.
 *
 * RF_CRASH_SCALE (default 1) multiplies the number of consumer kills (16,
 * 10 under sanitizers); RF_CRASH_SEED fixes the seed; RF_CRASH_ONLY=a or =b
 * runs one scenario.  Ring, spool and output directory names carry the pid.
 *
 * The 1 s bound is a wall-clock assertion: on a machine so overloaded that
 * this process gets no CPU for a second it fails without a ring bug.
 */
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

/* Scenario A producers: ids are per thread. */
#define SURV_PROCS 3
#define RAND_PROCS 3
#define A_THREADS 2
#define VICTIMS 4
#define SURV_FIRST 0
#define RAND_FIRST (SURV_PROCS * A_THREADS)
#define VICTIM_FIRST (RAND_FIRST + RAND_PROCS * A_THREADS)
#define SLOW_ID (VICTIM_FIRST + VICTIMS)
#define A_NPROD (SLOW_ID + 1)
#define A_NPROC (SURV_PROCS + RAND_PROCS + VICTIMS + 1)

/* Scenario B */
#define B_PROCS 3
#define B_THREADS 2
#define B_NPROD (B_PROCS * B_THREADS)
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
};

/* One output entry per delivered record (scenario B). */
struct outrec {
	uint64_t pos;
	uint32_t sub;
	uint32_t flags;
	uint32_t producer;
	uint32_t len;
	uint64_t seq;
};
_Static_assert(sizeof(struct outrec) == 32, "outrec");

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


/* ---- small helpers ---- */


static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t ms(uint64_t ns)
{
	return ns / 1000000ull;
}

static uint64_t align8(uint64_t v)
{
	return (v + 7) & ~(uint64_t)7;
}

/* ---- cleanup: no leftover processes, segments, directories ---- */

static void kill_all_children(void)
{
	for (int i = 0; i < nkids; i++)
		if (kids[i].pid > 0 && !kids[i].exited) {
			kill(kids[i].pid, SIGKILL);
			waitpid(kids[i].pid, NULL, 0);
			kids[i].exited = true;
		}
}

static void cleanup(void)
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
static void on_signal(int sig)
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

static int spawn(const char *what, void (*fn)(int arg), int arg)
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
static void reap(void)
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

static void kill_child(int i)
{
	kids[i].kill_expected = true;
	CHECK_EQ(kill(kids[i].pid, SIGKILL), 0);
}

static void wait_child_blocking(int i)
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

static void make_record(uint8_t *d, uint32_t producer, uint64_t seq, size_t len, uint64_t x)
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
static int check_record(const void *d, uint32_t len, struct hdr *h)
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

static size_t pick_len(uint64_t *rnd, uint64_t max_record)
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

static void claim_retry(rf_ring *r, uint32_t id, size_t len, struct rf_ring_claim *c,
			uint64_t seq)
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

static void put(struct pthread_arg *a, uint64_t seq, uint64_t *rnd)
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
}

static void *producer_thread(void *p)
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

static void producer_process(int idx)
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
	pthread_t th[8];
	struct pthread_arg args[8];
	for (int t = 0; t < pc->threads; t++) {
		args[t] = (struct pthread_arg){r, (uint32_t)(pc->first_id + t), st.max_record, pc};
		CHECK_EQ(pthread_create(&th[t], NULL, producer_thread, &args[t]), 0);
	}
	for (int t = 0; t < pc->threads; t++)
		pthread_join(th[t], NULL);
	rf_ring_close(r);
	/* exit(): under ASan, LeakSanitizer checks the producers too. */
	exit(RF_T_PASS);
}

static int spawn_producer(const char *what, struct pconf pc)
{
	CHECK(pc.proc < MAXCHILD);
	pconfs[pc.proc] = pc;
	return spawn(what, producer_process, pc.proc);
}

static void make_ring(const char *tag, size_t capacity)
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

static void drop_ring(void)
{
	rf_ring_unlink(ring_name);
	rf_test_rm_rf(spool_dir);
	ring_name[0] = spool_dir[0] = 0;
}

/* ================= scenario A: producers killed ================= */

struct va {
	uint64_t next[MAXPROD];
	uint64_t total;
	uint64_t last_pos;
	uint64_t last_delivery_ns;
};

static int on_rec_a(const struct rf_ring_rec *rec, void *arg)
{
	struct va *v = arg;
	struct hdr h;
	if (rec->flags & RF_REC_SPILLED)
		FAIL("spilled record under the WAIT policy (pos %" PRIu64 ")", rec->pos);
	if (rec->pos < v->last_pos)
		FAIL("position went backwards: %" PRIu64 " after %" PRIu64, rec->pos, v->last_pos);
	v->last_pos = rec->pos;
	if (check_record(rec->data, rec->len, &h) || h.producer >= A_NPROD)
		FAIL("corrupt record at pos %" PRIu64 " (len %u, type %d)", rec->pos, rec->len,
		     rec->type);
	if (rec->type != 1 + (int32_t)(h.seq % 5))
		FAIL("producer %u seq %" PRIu64 ": type %d", h.producer, h.seq, rec->type);
	if (h.seq != v->next[h.producer])
		FAIL("producer %u: seq %" PRIu64 " delivered, expected %" PRIu64 " (%s)",
		     h.producer, h.seq, v->next[h.producer],
		     h.seq < v->next[h.producer] ? "duplicate/reordered" : "lost records");
	v->next[h.producer]++;
	v->total++;
	v->last_delivery_ns = rf_test_now_ns();
	return 0;
}

static int pump(rf_ring *r, struct va *v, uint64_t wait_ns)
{
	int n = rf_ring_consume(r, on_rec_a, v, 256);
	if (n < 0)
		FAIL("consume: %d %s", n, rf_ring_errmsg());
	if (n == 0)
		rf_ring_wait(r, wait_ns);
	reap();
	return n;
}

static uint64_t abandoned(rf_ring *r)
{
	struct rf_ring_stats st;
	rf_ring_stats(r, &st);
	return st.abandoned;
}

static void wait_stopped_holding(rf_ring *r, struct va *v, int k, uint32_t id, uint64_t limit_ns)
{
	uint64_t t0 = rf_test_now_ns();
	while (!(kids[k].stopped && atomic_load(&sh->p[id].held))) {
		pump(r, v, 1000000);
		if (kids[k].exited)
			FAIL("%s exited before holding its claim", kids[k].what);
		if (rf_test_now_ns() - t0 > limit_ns)
			FAIL("%s did not reach its held claim in %" PRIu64 " ms", kids[k].what,
			     ms(limit_ns));
	}
}

static void scenario_a(void)
{
	uint64_t rnd = seed ^ 0xa11ce;
	const uint64_t big_wait = 10ull * 1000000000ull; /* full_wait_ns: retry -EAGAIN */
	make_ring("crash-a", 128u << 10);
	memset(sh, 0, sizeof *sh);
	for (int i = 0; i < MAXPROD; i++)
		atomic_store(&sh->p[i].held_seq, NONE);

	int proc = 0;
	int surv[SURV_PROCS], rnd_k[RAND_PROCS], vic[VICTIMS], slow;
	for (int i = 0; i < SURV_PROCS; i++)
		surv[i] = spawn_producer("survivor producer",
					 (struct pconf){RF_RING_FULL_WAIT, big_wait,
							SURV_FIRST + i * A_THREADS, A_THREADS,
							proc++, ROLE_SURVIVOR, 0});
	for (int i = 0; i < RAND_PROCS; i++)
		rnd_k[i] = spawn_producer("randomly killed producer",
					  (struct pconf){RF_RING_FULL_WAIT, big_wait,
							 RAND_FIRST + i * A_THREADS, A_THREADS,
							 proc++, ROLE_RANDOM, 0});
	for (int i = 0; i < VICTIMS; i++)
		vic[i] = spawn_producer("victim producer",
					(struct pconf){RF_RING_FULL_WAIT, big_wait, VICTIM_FIRST + i,
						       1, proc++, ROLE_VICTIM,
						       20 + xorshift(&rnd) % 500});
	slow = spawn_producer("slow producer",
			      (struct pconf){RF_RING_FULL_WAIT, big_wait, SLOW_ID, 1, proc++,
					     ROLE_SLOW, 20 + xorshift(&rnd) % 500});

	struct rf_ring_opts o = {.flags = RF_RING_CONSUMER, .spool_dir = spool_dir};
	rf_ring *r;
	int rc = rf_ring_open(&r, ring_name, &o);
	if (rc)
		FAIL("consumer open: %d %s", rc, rf_ring_errmsg());
	struct va *v = calloc(1, sizeof *v);
	CHECK(v);
	struct rf_ring_stats st;

	/* --- random kills while survivors write --- */
	uint64_t t0 = rf_test_now_ns();
	for (int i = 0; i < SURV_PROCS + RAND_PROCS; i++)
		atomic_store(&sh->go[i], 1);
	uint64_t kill_at[RAND_PROCS];
	for (int i = 0; i < RAND_PROCS; i++)
		kill_at[i] = t0 + (50 + xorshift(&rnd) % 700) * 1000000ull;
	int killed = 0, died_holding = 0;
	bool was_killed[RAND_PROCS] = {false};
	uint64_t in_claim_at_kill[RAND_PROCS * A_THREADS];
	uint64_t committed_at_kill[RAND_PROCS * A_THREADS];
	while (killed < RAND_PROCS) {
		pump(r, v, 1000000);
		uint64_t now = rf_test_now_ns();
		for (int i = 0; i < RAND_PROCS; i++)
			if (!was_killed[i] && now >= kill_at[i]) {
				kill_child(rnd_k[i]);
				wait_child_blocking(rnd_k[i]);
				/* Dead now: its shared state is final. */
				for (int t = 0; t < A_THREADS; t++) {
					int id = RAND_FIRST + i * A_THREADS + t;
					in_claim_at_kill[i * A_THREADS + t] =
						(uint64_t)atomic_load(&sh->p[id].in_claim);
					committed_at_kill[i * A_THREADS + t] =
						atomic_load(&sh->p[id].committed);
				}
				was_killed[i] = true;
				killed++;
			}
	}
	/* Everything claimed before the kills must get through: dead claims
	 * become padding. */
	rf_ring_stats(r, &st);
	uint64_t tail_at_kills = st.tail, tk = rf_test_now_ns();
	do {
		pump(r, v, 1000000);
		rf_ring_stats(r, &st);
		if (rf_test_now_ns() - tk > 5000000000ull)
			FAIL("consumer stuck at %" PRIu64 " after random kills (tail then %" PRIu64
			     ", abandoned %" PRIu64 ")", st.head, tail_at_kills, st.abandoned);
	} while (st.head < tail_at_kills);
	uint64_t pass_ms = ms(rf_test_now_ns() - tk);
	uint64_t aband_random = st.abandoned;
	for (int i = 0; i < RAND_PROCS * A_THREADS; i++) {
		int id = RAND_FIRST + i;
		uint64_t c = committed_at_kill[i];
		/* Only the record in flight may be missing (or delivered without
		 * the counter having caught up). */
		if (v->next[id] != c && v->next[id] != c + 1)
			FAIL("killed producer %d: %" PRIu64 " delivered, %" PRIu64 " committed", id,
			     v->next[id], c);
		if (in_claim_at_kill[i] && v->next[id] == c)
			died_holding++;
	}
	if (aband_random < (uint64_t)died_holding ||
	    aband_random > 2ull * RAND_PROCS * A_THREADS)
		FAIL("abandoned = %" PRIu64 " after killing %d threads, %d of them holding a claim",
		     aband_random, RAND_PROCS * A_THREADS, died_holding);
	printf("crash A random: %d producer processes (%d threads) SIGKILLed at random, %d held an "
	       "uncommitted claim; abandoned %" PRIu64 "; consumer passed the kill point after %"
	       PRIu64 " ms; %" PRIu64 " records so far\n",
	       RAND_PROCS, RAND_PROCS * A_THREADS, died_holding, aband_random, pass_ms, v->total);

	/* --- victims: SIGKILLed while holding a claim --- */
	uint64_t worst_aband = 0, worst_first = 0, sum_aband = 0;
	for (int i = 0; i < VICTIMS; i++) {
		int k = vic[i];
		uint32_t id = VICTIM_FIRST + (uint32_t)i;
		atomic_store(&sh->go[pconfs[SURV_PROCS + RAND_PROCS + i].proc], 1);
		wait_stopped_holding(r, v, k, id, 20000000000ull);
		uint64_t held = atomic_load(&sh->p[id].held_seq);
		CHECK_EQ(held, atomic_load(&sh->p[id].committed));
		/* The consumer works up to the held claim and stalls there:
		 * survivors keep committing behind it. */
		uint64_t a0 = abandoned(r), ts = rf_test_now_ns(), stalled_for = 200000000ull;
		for (;;) {
			pump(r, v, 1000000);
			uint64_t now = rf_test_now_ns();
			if (now - v->last_delivery_ns >= stalled_for && now - ts >= stalled_for)
				break;
			if (now - ts > 20000000000ull)
				FAIL("victim %d: consumer never stalled on the held claim", i);
		}
		rf_ring_stats(r, &st);
		CHECK(st.tail > st.head);
		/* Alive (stopped) claimant: never abandoned. */
		CHECK_EQ(st.abandoned, a0);
		CHECK_EQ(v->next[id], held);
		uint64_t total0 = v->total;

		/* Even victims are reaped by the pump loop as soon as they die
		 * (/proc entry gone), odd ones stay zombies during the round. */
		kids[k].keep_zombie = i % 2 == 1;
		uint64_t tkill = rf_test_now_ns();
		kill_child(k);
		uint64_t t_aband = 0, t_first = 0;
		while (!t_aband || !t_first) {
			pump(r, v, 1000000);
			uint64_t now = rf_test_now_ns();
			if (!t_aband && abandoned(r) > a0)
				t_aband = now - tkill;
			if (!t_first && v->total > total0)
				t_first = v->last_delivery_ns - tkill;
			if (now - tkill > 5000000000ull) {
				rf_ring_stats(r, &st);
				FAIL("victim %d: dead claim not recovered %" PRIu64 " ms after SIGKILL "
				     "(abandoned %" PRIu64 " -> %" PRIu64 ", head %" PRIu64 " tail %"
				     PRIu64 ", %" PRIu64 " records delivered since)", i,
				     ms(now - tkill), a0, st.abandoned, st.head, st.tail,
				     v->total - total0);
			}
		}
		kids[k].keep_zombie = false;
		wait_child_blocking(k);
		CHECK_EQ(abandoned(r), a0 + 1); /* exactly this dead claim */
		if (t_aband >= 1000000000ull || t_first >= 1000000000ull)
			FAIL("victim %d: dead claim recovered after %" PRIu64 " ms (abandoned) / %"
			     PRIu64 " ms (next record); the bound is 1000 ms", i, ms(t_aband),
			     ms(t_first));
		worst_aband = t_aband > worst_aband ? t_aband : worst_aband;
		worst_first = t_first > worst_first ? t_first : worst_first;
		sum_aband += t_aband;
		printf("crash A victim %d: held seq %" PRIu64 ", SIGKILLed (%s) -> padding after %.1f ms, "
		       "next record after %.1f ms\n", i, held, i % 2 == 0 ? "reaped" : "zombie",
		       (double)t_aband / 1e6, (double)t_first / 1e6);
	}

	/* --- slow: SIGSTOPped 1.5 s while holding a claim, then SIGCONT --- */
	{
		uint32_t id = SLOW_ID;
		atomic_store(&sh->go[pconfs[SURV_PROCS + RAND_PROCS + VICTIMS].proc], 1);
		wait_stopped_holding(r, v, slow, id, 20000000000ull);
		uint64_t held = atomic_load(&sh->p[id].held_seq);
		uint64_t a0 = abandoned(r), tstop = rf_test_now_ns();
		while (rf_test_now_ns() - tstop < 1500000000ull) {
			pump(r, v, 1000000);
			if (abandoned(r) != a0)
				FAIL("slow (stopped, alive) producer's claim was abandoned after %" PRIu64
				     " ms", ms(rf_test_now_ns() - tstop));
			CHECK_EQ(v->next[id], held);
		}
		uint64_t stall_ms = ms(rf_test_now_ns() - v->last_delivery_ns);
		uint64_t tcont = rf_test_now_ns();
		CHECK_EQ(kill(kids[slow].pid, SIGCONT), 0);
		while (v->next[id] <= held) {
			pump(r, v, 1000000);
			if (rf_test_now_ns() - tcont > 10000000000ull)
				FAIL("slow producer's record not delivered after SIGCONT");
		}
		uint64_t lat = rf_test_now_ns() - tcont;
		CHECK_EQ(abandoned(r), a0);
		printf("crash A slow: claim held 1.5 s under SIGSTOP (consumer stalled %" PRIu64
		       " ms on it), not abandoned; delivered %.1f ms after SIGCONT\n", stall_ms,
		       (double)lat / 1e6);
	}

	/* --- stop survivors, drain, verify --- */
	atomic_store(&sh->stop, 1);
	uint64_t td = rf_test_now_ns();
	for (;;) {
		pump(r, v, 1000000);
		bool all = true;
		for (int i = 0; i < nkids; i++)
			all &= kids[i].exited;
		if (all) {
			bool done = true;
			for (int id = 0; id < A_NPROD; id++) {
				uint64_t c = atomic_load(&sh->p[id].committed);
				if (id >= RAND_FIRST && id < VICTIM_FIRST)
					continue;
				done &= v->next[id] == c;
			}
			rf_ring_stats(r, &st);
			if (done && st.head == st.tail)
				break;
		}
		if (rf_test_now_ns() - td > 30000000000ull) {
			for (int id = 0; id < A_NPROD; id++)
				fprintf(stderr, "  producer %2d: committed %" PRIu64 ", delivered %" PRIu64
					"\n", id, atomic_load(&sh->p[id].committed), v->next[id]);
			FAIL("scenario A: records missing after the producers stopped");
		}
	}
	for (int id = 0; id < A_NPROD; id++) {
		uint64_t c = atomic_load(&sh->p[id].committed);
		if (id >= RAND_FIRST && id < VICTIM_FIRST)
			continue; /* checked at their kill */
		CHECK_EQ(v->next[id], c);
	}
	for (int i = 0; i < SURV_PROCS; i++)
		CHECK(WIFEXITED(kids[surv[i]].status) && WEXITSTATUS(kids[surv[i]].status) == 0);
	CHECK(WIFEXITED(kids[slow].status) && WEXITSTATUS(kids[slow].status) == 0);
	rf_ring_stats(r, &st);
	CHECK_EQ(st.head, st.tail);
	CHECK_EQ(st.abandoned, aband_random + VICTIMS);
	CHECK_EQ(st.dropped + st.spilled + st.spill_failed + st.spill_corrupt, 0);
	uint64_t surv_total = 0;
	for (int id = SURV_FIRST; id < RAND_FIRST; id++)
		surv_total += v->next[id];
	printf("crash A: %" PRIu64 " records delivered intact and in order (%" PRIu64
	       " from survivors); abandoned %" PRIu64 "; dead-claim recovery worst %.1f ms "
	       "(mean %.1f ms), next record worst %.1f ms; wrapped %" PRIu64 "x\n",
	       v->total, surv_total, st.abandoned, (double)worst_aband / 1e6,
	       (double)sum_aband / VICTIMS / 1e6, (double)worst_first / 1e6,
	       st.head / st.capacity);
	free(v);
	rf_ring_close(r);
	nkids = 0;
	drop_ring();
}

/* ================= scenario B: consumer killed ================= */

struct cons_ctx {
	int inc;
	int fd;
	bool have_last, caught_up;
	struct outrec last;
	uint64_t delivered, dups, spilled;
};

static int out_path(char *buf, size_t len, int inc)
{
	return snprintf(buf, len, "%s/out.%03d", out_dir, inc);
}

/* Full entries of one output file (a torn last entry is ignored). */
static struct outrec *read_out(int inc, size_t *n)
{
	char p[256];
	out_path(p, sizeof p, inc);
	*n = 0;
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return NULL;
	struct stat stt;
	CHECK(fstat(fd, &stt) == 0);
	size_t cnt = (size_t)stt.st_size / sizeof(struct outrec);
	struct outrec *a = malloc(cnt ? cnt * sizeof *a : 1);
	CHECK(a);
	size_t want = cnt * sizeof *a, got = 0;
	while (got < want) {
		ssize_t k = read(fd, (char *)a + got, want - got);
		CHECK(k > 0);
		got += (size_t)k;
	}
	close(fd);
	*n = cnt;
	return a;
}

static bool after_last(const struct cons_ctx *c, const struct rf_ring_rec *rec)
{
	return rec->pos > c->last.pos || (rec->pos == c->last.pos && rec->sub > c->last.sub);
}

static int on_rec_b(const struct rf_ring_rec *rec, void *arg)
{
	struct cons_ctx *c = arg;
	struct hdr h;
	if (check_record(rec->data, rec->len, &h) || h.producer >= B_NPROD) {
		fprintf(stderr, "consumer %d: corrupt record at pos %" PRIu64 " sub %u flags %#x "
			"len %u\n", c->inc, rec->pos, rec->sub, rec->flags, rec->len);
		_exit(3);
	}
	/* After a restart, records up to the last one written by the previous
	 * consumer come again: skip them until we are past it.  (Only until
	 * then: the position of a record delivered from an orphaned spill file
	 * is the head at the time, which a later ring record can share.) */
	if (c->have_last && !c->caught_up) {
		if (!after_last(c, rec)) {
			c->dups++;
			atomic_store_explicit(&sh->dups[c->inc], c->dups, memory_order_relaxed);
			return 0;
		}
		c->caught_up = true;
	}
	struct outrec o = {rec->pos, rec->sub, rec->flags, h.producer, rec->len, h.seq};
	if (write(c->fd, &o, sizeof o) != (ssize_t)sizeof o) {
		fprintf(stderr, "consumer %d: write: %s\n", c->inc, strerror(errno));
		_exit(4);
	}
	c->delivered++;
	if (rec->flags & RF_REC_SPILLED)
		c->spilled++;
	atomic_store_explicit(&sh->delivered[c->inc], c->delivered, memory_order_relaxed);
	atomic_store_explicit(&sh->spilled[c->inc], c->spilled, memory_order_relaxed);
	return 0;
}

static void consumer_process(int inc)
{
	struct cons_ctx c = {.inc = inc};
	/* The last entry written by an earlier incarnation. */
	for (int i = inc - 1; i >= 0 && !c.have_last; i--) {
		size_t n;
		struct outrec *a = read_out(i, &n);
		if (n) {
			c.last = a[n - 1];
			c.have_last = true;
		}
		free(a);
	}
	char p[256];
	out_path(p, sizeof p, inc);
	c.fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (c.fd < 0)
		_exit(5);
	atomic_store(&sh->started[inc], 1);

	/* The previous consumer's flock went with it: attach at once. */
	struct rf_ring_opts o = {.flags = RF_RING_CONSUMER, .spool_dir = spool_dir};
	rf_ring *r = NULL;
	uint64_t t0 = rf_test_now_ns();
	uint32_t tries = 0;
	int rc;
	do {
		tries++;
		rc = rf_ring_open(&r, ring_name, &o);
		if (rc == -EBUSY)
			sleep_ns(1000000);
	} while (rc == -EBUSY && rf_test_now_ns() - t0 < 2000000000ull);
	atomic_store(&sh->open_ns[inc], rf_test_now_ns() - t0);
	atomic_store(&sh->open_tries[inc], tries);
	if (rc) {
		fprintf(stderr, "consumer %d: open as consumer: %d %s (after %u tries)\n", inc, rc,
			rf_ring_errmsg(), tries);
		_exit(6);
	}
	if (c.have_last && !(c.last.flags & RF_REC_SPILLED)) {
		/* A ring record: everything up to its end was processed. */
		struct rf_ring_stats st;
		rf_ring_stats(r, &st);
		uint64_t target = c.last.pos + align8(RF_RING_HDR_BYTES + c.last.len);
		rc = rf_ring_resume(r, target);
		if (rc) {
			fprintf(stderr, "consumer %d: rf_ring_resume(%" PRIu64 ") with head %" PRIu64
				" tail %" PRIu64 ": %d %s\n", inc, target, st.head, st.tail, rc,
				rf_ring_errmsg());
			_exit(7);
		}
		atomic_store(&sh->resumed[inc], target > st.head ? 1 : 2);
	}
	uint64_t rnd = seed ^ (uint64_t)inc;
	uint64_t idle_since = 0;
	for (;;) {
		int n = rf_ring_consume(r, on_rec_b, &c, 1 + (unsigned)(xorshift(&rnd) % 300));
		if (n < 0) {
			fprintf(stderr, "consumer %d: consume: %d %s\n", inc, n, rf_ring_errmsg());
			_exit(8);
		}
		if (n > 0) {
			idle_since = 0;
			continue;
		}
		rf_ring_wait(r, 10000000);
		if (atomic_load(&sh->producers_done)) {
			struct rf_ring_stats st;
			rf_ring_stats(r, &st);
			uint64_t now = rf_test_now_ns();
			if (st.head != st.tail)
				idle_since = 0;
			else if (!idle_since)
				idle_since = now;
			else if (now - idle_since > 500000000ull) /* orphan scans: 100 ms */
				break;
		}
	}
	rf_ring_close(r);
	close(c.fd);
	exit(RF_T_PASS);
}

static void scenario_b(void)
{
	uint64_t rnd = seed ^ 0xb0b;
	const uint64_t scale = env_u64("RF_CRASH_SCALE", 1);
	int kills = (int)((RF_SANITIZED ? 10 : 16) * scale);
	if (kills > MAX_INCARNATIONS - 1)
		kills = MAX_INCARNATIONS - 1;
	make_ring("crash-b", 128u << 10);
	snprintf(out_dir, sizeof out_dir, "/tmp/rf-test-crashout-%d", (int)getpid());
	rf_test_rm_rf(out_dir);
	CHECK(mkdir(out_dir, 0700) == 0);
	memset(sh, 0, sizeof *sh);
	nkids = 0;

	int prod[B_PROCS];
	for (int i = 0; i < B_PROCS; i++) {
		prod[i] = spawn_producer("producer (B)",
					 (struct pconf){RF_RING_FULL_SPILL, 1000000, i * B_THREADS,
							B_THREADS, i, ROLE_SURVIVOR, 0});
		atomic_store(&sh->go[i], 1);
	}
	uint64_t t0 = rf_test_now_ns();
	int cons[MAX_INCARNATIONS];
	uint64_t kill_delay_sum = 0;
	for (int inc = 0; inc < kills; inc++) {
		cons[inc] = spawn("consumer (B)", consumer_process, inc);
		/* Random moment: sometimes right at start-up (open / resume),
		 * mostly in the middle of draining. */
		uint64_t x = xorshift(&rnd);
		uint64_t delay = x % 8 == 0 ? (x >> 8) % 5000000ull
					    : 20000000ull + (x >> 8) % 250000000ull;
		kill_delay_sum += delay;
		uint64_t ts = rf_test_now_ns();
		while (rf_test_now_ns() - ts < delay) {
			sleep_ns(1000000);
			reap();
		}
		kill_child(cons[inc]);
		wait_child_blocking(cons[inc]);
	}
	int final_inc = kills;
	cons[final_inc] = spawn("final consumer (B)", consumer_process, final_inc);
	sleep_ns(300000000ull);
	atomic_store(&sh->stop, 1);
	for (int i = 0; i < B_PROCS; i++)
		wait_child_blocking(prod[i]);
	uint64_t t_stop = rf_test_now_ns();
	atomic_store(&sh->producers_done, 1);
	/* The final consumer exits once the ring is drained. */
	for (;;) {
		reap();
		if (kids[cons[final_inc]].exited)
			break;
		if (rf_test_now_ns() - t_stop > 60000000000ull)
			FAIL("final consumer did not finish draining within 60 s");
		sleep_ns(5000000);
	}
	if (!WIFEXITED(kids[cons[final_inc]].status) || WEXITSTATUS(kids[cons[final_inc]].status))
		FAIL("final consumer failed: status %#x", kids[cons[final_inc]].status);

	/* Union of the output files: every committed record exactly once, in
	 * order per producer. */
	uint64_t next[B_NPROD] = {0}, total = 0, spilled = 0, dups = 0, max_open_ns = 0;
	uint32_t max_tries = 0;
	int resumed = 0;
	for (int inc = 0; inc <= final_inc; inc++) {
		size_t n;
		struct outrec *a = read_out(inc, &n);
		for (size_t j = 0; j < n; j++) {
			const struct outrec *e = &a[j];
			if (e->producer >= B_NPROD)
				FAIL("output %d entry %zu: producer %u", inc, j, e->producer);
			if (e->seq != next[e->producer])
				FAIL("output %d entry %zu (pos %" PRIu64 " sub %u flags %#x): producer %u "
				     "seq %" PRIu64 ", expected %" PRIu64 " (%s)", inc, j, e->pos, e->sub,
				     e->flags, e->producer, e->seq, next[e->producer],
				     e->seq < next[e->producer] ? "duplicate" : "lost");
			next[e->producer]++;
			total++;
			spilled += (e->flags & RF_REC_SPILLED) != 0;
		}
		free(a);
		dups += atomic_load(&sh->dups[inc]);
		if (atomic_load(&sh->started[inc])) {
			uint64_t on = atomic_load(&sh->open_ns[inc]);
			uint32_t tr = atomic_load(&sh->open_tries[inc]);
			max_open_ns = on > max_open_ns ? on : max_open_ns;
			max_tries = tr > max_tries ? tr : max_tries;
		}
		resumed += atomic_load(&sh->resumed[inc]) == 1;
	}
	for (int p = 0; p < B_NPROD; p++)
		if (next[p] != atomic_load(&sh->p[p].committed))
			FAIL("producer %d: %" PRIu64 " records in the outputs, %" PRIu64 " committed", p,
			     next[p], atomic_load(&sh->p[p].committed));
	/* A restart must attach at once: the dead consumer's flock is gone. */
	if (max_open_ns > 500000000ull)
		FAIL("a restarted consumer needed %" PRIu64 " ms (%u tries) to attach", ms(max_open_ns),
		     max_tries);

	rf_ring *r;
	struct rf_ring_opts o = {.spool_dir = spool_dir};
	CHECK_EQ(rf_ring_open(&r, ring_name, &o), 0);
	struct rf_ring_stats st;
	rf_ring_stats(r, &st);
	rf_ring_close(r);
	CHECK_EQ(st.head, st.tail);
	CHECK_EQ(st.abandoned, 0); /* no producer died */
	CHECK_EQ(st.dropped + st.spill_failed + st.spill_corrupt, 0);
	printf("crash B: consumer SIGKILLed %d times (mean %.0f ms apart) + final consumer: %" PRIu64
	       " records from %d producers exactly once and in order (%" PRIu64 " via spill files, "
	       "%" PRIu64 " spilled in all); %" PRIu64 " re-deliveries skipped, %d restarts resumed "
	       "by rf_ring_resume; restart attach worst %.2f ms (%u tries); %.1f s\n",
	       kills, (double)kill_delay_sum / kills / 1e6, total, B_NPROD, spilled, st.spilled,
	       dups, resumed, (double)max_open_ns / 1e6, max_tries,
	       (double)(rf_test_now_ns() - t0) / 1e9);
	nkids = 0;
	drop_ring();
	rf_test_rm_rf(out_dir);
	out_dir[0] = 0;
}

int main(void)
{
	parent_pid = getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
	seed = env_u64("RF_CRASH_SEED", rf_test_now_ns() ^ ((uint64_t)getpid() << 32));
	if (!seed)
		seed = 1;
	printf("seed %" PRIu64 " (RF_CRASH_SEED)\n", seed);
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED);
	atexit(cleanup);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN); /* a closed stdout must not skip the cleanup */
	const char *only = getenv("RF_CRASH_ONLY"); /* "a" or "b": one scenario */
	if (!only || !*only || strchr(only, 'a'))
		scenario_a();
	if (!only || !*only || strchr(only, 'b'))
		scenario_b();
	return RF_T_PASS;
}
