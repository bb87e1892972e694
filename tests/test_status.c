/*
 * test_status - the stats file ringflowd publishes (sidecar/ops/rf_status.c).
 *
 * A writer thread publishes snapshots whose every counter holds the same
 * value while a reader maps the file again and again: every snapshot read
 * must be consistent (never half of one update and half of another), the
 * values must only grow, and the file must be owner-only.  Reads alternate
 * between the file (a fresh mapping each time, as `ringflowd status` does)
 * and the writer's own mapping: ThreadSanitizer tracks virtual addresses, so
 * only the latter lets it see both sides of the seqlock (make test runs this
 * under TSan).  Also: a file others may read, or a symlink, is refused.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "rf_status.h"
#include "rf_test.h"

static char path[300];
static rf_status *st;
static atomic_int stop;

#define N_FIELDS 8
static void fill(struct rf_status_snap *s, uint64_t v)
{
	memset(s, 0, sizeof *s);
	s->pid = getpid();
	s->records_in = s->records_out = s->metrics = s->pending = s->ring_pos = s->spool_bytes = v;
	/* The last word too: the copy covers the whole snapshot. */
	s->traces_spooled = s->gate_closed_ms = v;
	snprintf(s->last_error, sizeof s->last_error, "error %llu", (unsigned long long)v);
}

static void *writer(void *arg)
{
	(void)arg;
	struct rf_status_snap s;
	for (uint64_t v = 1; !atomic_load(&stop); v++) {
		fill(&s, v);
		rf_status_publish(st, &s);
		/* Bursts with short gaps: a writer that never pauses starves the
		 * reader's seqlock retries on a loaded 2-core host under TSan
		 * (55 reads in 1.5 s), and the test then proves little. */
		if (v % 256 == 0)
			nanosleep(&(struct timespec){ .tv_nsec = 20000 }, NULL);
	}
	return NULL;
}

int main(void)
{
	char spool[256];
	rf_test_spool_dir(spool, sizeof spool, "status");
	CHECK(mkdir(spool, 0700) == 0);
	CHECK(rf_status_path(path, sizeof path, spool, "/rf-test-status") == 0);
	CHECK(strstr(path, "/ringflowd-rf-test-status.stats") != NULL);

	struct rf_status_snap s;
	CHECK_EQ(rf_status_read(path, &s), -ENOENT);
	umask(0); /* the file must still be owner-only */
	CHECK_EQ(rf_status_open(&st, path), 0);
	struct stat sb;
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	CHECK_EQ(rf_status_read(path, &s), -EPROTO); /* nothing published yet */

	pthread_t t;
	CHECK(pthread_create(&t, NULL, writer, NULL) == 0);
	uint64_t last = 0, reads = 0, retries = 0;
	/* At least 1.5 s, then on until 2,000 consistent reads (at most 30 s). */
	uint64_t start = rf_test_now_ns();
	for (;;) {
		uint64_t now = rf_test_now_ns();
		if (now - start > 30000000000ull || (now - start > 1500000000ull && reads >= 2000))
			break;
		int rc = reads % 2 ? rf_status_read_own(st, &s) : rf_status_read(path, &s);
		if (rc == -EAGAIN || rc == -EPROTO) { /* mid-update, or before the first */
			retries++;
			continue;
		}
		CHECK_EQ(rc, 0);
		uint64_t v = s.records_in;
		CHECK_EQ(s.records_out, v);
		CHECK_EQ(s.metrics, v);
		CHECK_EQ(s.pending, v);
		CHECK_EQ(s.ring_pos, v);
		CHECK_EQ(s.spool_bytes, v);
		CHECK_EQ(s.traces_spooled, v);
		CHECK_EQ(s.gate_closed_ms, v);
		char want[64];
		snprintf(want, sizeof want, "error %llu", (unsigned long long)v);
		CHECK(strcmp(s.last_error, want) == 0);
		CHECK_EQ(s.magic, RF_STATUS_MAGIC);
		CHECK(v >= last);
		last = v;
		reads++;
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	printf("test_status: %llu consistent reads of %d fields + a string, %llu retried, "
	       "last value %llu\n",
	       (unsigned long long)reads, N_FIELDS, (unsigned long long)retries,
	       (unsigned long long)last);
	CHECK(reads > 100 && last > 100);

	/* A file of another layout (an older or newer ringflowd) is refused,
	 * never read as this one. */
	{
		int fd = open(path, O_RDWR);
		CHECK(fd >= 0);
		uint64_t words[2] = {2, 0}; /* sequence even, then the magic */
		CHECK(pread(fd, words, sizeof words, 0) == (ssize_t)sizeof words);
		CHECK_EQ(words[1], RF_STATUS_MAGIC);
		uint64_t old = RF_STATUS_VERSION - 1;
		CHECK(pwrite(fd, &old, sizeof old, 16) == (ssize_t)sizeof old); /* after seq, magic */
		CHECK_EQ(rf_status_read(path, &s), -EPROTO);
		uint64_t cur = RF_STATUS_VERSION;
		CHECK(pwrite(fd, &cur, sizeof cur, 16) == (ssize_t)sizeof cur);
		CHECK_EQ(rf_status_read(path, &s), 0);
		/* Shorter than this layout's block: refused too. */
		CHECK(ftruncate(fd, 1024) == 0);
		CHECK_EQ(rf_status_read(path, &s), -EPROTO);
		close(fd);
		rf_status_close(st);
		CHECK_EQ(rf_status_open(&st, path), 0); /* the writer sizes it again */
		fill(&s, 7);
		rf_status_publish(st, &s);
		CHECK_EQ(rf_status_read(path, &s), 0);
		CHECK_EQ(s.gate_closed_ms, 7);
	}

	/* Readable by others: not trusted. */
	CHECK(chmod(path, 0644) == 0);
	CHECK_EQ(rf_status_read(path, &s), -EPERM);
	CHECK(chmod(path, 0600) == 0);
	CHECK_EQ(rf_status_read(path, &s), 0);
	/* A symlink is not followed. */
	char link[400];
	snprintf(link, sizeof link, "%s/link.stats", spool);
	CHECK(symlink(path, link) == 0);
	CHECK(rf_status_read(link, &s) < 0);

	rf_status_close(st);
	unlink(link);
	unlink(path);
	rmdir(spool);
	return RF_T_PASS;
}
