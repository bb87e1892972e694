/*
 * test_ring_full - full-ring policies.
 *   spill: records beyond the ring's room go to a spill file and come back, in
 *          order, at the marker; nothing lost.
 *   orphan: a producer that exits (or is killed) while the ring is still full
 *          leaves a file the consumer ingests after draining the ring.
 *   drop:  exact count of dropped records, reported in the ring header.
 *   spill failure: an unwritable spool is an error, counted, never silent.
 */
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "rf_ring.h"
#include "rf_test.h"

#define CAP (64u << 10)
#define REC 200

struct seqcheck {
	uint64_t next;
	uint64_t spilled_seen;
	int bad;
};

static int on_rec(const struct rf_ring_rec *rec, void *arg)
{
	struct seqcheck *s = arg;
	uint64_t seq;
	if (rec->len != REC) {
		s->bad++;
		return 0;
	}
	memcpy(&seq, rec->data, sizeof seq);
	const uint8_t *p = rec->data;
	for (int i = 8; i < REC; i++)
		if (p[i] != (uint8_t)(seq + (uint64_t)i)) {
			s->bad++;
			return 0;
		}
	if (seq != s->next) {
		fprintf(stderr, "out of order: got %llu want %llu (spilled=%d)\n",
			(unsigned long long)seq, (unsigned long long)s->next,
			!!(rec->flags & RF_RING_REC_SPILLED));
		s->bad++;
	}
	s->next = seq + 1;
	if (rec->flags & RF_RING_REC_SPILLED)
		s->spilled_seen++;
	return 0;
}

static int put(rf_ring *p, uint64_t seq)
{
	struct rf_ring_claim c;
	int rc = rf_ring_claim(p, 1, REC, &c);
	if (rc)
		return rc;
	uint8_t *d = c.data;
	memcpy(d, &seq, 8);
	for (int i = 8; i < REC; i++)
		d[i] = (uint8_t)(seq + (uint64_t)i);
	return rf_ring_commit(p, &c);
}

static void drain(rf_ring *c, struct seqcheck *s)
{
	int got, idle = 0;
	/* Orphan files are scanned at most every 100 ms: poll a little longer. */
	while (idle < 30) {
		got = rf_ring_consume(c, on_rec, s, 4096);
		CHECK(got >= 0);
		if (got == 0) {
			idle++;
			usleep(10000);
		} else {
			idle = 0;
		}
	}
}

static void test_spill_in_order(void)
{
	char name[64], spool[128];
	rf_test_ring_name(name, sizeof name, "full-spill");
	rf_test_spool_dir(spool, sizeof spool, "spill");
	struct rf_ring_opts o = {.capacity = CAP, .flags = RF_RING_CREATE | RF_RING_CONSUMER,
				 .spool_dir = spool, .full_wait_ns = 100000};
	rf_ring *c, *p;
	CHECK_EQ(rf_ring_open(&c, name, &o), 0);
	o.flags = 0;
	o.spool_dir = NULL; /* producers learn the spool dir from the ring */
	CHECK_EQ(rf_ring_open(&p, name, &o), 0);

	const uint64_t n1 = 5000, n2 = 300;
	for (uint64_t i = 0; i < n1; i++)
		CHECK_EQ(put(p, i), 0);
	struct rf_ring_stats st;
	rf_ring_stats(c, &st);
	CHECK(st.spilled > n1 / 2); /* most went to the spill file */
	CHECK_EQ(st.dropped, 0);
	struct stat sb;
	CHECK_EQ(stat(spool, &sb), 0);
	CHECK_EQ(sb.st_mode & 0777, 0700); /* owner-only spool */

	struct seqcheck s = {0};
	drain(c, &s); /* the ring's records; the producer is still spilling */
	CHECK_EQ(s.bad, 0);
	CHECK_EQ(s.next, n1 - st.spilled);
	/* The burst is over: flushing seals the spill file into the ring now,
	 * with no further record (it used to wait for the next claim). */
	CHECK_EQ(rf_ring_flush_spill(p), 0);
	drain(c, &s);
	CHECK_EQ(s.bad, 0);
	CHECK_EQ(s.next, n1);
	CHECK_EQ(rf_ring_flush_spill(p), 0); /* nothing spilled: a no-op */
	for (uint64_t i = n1; i < n1 + n2; i++)
		CHECK_EQ(put(p, i), 0);
	drain(c, &s);
	CHECK_EQ(s.bad, 0);
	CHECK_EQ(s.next, n1 + n2);
	CHECK_EQ(s.spilled_seen, st.spilled);
	rf_ring_stats(c, &st);
	CHECK_EQ(st.spill_ingested, st.spilled);
	CHECK_EQ(st.spill_failed + st.spill_corrupt + st.abandoned, 0);
	printf("spill: %llu records, %llu spilled and re-ingested in order\n",
	       (unsigned long long)(n1 + n2), (unsigned long long)st.spilled);
	rf_ring_close(p);
	rf_ring_close(c);
	rf_ring_unlink(name);
	rf_test_rm_rf(spool);
}

/* A producer process fills the ring and keeps spilling, then exits cleanly
 * (close leaves an .orphan) or is SIGKILLed (an .open of a dead pid). */
