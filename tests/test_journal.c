/*
 * test_journal - ringflowd's journal (sidecar/ingest/rf_journal.c) and its gate
 * (sidecar/ingest/rf_gate.c), in process.
 *
 *   replay     records appended and flushed come back in order, with their
 *              ring positions (a redelivered ring record is recognised)
 *   torn tail  a half-written last record is cut, not counted as corrupt
 *   corrupt    damaged bytes in the middle: copied aside (.corrupt-*),
 *              counted, and every record before and after is replayed;
 *              damage in the last record is quarantined too; the file is
 *              compacted, so the next start replays the same records cleanly
 *   gate       spool bound only while MLflow is away; pending bound with
 *              hysteresis; journal failure; counters and closed time
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rf_err.h"
#include "rf_gate.h"
#include "rf_journal.h"
#include "rf_test.h"

#define N 1000
/* Sizes vary, so records moved down over a quarantined stretch overlap
 * their old place (the case where replay order matters). */
#define RLEN(i) (64u + (unsigned)((i) % 5) * 40u)

static size_t at[N + 1]; /* file offset of each record; at[N] = end */

static int seen[N];
static int replayed, order_ok = 1, last = -1;

static void on_replay(int type, const void *data, uint32_t len, void *arg)
{
	(void)arg;
	int v;
	CHECK(type == 20 && len >= 64);
	memcpy(&v, data, sizeof v);
	CHECK(v >= 0 && v < N && len == RLEN(v));
	for (uint32_t i = sizeof v; i < len; i++)
		CHECK(((const unsigned char *)data)[i] == (unsigned char)(v + i));
	seen[v]++;
	if (v <= last)
		order_ok = 0;
	last = v;
	replayed++;
}

/* rf_journal_set_note: each handled damage, with its message. */
static int notes, notes_quarantined;
static void on_note(void *arg, const char *msg)
{
	(void)arg;
	notes++;
	if (strstr(msg, "quarantined as"))
		notes_quarantined++;
}

static void reset_seen(void)
{
	memset(seen, 0, sizeof seen);
	replayed = 0;
	order_ok = 1;
	last = -1;
}

static int count_aside(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strstr(e->d_name, ".corrupt-") != NULL;
	closedir(d);
	return n;
}

static void write_journal(const char *path)
{
	unlink(path);
	rf_journal *j;
	CHECK_EQ(rf_journal_open(&j, path, 42, RF_FSYNC_NONE, on_replay, NULL), 0);
	at[0] = 48;
	for (int i = 0; i < N; i++) {
		unsigned char buf[256];
		memcpy(buf, &i, sizeof i);
		for (uint32_t k = sizeof i; k < RLEN(i); k++)
			buf[k] = (unsigned char)(i + k);
		struct rf_ring_rec rec = {.pos = (uint64_t)i * 128, .type = 20, .len = RLEN(i),
					  .data = buf};
		rf_journal_append(j, &rec);
		at[i + 1] = at[i] + 24 + RLEN(i);
		if (i % 100 == 99)
			CHECK_EQ(rf_journal_flush(j), 0);
	}
	CHECK_EQ(rf_journal_failing(j), 0);
	CHECK_EQ(rf_journal_size(j), at[N]);
	rf_journal_close(j);
}

static void damage(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char c;
	CHECK(pread(fd, &c, 1, off) == 1);
	c ^= 0x5a;
	CHECK(pwrite(fd, &c, 1, off) == 1);
	close(fd);
}

