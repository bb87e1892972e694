/*
 * test_ring_crash_consumer - crash safety of the ring when the consumer dies
 * (SIGKILL) and is restarted.  Producers dying is test_ring_crash.c; what both
 * share is in rf_test_crash.h.
 *
 * A consumer child appends (pos, sub, producer, seq) of every delivered
 * record to its own output file with write() and is SIGKILLed several times
 * while 3 x 2 producer threads write (SPILL policy).  Each new consumer must
 * get the consumer lock at once (flock dies with the holder) and reads the
 * last entry of the previous outputs.  If that was a ring record, it calls
 * rf_ring_resume() past it and relies on that alone: a record delivered again
 * is written again and fails the test as a duplicate, one skipped too many
 * fails it as lost.  If it came from a spill file (whose records share their
 * marker's pos), it skips re-delivered records with (pos, sub) <= that entry
 * until it has caught up.  At the end the output files together must hold
 * every committed record exactly once, in order per producer.  Two phases:
 *
 *  B1 spill-heavy: a 128 KiB ring that producers outrun, so nearly every
 *     record goes through a spill file; kills at random moments (start-up,
 *     draining, inside spill ingestion).  Exactly-once across spill files.
 *     A restart here almost never finds a ring record last, so B1 alone
 *     would leave rf_ring_resume untested (it did, once).
 *  B2 resume: a 4 MiB ring and paced producers, so records stay in the ring;
 *     each consumer is killed at a point where its position is known to be
 *     a ring record whose batch is not yet freed: inside the handler right
 *     after writing it (rf_ring_consume), or after a whole held batch, before
 *     rf_ring_release (rf_ring_consume_held, ringflowd's pattern).  Every
 *     restart must therefore go through rf_ring_resume and move head; the
 *     test fails unless all of them did.  (Structural, not timed: a consumer
 *     that never meets a ring record only makes the phase slower.)
 *
 * RF_CRASH_SCALE (default 1) multiplies the number of consumer kills (16 in
 * B1 and 12 in B2; 10 and 8 under sanitizers); RF_CRASH_SEED fixes the seed.
 * Ring, spool and output directory names carry the pid.
 */
#include "rf_test_crash.h"

/* Scenario B */
#define B_PROCS 3
#define B_THREADS 2
#define B_NPROD (B_PROCS * B_THREADS)

/* One output entry per delivered record. */
struct outrec {
	uint64_t pos;
	uint32_t sub;
	uint32_t flags;
	uint32_t producer;
	uint32_t len;
	uint64_t seq;
};
_Static_assert(sizeof(struct outrec) == 32, "outrec");

/* One phase (see the top of the file). */
struct phase {
	const char *name, *tag;
	size_t capacity;
	int kills;           /* before RF_CRASH_SCALE */
	bool at_ring_record; /* kill where the position is a ring record (else at random moments) */
	uint64_t pace_ns;    /* producer_pace_ns */
	uint64_t len_cap;    /* producer_len_cap */
};

/* The phase being run, and whether the consumer about to be spawned is the
 * last one (never killed); fork passes them on. */
static const struct phase *ph;
static bool final_consumer;

/* How a B2 consumer is positioned when it is killed. */
enum { KILL_IN_HANDLER, KILL_HELD_BATCH };

/* ================= scenario B: consumer killed ================= */