static void test_orphans(int kill_it)
{
	char name[64], spool[128];
	rf_test_ring_name(name, sizeof name, kill_it ? "orph-kill" : "orph-exit");
	rf_test_spool_dir(spool, sizeof spool, kill_it ? "ok" : "oe");
	struct rf_ring_opts o = {.capacity = CAP, .flags = RF_RING_CREATE | RF_RING_CONSUMER,
				 .spool_dir = spool, .full_wait_ns = 100000};
	rf_ring *c;
	CHECK_EQ(rf_ring_open(&c, name, &o), 0);
	const uint64_t n = 3000;
	int fds[2];
	CHECK_EQ(pipe(fds), 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		rf_ring *p;
		o.flags = 0;
		if (rf_ring_open(&p, name, &o))
			_exit(2);
		for (uint64_t i = 0; i < n; i++)
			if (put(p, i))
				_exit(3);
		if (kill_it) {
			char x = 1;
			if (write(fds[1], &x, 1) != 1)
				_exit(4);
			pause(); /* killed here, mid-spill, file still open */
		}
		rf_ring_close(p);
		_exit(0);
	}
	int status;
	if (kill_it) {
		char x;
		CHECK_EQ(read(fds[0], &x, 1), 1);
		kill(pid, SIGKILL);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(kill_it ? WIFSIGNALED(status) : (WIFEXITED(status) && WEXITSTATUS(status) == 0));
	close(fds[0]);
	close(fds[1]);
	struct seqcheck s = {0};
	drain(c, &s);
	CHECK_EQ(s.bad, 0);
	CHECK_EQ(s.next, n);
	struct rf_ring_stats st;
	rf_ring_stats(c, &st);
	CHECK(st.spilled > 0);
	CHECK_EQ(s.spilled_seen, st.spilled);
	CHECK_EQ(st.spill_ingested, st.spilled);
	printf("orphan (%s): %llu records, %llu from the spill file, in order\n",
	       kill_it ? "producer killed" : "producer exited", (unsigned long long)n,
	       (unsigned long long)st.spilled);
	rf_ring_close(c);
	rf_ring_unlink(name);
	rf_test_rm_rf(spool);
}

static void test_drop(void)
{
	char name[64];
	rf_test_ring_name(name, sizeof name, "full-drop");
	struct rf_ring_opts o = {.capacity = CAP, .flags = RF_RING_CREATE | RF_RING_CONSUMER,
				 .full_policy = RF_RING_FULL_DROP};
	rf_ring *c, *p;
	CHECK_EQ(rf_ring_open(&c, name, &o), 0);
	o.flags = 0;
	CHECK_EQ(rf_ring_open(&p, name, &o), 0);
	uint64_t ok = 0, dropped = 0;
	for (uint64_t i = 0; i < 2000; i++) {
		int rc = put(p, ok);
		if (rc == 0)
			ok++;
		else {
			CHECK_EQ(rc, -ENOBUFS);
			dropped++;
		}
	}
	struct rf_ring_stats st;
	rf_ring_stats(c, &st);
	CHECK(dropped > 0);
	CHECK_EQ(st.dropped, dropped);
	CHECK_EQ(st.spilled, 0);
	struct seqcheck s = {0};
	drain(c, &s);
	CHECK_EQ(s.bad, 0);
	CHECK_EQ(s.next, ok);
	printf("drop: %llu delivered + %llu dropped (counted %llu) = 2000\n",
	       (unsigned long long)ok, (unsigned long long)dropped,
	       (unsigned long long)st.dropped);
	rf_ring_close(p);
	rf_ring_close(c);
	rf_ring_unlink(name);
}

static void test_spill_failure(void)
{
	char name[64], spool[128];
	rf_test_ring_name(name, sizeof name, "full-fail");
	rf_test_spool_dir(spool, sizeof spool, "fail");
	/* The spool path is a regular file: every spill attempt must fail. */
	FILE *f = fopen(spool, "w");
	CHECK(f != NULL);
	fclose(f);
	struct rf_ring_opts o = {.capacity = CAP, .flags = RF_RING_CREATE, .spool_dir = spool,
				 .full_wait_ns = 100000};
	rf_ring *p;
	CHECK_EQ(rf_ring_open(&p, name, &o), 0);
	uint64_t ok = 0, failed = 0;
	for (uint64_t i = 0; i < 1000; i++) {
		int rc = put(p, i);
		if (rc == 0)
			ok++;
		else
			failed++;
	}
	struct rf_ring_stats st;
	rf_ring_stats(p, &st);
	CHECK(failed > 0);
	CHECK_EQ(st.spill_failed, failed);
	CHECK(strstr(rf_ring_errmsg(), spool) != NULL);
	printf("spill failure: %llu accepted, %llu failed and counted: %s\n",
	       (unsigned long long)ok, (unsigned long long)failed, rf_ring_errmsg());
	rf_ring_close(p);
	rf_ring_unlink(name);
	unlink(spool);
}

int main(void)
{
	test_spill_in_order();
	test_orphans(0);
	test_orphans(1);
	test_drop();
	test_spill_failure();
	return RF_T_PASS;
}