static void test_journal(const char *dir)
{
	char path[512];
	snprintf(path, sizeof path, "%s/journal-test.rfj", dir);
	struct rf_journal_stats st;
	rf_journal *j;

	/* replay, and redelivery recognised by position */
	write_journal(path);
	reset_seen();
	CHECK_EQ(rf_journal_open(&j, path, 42, RF_FSYNC_NONE, on_replay, NULL), 0);
	CHECK_EQ(replayed, N);
	CHECK(order_ok);
	struct rf_ring_rec again = {.pos = 5 * 128, .type = 20};
	CHECK(rf_journal_seen(j, &again));
	struct rf_ring_rec fresh = {.pos = (uint64_t)N * 128, .type = 20};
	CHECK(!rf_journal_seen(j, &fresh));
	rf_journal_close(j);

	/* torn tail: cut, not corrupt */
	CHECK_EQ(truncate(path, (off_t)at[N] - 10), 0);
	reset_seen();
	CHECK_EQ(rf_journal_open(&j, path, 42, RF_FSYNC_NONE, on_replay, NULL), 0);
	rf_journal_stats(j, &st);
	CHECK_EQ(replayed, N - 1);
	CHECK_EQ(st.corrupt, 0);
	CHECK_EQ(rf_journal_size(j), at[N - 1]);
	rf_journal_close(j);

	/* damage in a payload, a header's length and the last record */
	write_journal(path);
	damage(path, (off_t)at[300] + 24 + 30); /* record 300's payload (64 bytes) */
	damage(path, (off_t)at[600] + 1);       /* record 600's length */
	damage(path, (off_t)at[N - 1] + 24 + 5); /* the last record */
	reset_seen();
	rf_journal_set_note(&(struct rf_err_sink){on_note, NULL});
	CHECK_EQ(rf_journal_open(&j, path, 42, RF_FSYNC_NONE, on_replay, NULL), 0);
	rf_journal_set_note(NULL);
	CHECK_EQ(notes, 3); /* one message per stretch, said as it is handled */
	CHECK_EQ(notes_quarantined, 3);
	rf_journal_stats(j, &st);
	CHECK_EQ(replayed, N - 3);
	CHECK(order_ok);
	CHECK(!seen[300] && !seen[600] && !seen[N - 1] && seen[299] && seen[301] && seen[601]);
	CHECK_EQ(st.corrupt, 3);
	size_t bad = (at[301] - at[300]) + (at[601] - at[600]) + (at[N] - at[N - 1]);
	CHECK_EQ(st.corrupt_bytes, bad);
	CHECK_EQ(count_aside(dir), 3);
	CHECK_EQ(st.corrupt_unkept, 0);
	printf("journal: %d of %d records replayed around 3 damaged ones (%llu bytes aside)\n",
	       replayed, N, (unsigned long long)st.corrupt_bytes);
	/* The good records were moved down over the damage: the next start
	 * replays them without meeting it again. */
	CHECK_EQ(rf_journal_size(j), at[N] - bad);
	rf_journal_close(j);
	reset_seen();
	CHECK_EQ(rf_journal_open(&j, path, 42, RF_FSYNC_NONE, on_replay, NULL), 0);
	rf_journal_stats(j, &st);
	CHECK_EQ(replayed, N - 3);
	CHECK(order_ok);
	CHECK_EQ(st.corrupt, 0);
	CHECK_EQ(count_aside(dir), 3);
	CHECK_EQ(rf_journal_reset(j), 0);
	CHECK_EQ(rf_journal_size(j), 48);
	rf_journal_close(j);
}


/* Item 5 of issue 15: the resync over damage was quadratic (a checksum of up
 * to the record length at every offset).  A journal whose damaged stretch
 * holds a well-formed 1 MiB header every 24 bytes is scanned with bounded
 * work: at most the file's size + 1 MiB is checksummed while resyncing. */
static void count_rec(int type, const void *data, uint32_t len, void *arg)
{
	(void)type;
	(void)data;
	(void)len;
	(*(int *)arg)++;
}