struct cons_ctx {
	int inc;
	int fd;
	bool have_last, caught_up;
	struct outrec last;
	uint64_t delivered, dups, spilled;
	int kill_mode;       /* B2: KILL_* */
	uint64_t kill_after; /* B2: stop to be killed from this many deliveries on */
	bool last_in_ring;   /* the last record written came from the ring */
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

/* Tell the parent we are at a kill point, and wait for SIGKILL. */
static _Noreturn void await_kill(const struct cons_ctx *c, bool held)
{
	atomic_store(&sh->held_kill[c->inc], held);
	atomic_store(&sh->at_kill_point[c->inc], 1);
	for (;;)
		pause();
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
	/* After a restart on a spill record, records up to the last one
	 * written by the previous consumer come again: skip them until we are
	 * past it.  (Only until then: the position of a record delivered from
	 * an orphaned spill file is the head at the time, which a later ring
	 * record can share.)  After a ring record, rf_ring_resume() did the
	 * skipping, and nothing is filtered here. */
	if (c->have_last && !c->caught_up && (c->last.flags & RF_RING_REC_SPILLED)) {
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
	if (rec->flags & RF_RING_REC_SPILLED)
		c->spilled++;
	atomic_store_explicit(&sh->delivered[c->inc], c->delivered, memory_order_relaxed);
	atomic_store_explicit(&sh->spilled[c->inc], c->spilled, memory_order_relaxed);
	c->last_in_ring = !(rec->flags & RF_RING_REC_SPILLED);
	/* B2: die here, with the record written and its batch (hence head)
	 * not yet freed: the successor must resume past it. */
	if (ph->at_ring_record && c->kill_mode == KILL_IN_HANDLER && c->last_in_ring &&
	    c->delivered >= c->kill_after)
		await_kill(c, false);
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
	if (c.have_last && !(c.last.flags & RF_RING_REC_SPILLED)) {
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
	/* B2: where to be killed, alternating so every run has both.  A
	 * quarter of the consumers die at their first ring record or so (a
	 * resume right after a resume). */
	c.kill_mode = inc % 2 ? KILL_HELD_BATCH : KILL_IN_HANDLER;
	uint64_t x = xorshift(&rnd);
	c.kill_after = final_consumer ? UINT64_MAX
		       : x % 4 == 0 ? 1 + (x >> 8) % 3 : 1 + (x >> 8) % 1500;
	bool held = ph->at_ring_record && c.kill_mode == KILL_HELD_BATCH;
	uint64_t idle_since = 0;
	for (;;) {
		unsigned max = 1 + (unsigned)(xorshift(&rnd) % 300);
		int n = held ? rf_ring_consume_held(r, on_rec_b, &c, max)
			     : rf_ring_consume(r, on_rec_b, &c, max);
		if (n < 0) {
			fprintf(stderr, "consumer %d: consume: %d %s\n", inc, n, rf_ring_errmsg());
			_exit(8);
		}
		if (held) {
			/* The whole batch is written, none of it freed yet. */
			if (n > 0 && c.last_in_ring && c.delivered >= c.kill_after)
				await_kill(&c, true);
			rf_ring_release(r);
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

/* B2: wait until consumer `inc` stands at its kill point.  It gets there
 * once it has delivered its quota of records and one from the ring; the
 * bound only turns a hang into a failure. */
static void await_kill_point(int inc)
{
	uint64_t ts = rf_test_now_ns();
	while (!atomic_load(&sh->at_kill_point[inc])) {
		reap(); /* a consumer that fails instead fails the test */
		if (rf_test_now_ns() - ts > 120000000000ull)
			FAIL("%s: consumer %d (%" PRIu64 " delivered) reached no ring record to be "
			     "killed at within 120 s", ph->name, inc, atomic_load(&sh->delivered[inc]));
		sleep_ns(1000000);
	}
}

static void scenario_b(const struct phase *p)
{
	ph = p;
	final_consumer = false;
	producer_pace_ns = p->pace_ns;
	producer_len_cap = p->len_cap;
	uint64_t rnd = seed ^ 0xb0b ^ (uint64_t)p->capacity;
	const uint64_t scale = env_u64("RF_CRASH_SCALE", 1);
	int kills = (int)((uint64_t)p->kills * scale);
	if (kills > MAX_INCARNATIONS - 1)
		kills = MAX_INCARNATIONS - 1;
	make_ring(p->tag, p->capacity);
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
		if (p->at_ring_record) {
			uint64_t ts = rf_test_now_ns();
			await_kill_point(inc);
			kill_delay_sum += rf_test_now_ns() - ts;
			kill_child(cons[inc]);
			wait_child_blocking(cons[inc]);
			continue;
		}
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
	final_consumer = true;
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
	int resumed = 0, held_kills = 0;
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
			spilled += (e->flags & RF_RING_REC_SPILLED) != 0;
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
		held_kills += inc < final_inc && atomic_load(&sh->held_kill[inc]);
	}
	for (int id = 0; id < B_NPROD; id++)
		if (next[id] != atomic_load(&sh->p[id].committed))
			FAIL("producer %d: %" PRIu64 " records in the outputs, %" PRIu64 " committed", id,
			     next[id], atomic_load(&sh->p[id].committed));
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
	char how[96] = "at random moments";
	if (p->at_ring_record)
		snprintf(how, sizeof how, "at ring records: %d in the handler, %d after held batches",
			 kills - held_kills, held_kills);
	printf("crash %s: consumer SIGKILLed %d times (%s; mean %.0f ms apart) + final consumer: "
	       "%" PRIu64 " records from %d producers exactly once and in order (%" PRIu64 " via "
	       "spill files, %" PRIu64 " spilled in all); %" PRIu64 " re-deliveries skipped after "
	       "spill records; %d of %d restarts resumed by rf_ring_resume; restart attach worst "
	       "%.2f ms (%u tries); %.1f s\n",
	       p->name, kills, how, (double)kill_delay_sum / kills / 1e6, total, B_NPROD, spilled,
	       st.spilled, dups, resumed, kills, (double)max_open_ns / 1e6, max_tries,
	       (double)(rf_test_now_ns() - t0) / 1e9);
	/* Each B2 consumer died on a ring record its batch had not freed, so
	 * every restart (the final consumer's too) must have moved head past it
	 * with rf_ring_resume(); the exact-once check above proved it skipped
	 * exactly the records already written. */
	if (p->at_ring_record && resumed != kills)
		FAIL("%s: only %d of %d restarts were resumed by rf_ring_resume", p->name, resumed,
		     kills);
	nkids = 0;
	drop_ring();
	rf_test_rm_rf(out_dir);
	out_dir[0] = 0;
}

int main(void)
{
	crash_setup();
	static const struct phase b1 = {"B1", "crash-b1", 128u << 10, RF_SANITIZED ? 10 : 16,
					false, 0, 0};
	/* 4 MiB and 6 producers each pausing 500 us per record of at most
	 * 4 KiB (~600 B mean): a few MB/s, so the ring holds over a second of
	 * a consumer descheduled on a loaded 2-core host, and a kill-restart
	 * (fork, open, resume) finds the records still in it. */
	static const struct phase b2 = {"B2", "crash-b2", 4u << 20, RF_SANITIZED ? 8 : 12,
					true, 500000, 4096};
	scenario_b(&b1);
	scenario_b(&b2);
	return RF_T_PASS;
}
