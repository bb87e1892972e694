/*
 * test_ring_stress - multi-process stress of the ring.
 *
 * PROCS producer processes (fork; each opens its own handle after the fork)
 * x THREADS threads write records of random sizes (0 .. a few KiB, sometimes
 * within 256 bytes of RF_RING_MAX_RECORD) and random types into a small ring
 * (64 / 128 KiB) that wraps thousands of times.  The parent is the single
 * consumer.  Two phases, each on a fresh ring:
 *
 *   wait   RF_RING_FULL_WAIT with a long full_wait_ns; -EAGAIN is retried.
 *   spill  the default SPILL policy with a private spool directory; the
 *          consumer pauses now and then so the ring fills and producers spill
 *          (files + SPILL_MARK records), then switch back to the ring.
 *
 * Every regular record (>= 32 bytes) carries {magic, producer id, sequence,
 * length, type, tiny count, crc32 of the payload}.  Records shorter than the
 * header ("tiny", 0..31 bytes, type 1000 + producer) carry a pattern derived
 * from the producer and its tiny count; the next regular record says how many
 * tiny ones preceded it, so their order and count are checked too.  Some
 * claims are aborted (payload marked ABORTED): those must never arrive.
 *
 * The consumer checks, per producer, sequence == previous + 1 (no loss, no
 * duplicate, in order - spilled records included), the crc, the header
 * fields against the ring record, that positions never go backwards, and at
 * the end the totals and rf_ring_stats: tail == head, abandoned == dropped ==
 * spill_failed == spill_corrupt == 0, spill_ingested == spilled, and an empty
 * spool directory.
 *
 * Scale: RF_STRESS_RECORDS = regular records per producer thread (default
 * 60000 release, 25000 under sanitizers); RF_STRESS_SEED fixes the seed;
 * producer children exit() normally, so LeakSanitizer checks them as well.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <zlib.h>

#include "rf_ring.h"
#include "rf_test.h"
#include "rf_test_mp.h"


#define PROCS 4
#define THREADS 4
#define NPROD (PROCS * THREADS)
#define TINY_TYPE 1000 /* tiny records: type TINY_TYPE + producer */
#define MAGIC 0x54535452u       /* "RTST" */
#define MAGIC_ABORTED 0xdeadab07u

struct hdr {
	uint32_t magic;
	uint32_t producer;
	uint64_t seq;
	uint32_t len;
	int32_t type;
	uint32_t tiny; /* tiny records this producer wrote before this one */
	uint32_t crc;  /* crc32 of the whole payload with this field 0 */
};
_Static_assert(sizeof(struct hdr) == 32, "header");

/* Shared (MAP_SHARED, created before fork) between producers and parent. */
struct shared {
	_Atomic uint64_t committed[NPROD]; /* regular records committed */
	_Atomic uint64_t tiny[NPROD];
	_Atomic uint64_t aborted[NPROD];
	_Atomic uint64_t eagain[NPROD];
	_Atomic uint64_t claims_spilled_aborted;
};

struct phase {
	const char *tag;
	int policy;
	uint64_t full_wait_ns;
	size_t capacity;
	unsigned pause_every; /* consumer pauses after ~this many records (0: never) */
	unsigned pause_ms;    /* for up to this long, so that the ring fills */
	char name[64];
	char spool[128];
};

static pid_t parent_pid;
static pid_t children[PROCS];
static struct phase *cur_phase;
static struct shared *sh;
static uint64_t records_per_thread;
static uint64_t base_seed;

/* ---- cleanup: never leave processes, segments or spool dirs behind ---- */