static void test_dense_damage(const char *dir)
{
	char path[512];
	snprintf(path, sizeof path, "%s/journal-dense.rfj", dir);
	write_journal(path);
	size_t good = at[N], dmg = 6u << 20, size = good + dmg;
	uint8_t *m = calloc(1, size);
	CHECK(m);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, m, good, 0) == (ssize_t)good);
	close(fd);
	for (size_t off = good; off + 24 <= size; off += 24) {
		uint32_t len = 24u * 43690u, crc = 0xdeadbeef, sub = 0; /* next header aligned too */
		int32_t type = 20;
		uint64_t pos = 0;
		memcpy(m + off, &len, 4);
		memcpy(m + off + 4, &type, 4);
		memcpy(m + off + 8, &crc, 4);
		memcpy(m + off + 12, &sub, 4);
		memcpy(m + off + 16, &pos, 8);
	}
	int n = 0;
	struct rf_journal_scan sc = {0};
	uint64_t t0 = rf_test_now_ns();
	CHECK_EQ(rf_journal_scan(m, size, 42, count_rec, &n, &sc), 0);
	printf("journal: %zu bytes with dense damage: %d records, %llu corrupt bytes, %llu bytes "
	       "checksummed while resyncing, %llu bytes of work, %.0f ms\n", size, n,
	       (unsigned long long)sc.corrupt_bytes, (unsigned long long)sc.crc_bytes,
	       (unsigned long long)sc.work, (double)(rf_test_now_ns() - t0) / 1e6);
	CHECK_EQ(n, N);
	CHECK_EQ(sc.corrupt, 1);
	CHECK_EQ(sc.corrupt_bytes, dmg);
	CHECK(sc.crc_bytes <= size + (1u << 20));
	CHECK(sc.work <= 4 * (uint64_t)size + (1u << 20));
	free(m);
}

/* SIGTERM during the replay of a large journal (ringflowd's interrupt):
 * rf_journal_open() stops within a few MiB, leaves the file whole (a damaged
 * stretch already set aside, the records after it moved down) and the next
 * open replays every good record exactly once. */
#define BIG 8000
static int big_seen[BIG], big_replayed, intr_calls, intr_after;

static void on_big(int type, const void *data, uint32_t len, void *arg)
{
	(void)arg;
	int v;
	CHECK(type == 21 && len == 1000);
	memcpy(&v, data, sizeof v);
	CHECK(v >= 0 && v < BIG);
	big_seen[v]++;
	big_replayed++;
}

static int intr(void *arg)
{
	(void)arg;
	return ++intr_calls >= intr_after;
}

/* BIG records of 1000 bytes (the first 4 their index) into a new journal. */
static void write_big(const char *path, uint64_t ring_created_ns)
{
	rf_journal *j;
	CHECK_EQ(rf_journal_open(&j, path, ring_created_ns, RF_FSYNC_NONE, on_big, NULL), 0);
	for (int i = 0; i < BIG; i++) {
		unsigned char buf[1000];
		memset(buf, 0x5c, sizeof buf);
		memcpy(buf, &i, sizeof i);
		struct rf_ring_rec rec = {.pos = (uint64_t)i * 1024, .type = 21, .len = 1000,
					  .data = buf};
		rf_journal_append(j, &rec);
	}
	CHECK_EQ(rf_journal_flush(j), 0);
	rf_journal_close(j);
}

static void test_interrupted_replay(const char *dir)
{
	char path[512];
	snprintf(path, sizeof path, "%s/journal-big.rfj", dir);
	unlink(path);
	write_big(path, 43);
	rf_journal *j;
	damage(path, 48 + 100 * 1024 + 24 + 500); /* record 100's payload */
	intr_after = 3;
	rf_journal_set_interrupt(intr, NULL);
	memset(big_seen, 0, sizeof big_seen);
	big_replayed = 0;
	CHECK_EQ(rf_journal_open(&j, path, 43, RF_FSYNC_NONE, on_big, NULL), -EINTR);
	printf("journal: interrupted after %d of %d records\n", big_replayed, BIG);
	CHECK(big_replayed > 100 && big_replayed < BIG);
	rf_journal_set_interrupt(NULL, NULL);
	memset(big_seen, 0, sizeof big_seen);
	big_replayed = 0;
	CHECK_EQ(rf_journal_open(&j, path, 43, RF_FSYNC_NONE, on_big, NULL), 0);
	struct rf_journal_stats st;
	rf_journal_stats(j, &st);
	CHECK_EQ(st.corrupt, 0); /* set aside by the interrupted open */
	CHECK_EQ(big_replayed, BIG - 1);
	for (int i = 0; i < BIG; i++)
		CHECK_EQ(big_seen[i], i == 100 ? 0 : 1);
	rf_journal_close(j);
}

static void test_gate(void)
{
	struct rf_gate g;
	rf_gate_init(&g, 1000, 100, 0);
	struct rf_gate_in in = {.now_ms = 0, .journal_bytes = 5000, .http_pending = 1};
	/* over the spool bound, but MLflow has not been silent for 2 s yet */
	CHECK(!rf_gate_update(&g, &in) && !rf_gate_closed(&g));
	in.now_ms = 2500;
	CHECK(rf_gate_update(&g, &in) && g.reason == RF_GATE_SPOOL_FULL);
	CHECK(!rf_gate_update(&g, &in)); /* no change: nothing to log again */
	in.now_ms = 3000;
	in.http_ok = 1; /* MLflow answered */
	CHECK(rf_gate_update(&g, &in) && !rf_gate_closed(&g));
	CHECK_EQ(g.closed_ms, 500);
	/* nothing waiting for MLflow is never "away", whatever the size */
	in.http_pending = 0;
	in.now_ms = 10000;
	CHECK(!rf_gate_update(&g, &in) && !rf_gate_closed(&g));
	/* pending bound, with hysteresis */
	in.pending = 100;
	CHECK(rf_gate_update(&g, &in) && g.reason == RF_GATE_MEMORY);
	in.pending = 60;
	CHECK(!rf_gate_update(&g, &in) && g.reason == RF_GATE_MEMORY);
	in.pending = 50;
	CHECK(rf_gate_update(&g, &in) && !rf_gate_closed(&g));
	/* a failing journal closes it first */
	in.journal_failing = 28; /* ENOSPC */
	CHECK(rf_gate_update(&g, &in) && g.reason == RF_GATE_JOURNAL);
	char msg[512];
	rf_gate_describe(&g, &in, msg, sizeof msg);
	CHECK(strstr(msg, "journal not writable"));
	in.journal_failing = 0;
	CHECK(rf_gate_update(&g, &in) && !rf_gate_closed(&g));
	CHECK_EQ(g.closes[RF_GATE_SPOOL_FULL], 1);
	CHECK_EQ(g.closes[RF_GATE_MEMORY], 1);
	CHECK_EQ(g.closes[RF_GATE_JOURNAL], 1);
	/* 0 = no bound */
	rf_gate_init(&g, 0, 0, 0);
	struct rf_gate_in big = {.now_ms = 100000, .journal_bytes = 1ull << 40, .pending = 1u << 30,
				 .http_pending = 5};
	CHECK(!rf_gate_update(&g, &big) && !rf_gate_closed(&g));
	printf("gate: spool bound only while MLflow is away, pending bound with hysteresis, "
	       "journal failure\n");
}


/* Group mode: a group member truncates the journal while ringflowd replays
 * it.  Replaying from a mapping of the file itself then dies of SIGBUS at
 * the first page past the new end; the replay reads a private copy, so
 * every record arrives and nothing crashes. */
static char trunc_path[512];
static int trunc_done;

static void on_big_truncate(int type, const void *data, uint32_t len, void *arg)
{
	if (!trunc_done) {
		trunc_done = 1;
		CHECK_EQ(truncate(trunc_path, 4096), 0); /* what a group member can do */
	}
	on_big(type, data, len, arg);
}

static void test_truncated_while_replayed(const char *dir)
{
	snprintf(trunc_path, sizeof trunc_path, "%s/journal-trunc.rfj", dir);
	unlink(trunc_path);
	write_big(trunc_path, 44);
	rf_journal *j;
	CHECK_EQ(chmod(dir, 0770), 0);
	setenv("RINGFLOW_RING_GROUP", "1", 1);
	memset(big_seen, 0, sizeof big_seen);
	big_replayed = 0;
	trunc_done = 0;
	CHECK_EQ(rf_journal_open(&j, trunc_path, 44, RF_FSYNC_NONE, on_big_truncate, NULL), 0);
	unsetenv("RINGFLOW_RING_GROUP");
	CHECK(trunc_done);
	CHECK_EQ(big_replayed, BIG);
	rf_journal_close(j);
	CHECK_EQ(chmod(dir, 0700), 0);
}

int main(void)
{
	char dir[] = "/tmp/rf-test-journal-XXXXXX";
	CHECK(mkdtemp(dir));
	test_journal(dir);
	test_dense_damage(dir);
	test_interrupted_replay(dir);
	test_truncated_while_replayed(dir);
	test_gate();
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK_EQ(system(cmd), 0);
	return RF_T_PASS;
}