static void kill_children(void)
{
	for (int i = 0; i < PROCS; i++)
		if (children[i] > 0) {
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
}

static void cleanup(void)
{
	if (getpid() != parent_pid)
		return;
	kill_children();
	if (cur_phase) {
		rf_ring_unlink(cur_phase->name);
		rf_test_rm_rf(cur_phase->spool);
	}
}

/* Killed by a timeout (run.sh sends SIGTERM) or ^C: still leave no
 * processes or segments behind (spool directories are left: removing them
 * is not async-signal-safe). */
static void on_signal(int sig)
{
	if (getpid() == parent_pid) {
		for (int i = 0; i < PROCS; i++)
			if (children[i] > 0)
				kill(children[i], SIGKILL);
		if (cur_phase)
			shm_unlink(cur_phase->name);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}



/* ---- producers ---- */

struct prod_arg {
	rf_ring *r;
	uint32_t id;
	uint64_t max_record;
};

static void fill(uint8_t *d, size_t from, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;
	size_t i = from;
	for (; i + 8 <= len; i += 8) {
		uint64_t w = xorshift(&x);
		memcpy(d + i, &w, 8);
	}
	for (; i < len; i++)
		d[i] = (uint8_t)xorshift(&x);
}

static uint8_t tiny_byte(uint32_t producer, uint64_t n, size_t i)
{
	return (uint8_t)(producer * 31u + n * 7u + i * 13u + 1u);
}

/* Claim, retrying -EAGAIN (WAIT policy, ring full for full_wait_ns). */
static void claim(struct prod_arg *a, int32_t type, size_t len, struct rf_ring_claim *c)
{
	for (;;) {
		int rc = rf_ring_claim(a->r, type, len, c);
		if (rc == 0)
			return;
		if (rc != -EAGAIN)
			FAIL("producer %u: claim(%zu bytes): %d %s", a->id, len, rc,
			     rf_ring_errmsg());
		atomic_fetch_add(&sh->eagain[a->id], 1);
	}
}

static void *producer_thread(void *p)
{
	struct prod_arg *a = p;
	uint64_t rnd = base_seed ^ (0x9e3779b97f4a7c15ull * (a->id + 1));
	uint64_t tiny = 0;
	for (uint64_t seq = 0; seq < records_per_thread;) {
		uint64_t x = xorshift(&rnd);
		unsigned kind = (unsigned)(x % 1000);
		struct rf_ring_claim c;
		if (kind < 80) { /* tiny: shorter than the header, 0 included */
			size_t len = (size_t)((x >> 16) % sizeof(struct hdr));
			claim(a, TINY_TYPE + (int32_t)a->id, len, &c);
			for (size_t i = 0; i < len; i++)
				((uint8_t *)c.data)[i] = tiny_byte(a->id, tiny, i);
			CHECK_EQ(rf_ring_commit(a->r, &c), 0);
			tiny++;
			atomic_store(&sh->tiny[a->id], tiny);
			continue;
		}
		size_t len;
		if (kind < 95) /* near the maximum record size */
			len = (size_t)(a->max_record - (x >> 20) % 256);
		else if (kind < 600)
			len = sizeof(struct hdr) + (size_t)((x >> 20) % 256);
		else
			len = sizeof(struct hdr) + (size_t)((x >> 20) % 4096);
		int32_t type = 1 + (int32_t)((x >> 40) % 7);
		claim(a, type, len, &c);
		struct hdr h = {.magic = MAGIC, .producer = a->id, .seq = seq,
				.len = (uint32_t)len, .type = type, .tiny = (uint32_t)tiny};
		if (kind >= 975) { /* abort: must never be delivered */
			h.magic = MAGIC_ABORTED;
			memcpy(c.data, &h, sizeof h);
			CHECK_EQ(rf_ring_abort(a->r, &c), 0);
			atomic_fetch_add(&sh->aborted[a->id], 1);
			continue;
		}
		uint8_t *d = c.data;
		fill(d, sizeof h, len, x ^ seq);
		memcpy(d, &h, sizeof h);
		h.crc = (uint32_t)crc32(0, d, (uInt)len);
		memcpy(d, &h, sizeof h);
		int rc = rf_ring_commit(a->r, &c);
		if (rc)
			FAIL("producer %u: commit: %d %s", a->id, rc, rf_ring_errmsg());
		seq++;
		atomic_store(&sh->committed[a->id], seq);
	}
	return NULL;
}

static void producer_process(int proc, const struct phase *ph)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent_pid)
		_exit(RF_T_FAIL);
	/* Opened after the fork: never share a handle across fork.  The spool
	 * directory comes from the ring (spool_dir NULL). */
	struct rf_ring_opts o = {.full_policy = ph->policy, .full_wait_ns = ph->full_wait_ns};
	rf_ring *r;
	int rc = rf_ring_open(&r, ph->name, &o);
	if (rc)
		FAIL("producer process %d: open: %d %s", proc, rc, rf_ring_errmsg());
	tsan_ring_segment_is_shared(ph->name);
	struct rf_ring_stats st;
	rf_ring_stats(r, &st);
	pthread_t th[THREADS];
	struct prod_arg args[THREADS];
	for (int t = 0; t < THREADS; t++) {
		args[t] = (struct prod_arg){r, (uint32_t)(proc * THREADS + t), st.max_record};
		CHECK_EQ(pthread_create(&th[t], NULL, producer_thread, &args[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	rf_ring_close(r);
	/* exit(), not _exit(): under ASan, LeakSanitizer checks every producer
	 * process too (per-thread spill buffers included). */
	exit(RF_T_PASS);
}

/* ---- consumer ---- */

struct verify {
	uint64_t next[NPROD];
	uint64_t tiny[NPROD];
	uint64_t regular, tinies, spilled, spill_groups, bytes;
	uint64_t last_pos, last_spill_pos;
	uint32_t last_sub;
	bool any_spilled;
};

static int on_rec(const struct rf_ring_rec *rec, void *arg)
{
	struct verify *v = arg;
	if (rec->pos < v->last_pos)
		FAIL("position went backwards: %" PRIu64 " after %" PRIu64, rec->pos, v->last_pos);
	if (rec->flags & RF_RING_REC_SPILLED) {
		/* A new file starts at sub 0 (several orphan files can be
		 * delivered at the same head position); within a file the
		 * subs count up. */
		if (!v->any_spilled || rec->pos != v->last_spill_pos || rec->sub == 0) {
			if (rec->sub != 0)
				FAIL("spilled record at %" PRIu64 ": first of its file has sub %u",
				     rec->pos, rec->sub);
			v->spill_groups++;
			v->last_spill_pos = rec->pos;
		} else if (rec->sub != v->last_sub + 1) {
			FAIL("spilled record at %" PRIu64 ": sub %u after %u", rec->pos, rec->sub,
			     v->last_sub);
		}
		v->any_spilled = true;
		v->last_sub = rec->sub;
		v->spilled++;
	} else if (rec->sub != 0 || rec->flags != 0) {
		FAIL("ring record at %" PRIu64 " with sub %u flags %#x", rec->pos, rec->sub,
		     rec->flags);
	}
	v->last_pos = rec->pos;
	v->bytes += rec->len;
	const uint8_t *d = rec->data;
	if (rec->type >= TINY_TYPE && rec->type < TINY_TYPE + NPROD) {
		uint32_t p = (uint32_t)(rec->type - TINY_TYPE);
		if (rec->len >= sizeof(struct hdr))
			FAIL("tiny record of producer %u has %u bytes", p, rec->len);
		for (uint32_t i = 0; i < rec->len; i++)
			if (d[i] != tiny_byte(p, v->tiny[p], i))
				FAIL("tiny record %" PRIu64 " of producer %u: byte %u corrupt (pos %"
				     PRIu64 " flags %#x)", v->tiny[p], p, i, rec->pos, rec->flags);
		v->tiny[p]++;
		v->tinies++;
		return 0;
	}
	struct hdr h;
	if (rec->len < sizeof h)
		FAIL("record of type %d with %u bytes at %" PRIu64, rec->type, rec->len, rec->pos);
	memcpy(&h, d, sizeof h);
	if (h.magic == MAGIC_ABORTED)
		FAIL("aborted record delivered: producer %u seq %" PRIu64 " pos %" PRIu64
		     " flags %#x", h.producer, h.seq, rec->pos, rec->flags);
	if (h.magic != MAGIC || h.producer >= NPROD)
		FAIL("bad record header at %" PRIu64 " (magic %#x producer %u, flags %#x)",
		     rec->pos, h.magic, h.producer, rec->flags);
	uint32_t p = h.producer;
	if (h.seq != v->next[p])
		FAIL("producer %u: got seq %" PRIu64 ", expected %" PRIu64 " (%s; pos %" PRIu64
		     " sub %u flags %#x)", p, h.seq, v->next[p],
		     h.seq < v->next[p] ? "duplicate or reordered" : "records lost", rec->pos,
		     rec->sub, rec->flags);
	if (h.len != rec->len || h.type != rec->type)
		FAIL("producer %u seq %" PRIu64 ": len/type %u/%d delivered as %u/%d", p, h.seq,
		     h.len, h.type, rec->len, rec->type);
	if (h.tiny != v->tiny[p])
		FAIL("producer %u seq %" PRIu64 ": %u tiny records precede it, %" PRIu64
		     " delivered", p, h.seq, h.tiny, v->tiny[p]);
	uint32_t crc = h.crc;
	h.crc = 0;
	uLong c = crc32(0, (const Bytef *)&h, sizeof h);
	c = crc32(c, d + sizeof h, (uInt)(rec->len - sizeof h));
	if ((uint32_t)c != crc)
		FAIL("producer %u seq %" PRIu64 ": checksum mismatch (pos %" PRIu64 " flags %#x)",
		     p, h.seq, rec->pos, rec->flags);
	v->next[p]++;
	v->regular++;
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static unsigned count_files(const char *dir, bool print)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			if (print)
				fprintf(stderr, "  left in spool: %s\n", e->d_name);
			n++;
		}
	closedir(d);
	return n;
}

static void run_phase(struct phase *ph)
{
	rf_test_ring_name(ph->name, sizeof ph->name, ph->tag);
	rf_test_spool_dir(ph->spool, sizeof ph->spool, ph->tag);
	memset(sh, 0, sizeof *sh);
	cur_phase = ph;
	rf_ring_unlink(ph->name); /* a stale one from a killed run with our pid */

	/* Create the segment (and record the spool dir in it), then let go of
	 * the handle: nothing of it must cross the fork. */
	struct rf_ring_opts co = {.capacity = ph->capacity, .flags = RF_RING_CREATE,
				  .spool_dir = ph->spool};
	rf_ring *r;
	int rc = rf_ring_open(&r, ph->name, &co);
	if (rc)
		FAIL("create %s: %d %s", ph->name, rc, rf_ring_errmsg());
	rf_ring_close(r);

	uint64_t t0 = rf_test_now_ns();
	for (int i = 0; i < PROCS; i++) {
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0)
			producer_process(i, ph);
		children[i] = pid;
	}

	struct rf_ring_opts o = {.flags = RF_RING_CONSUMER, .spool_dir = ph->spool};
	rc = rf_ring_open(&r, ph->name, &o);
	if (rc)
		FAIL("consumer open: %d %s", rc, rf_ring_errmsg());
	struct rf_ring_stats st;
	rf_ring_stats(r, &st);
	CHECK_EQ(st.capacity, ph->capacity);

	struct verify *v = calloc(1, sizeof *v);
	CHECK(v);
	uint64_t rnd = base_seed ^ 0x5151;
	uint64_t budget_ns = (RF_SANITIZED ? 120ull : 50ull) * 1000000000ull;
	uint64_t since_pause = 0, pauses = 0, batches = 0;
	uint64_t next_pause = ph->pause_every / 2 + xorshift(&rnd) % (ph->pause_every + 1);
	int alive = PROCS;
	uint64_t done_at = 0;
	for (;;) {
		uint64_t before = v->regular + v->tinies;
		int n = rf_ring_consume(r, on_rec, v, 1 + (unsigned)(xorshift(&rnd) % 512));
		if (n < 0)
			FAIL("consume: %d %s", n, rf_ring_errmsg());
		if ((uint64_t)n != v->regular + v->tinies - before)
			FAIL("consume returned %d, handler saw %" PRIu64, n,
			     v->regular + v->tinies - before);
		batches += n > 0;
		since_pause += (uint64_t)n;
		if (ph->pause_every && since_pause >= next_pause) {
			/* Let the ring fill: producers wait, then spill. */
			sleep_ms(1 + (unsigned)(xorshift(&rnd) % ph->pause_ms));
			since_pause = 0;
			next_pause = ph->pause_every / 2 + xorshift(&rnd) % (ph->pause_every + 1);
			pauses++;
		}
		if (n == 0)
			rf_ring_wait(r, 5000000);
		for (int i = 0; i < PROCS; i++) {
			int ws;
			if (children[i] > 0 && waitpid(children[i], &ws, WNOHANG) == children[i]) {
				children[i] = 0;
				alive--;
				if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
					FAIL("producer process %d failed (status %#x)", i, ws);
			}
		}
		uint64_t now = rf_test_now_ns();
		if (alive == 0) {
			uint64_t want_reg = 0, want_tiny = 0;
			for (int p = 0; p < NPROD; p++) {
				want_reg += atomic_load(&sh->committed[p]);
				want_tiny += atomic_load(&sh->tiny[p]);
			}
			if (v->regular > want_reg || v->tinies > want_tiny)
				FAIL("more records delivered than committed");
			if (v->regular == want_reg && v->tinies == want_tiny) {
				/* Keep polling a little (orphan scans run every
				 * 100 ms): nothing else may show up. */
				if (!done_at)
					done_at = now;
				else if (now - done_at > 300000000ull)
					break;
			}
		}
		if (now - t0 > budget_ns) {
			for (int p = 0; p < NPROD; p++)
				fprintf(stderr, "  producer %2d: committed %" PRIu64 " delivered %"
					PRIu64 "; tiny %" PRIu64 "/%" PRIu64 "\n", p,
					atomic_load(&sh->committed[p]), v->next[p],
					atomic_load(&sh->tiny[p]), v->tiny[p]);
			rf_ring_stats(r, &st);
			fprintf(stderr, "  head %" PRIu64 " tail %" PRIu64 " abandoned %" PRIu64 "\n",
				st.head, st.tail, st.abandoned);
			FAIL("phase %s: no completion within %" PRIu64 " s", ph->tag,
			     (uint64_t)(budget_ns / 1000000000ull));
		}
	}
	double secs = (double)(rf_test_now_ns() - t0) / 1e9;

	uint64_t aborted = 0, eagain = 0;
	for (int p = 0; p < NPROD; p++) {
		CHECK_EQ(v->next[p], records_per_thread);
		CHECK_EQ(v->next[p], atomic_load(&sh->committed[p]));
		CHECK_EQ(v->tiny[p], atomic_load(&sh->tiny[p]));
		aborted += atomic_load(&sh->aborted[p]);
		eagain += atomic_load(&sh->eagain[p]);
	}
	rf_ring_stats(r, &st);
	CHECK_EQ(st.head, st.tail);
	CHECK_EQ(st.abandoned, 0);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.spill_failed, 0);
	CHECK_EQ(st.spill_corrupt, 0);
	CHECK_EQ(st.spill_ingested, st.spilled);
	CHECK_EQ(v->spilled, st.spilled);
	CHECK_EQ(st.claim_timeouts, eagain);
	if (ph->policy == RF_RING_FULL_WAIT) {
		CHECK_EQ(st.spilled, 0);
		CHECK(st.head > 100 * st.capacity); /* wrapped many times */
	} else {
		/* The pauses must have made producers spill.  (How much goes
		 * through the ring varies a lot: once a process spills it stays
		 * on its file until a marker fits, so a busy ring can spill
		 * nearly everything.) */
		CHECK(st.spilled > 0);
	}
	if (count_files(ph->spool, true) != 0)
		FAIL("spool directory %s not empty at the end", ph->spool);

	printf("stress %-5s: %d procs x %d threads, cap %zu KiB: %" PRIu64 " records (%" PRIu64
	       " regular + %" PRIu64 " tiny, %.1f MiB) in %.2f s, %" PRIu64 " batches; wrapped %"
	       PRIu64 "x; %" PRIu64 " aborted; %" PRIu64 " spilled in %" PRIu64
	       " files/markers; %" PRIu64 " EAGAIN; %" PRIu64 " consumer pauses; %" PRIu64
	       " wakeups\n",
	       ph->tag, PROCS, THREADS, ph->capacity >> 10, v->regular + v->tinies, v->regular,
	       v->tinies, (double)v->bytes / (1 << 20), secs, batches, st.head / st.capacity,
	       aborted, v->spilled, v->spill_groups, eagain, pauses, st.wakeups);
	fflush(stdout);
	free(v);
	rf_ring_close(r);
	rf_ring_unlink(ph->name);
	rf_test_rm_rf(ph->spool);
	cur_phase = NULL;
}

int main(void)
{
	parent_pid = getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
	records_per_thread = env_u64("RF_STRESS_RECORDS", RF_SANITIZED ? 25000 : 60000);
	base_seed = env_u64("RF_STRESS_SEED", rf_test_now_ns() ^ ((uint64_t)getpid() << 32));
	if (!base_seed)
		base_seed = 1;
	printf("seed %" PRIu64 " (RF_STRESS_SEED), %" PRIu64 " records per thread\n", base_seed,
	       records_per_thread);
	sh = rf_test_shared(sizeof *sh);
	rf_test_cleanup_on_exit(cleanup, on_signal);

	struct phase wait_ph = {.tag = "stress-wait", .policy = RF_RING_FULL_WAIT,
				.full_wait_ns = 2000000000ull, .capacity = 64u << 10,
				.pause_every = 3000, .pause_ms = 20};
	struct phase spill_ph = {.tag = "stress-spill", .policy = RF_RING_FULL_SPILL,
				 .full_wait_ns = (uint64_t)env_u64("RF_STRESS_SPILL_WAIT_NS", 0),
				 .capacity = 128u << 10,
				 .pause_every = (unsigned)env_u64("RF_STRESS_PAUSE_EVERY", 10000),
				 .pause_ms = (unsigned)env_u64("RF_STRESS_PAUSE_MS", 20)};
	run_phase(&wait_ph);
	run_phase(&spill_ph);
	return RF_T_PASS;
}
