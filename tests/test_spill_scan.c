/*
 * test_spill_scan - spill files are untrusted input to the consumer:
 *
 *  - a crafted damaged file whose every 16th byte starts a well-formed
 *    header with a 1 MiB length (each a candidate for resync) is scanned
 *    with bounded work: the old scan checksummed 1 MiB at each of them
 *    (quadratic: hours for this 6 MiB file);
 *  - a file truncated while it is ingested ends there, counted and
 *    quarantined (the old consumer read it through a mapping: SIGBUS);
 *  - an interrupt (ringflowd's SIGTERM) stops a long ingestion promptly and
 *    leaves the file for the next consumer.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zlib.h>

#include "../ringbuf/rf_ring_int.h"
#include "rf_test.h"

#define CAP (16u << 20)
#define MAXREC RF_RING_MAX_RECORD(CAP)

struct count {
	int n;
	int trunc_at; /* >0: truncate `path` when this record arrives */
	const char *path;
	uint64_t bytes;
};

static int on_rec(const struct rf_ring_rec *rec, void *arg)
{
	struct count *c = arg;
	const volatile uint8_t *d = rec->data;
	for (uint32_t i = 0; i < rec->len; i += 512)
		c->bytes += d[i];
	if (++c->n == c->trunc_at)
		CHECK_EQ(truncate(c->path, 4096), 0);
	return 0;
}

static size_t put_hdr(uint8_t *m)
{
	memset(m, 0, 32);
	memcpy(m, "RFSPILL1", 8);
	uint32_t v = 1, hb = 32;
	memcpy(m + 8, &v, 4);
	memcpy(m + 12, &hb, 4);
	return 32;
}

static size_t put_rec(uint8_t *m, int32_t type, uint32_t len, uint8_t fill)
{
	memset(m + 16, fill, len);
	uLong c = crc32(0L, (const Bytef *)&type, 4);
	uint32_t crc = (uint32_t)crc32(c, m + 16, len);
	uint32_t zero = 0;
	memcpy(m, &len, 4);
	memcpy(m + 4, &type, 4);
	memcpy(m + 8, &crc, 4);
	memcpy(m + 12, &zero, 4);
	return 16 + len;
}

static void test_dense_damage_is_linear(void)
{
	const size_t dmg = 6u << 20;
	uint8_t *m = calloc(1, dmg + 4096);
	CHECK(m);
	size_t off = put_hdr(m);
	off += put_rec(m + off, 1, 100, 0x11);
	/* Damage: a header every 16 bytes, 1 MiB long (so the next header
	 * after it is well-formed too), wrong checksum. */
	size_t d0 = off;
	for (; off + 16 <= d0 + dmg; off += 16) {
		uint32_t len = 1u << 20, crc = 0xdeadbeef, zero = 0;
		int32_t type = 1;
		memcpy(m + off, &len, 4);
		memcpy(m + off + 4, &type, 4);
		memcpy(m + off + 8, &crc, 4);
		memcpy(m + off + 12, &zero, 4);
	}
	off += put_rec(m + off, 2, 200, 0x22);
	struct count c = {0};
	struct rf_spill_report rep = {0};
	uint64_t t0 = rf_test_now_ns();
	int n = rf_spill_scan(m, off, MAXREC, 0, RF_RING_REC_SPILLED, on_rec, &c, &rep);
	fprintf(stderr, "  %zu bytes: %d records, %zu skipped, %" PRIu64 " bytes checksummed while "
		"resyncing, %" PRIu64 " bytes of work, %.0f ms, %s\n", off, n, rep.skipped,
		rep.crc_bytes, rep.work, (double)(rf_test_now_ns() - t0) / 1e6,
		rep.bad ? rep.bad : "-");
	CHECK(n >= 1);
	CHECK_EQ(c.n, n);
	CHECK(rep.bad != NULL);
	/* Bounded by the file's size: the budget is size + 1 MiB. */
	CHECK(rep.crc_bytes <= off + (1u << 20));
	CHECK(rep.work <= 4 * (uint64_t)off + (1u << 20));
	/* Honest damage (random bytes): the record after it is found again. */
	off = put_hdr(m);
	off += put_rec(m + off, 1, 100, 0x11);
	srand(7);
	for (size_t i = 0; i < (256u << 10); i++)
		m[off++] = (uint8_t)rand();
	off += put_rec(m + off, 2, 200, 0x22);
	off += put_rec(m + off, 3, 300, 0x33);
	memset(&c, 0, sizeof c);
	n = rf_spill_scan(m, off, MAXREC, 0, RF_RING_REC_SPILLED, on_rec, &c, &rep);
	fprintf(stderr, "  random damage: %d records, %zu skipped, %" PRIu64 " bytes checksummed\n",
		n, rep.skipped, rep.crc_bytes);
	CHECK_EQ(n, 3);
	CHECK_EQ(rep.skipped, 256u << 10);
	CHECK(!rep.budget_spent);
	free(m);
}

static void ring_and_spool(const char *tag, char *name, size_t nl, char *spool, size_t sl,
			   rf_ring **cons)
{
	rf_test_ring_name(name, nl, tag);
	rf_test_spool_dir(spool, sl, tag);
	struct rf_ring_opts o = {.capacity = 64u << 10, .flags = RF_RING_CREATE | RF_RING_CONSUMER,
				 .spool_dir = spool};
	CHECK_EQ(rf_ring_open(cons, name, &o), 0);
}

/* An orphan spill file of `records` records of 8000 bytes in the spool. */
static void orphan(rf_ring *r, const char *spool, char *path, size_t pl, int records)
{
	snprintf(path, pl, "%s/spill-%.24s-%016" PRIx64 "-%d-1-0.orphan", spool, r->name + 1,
		 r->created_ns, 99999);
	size_t size = 32 + (size_t)records * 8016;
	uint8_t *m = calloc(1, size);
	CHECK(m);
	size_t off = put_hdr(m);
	for (int i = 0; i < records; i++)
		off += put_rec(m + off, 5, 8000, (uint8_t)i);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, m, off), (ssize_t)off);
	close(fd);
	free(m);
}

static void test_truncated_while_read(void)
{
	char name[64], spool[128], path[512], q[600];
	rf_ring *c;
	ring_and_spool("spill-trunc", name, sizeof name, spool, sizeof spool, &c);
	orphan(c, spool, path, sizeof path, 2048); /* 16 MiB */
	struct count cnt = {.trunc_at = 1, .path = path};
	int got = rf_ring_consume(c, on_rec, &cnt, 1000);
	CHECK(got >= 0);
	fprintf(stderr, "  truncated: %d records, rc %d, %s\n", cnt.n, got, rf_ring_errmsg());
	CHECK(cnt.n >= 1 && cnt.n < 2048);
	struct rf_ring_stats st;
	rf_ring_stats(c, &st);
	CHECK_EQ(st.spill_corrupt, 1);
	CHECK(strstr(rf_ring_errmsg(), "truncated while it was read") != NULL);
	snprintf(q, sizeof q, "%s.corrupt", path);
	CHECK(access(q, F_OK) == 0);
	rf_ring_close(c);
	rf_ring_unlink(name);
}

static int stop_after;
static int interrupt_calls;
static int interrupted(void *arg)
{
	(void)arg;
	return ++interrupt_calls >= stop_after;
}

static void test_interrupted(void)
{
	char name[64], spool[128], path[512];
	rf_ring *c;
	ring_and_spool("spill-intr", name, sizeof name, spool, sizeof spool, &c);
	orphan(c, spool, path, sizeof path, 2048);
	stop_after = 2;
	rf_ring_set_interrupt(c, interrupted, NULL);
	struct count cnt = {0};
	CHECK_EQ(rf_ring_consume(c, on_rec, &cnt, 1000), -EINTR);
	CHECK(cnt.n > 0 && cnt.n < 2048); /* stopped within ~2 MiB of work */
	CHECK(access(path, F_OK) == 0); /* left for the next consumer */
	rf_ring_set_interrupt(c, NULL, NULL);
	cnt.n = 0;
	usleep(120000); /* the orphan scan runs at most every 100 ms */
	CHECK_EQ(rf_ring_consume(c, on_rec, &cnt, 1000), 2048);
	CHECK(access(path, F_OK) != 0);
	rf_ring_close(c);
	rf_ring_unlink(name);
}

int main(void)
{
	test_dense_damage_is_linear();
	test_truncated_while_read();
	test_interrupted();
	printf("test_spill_scan: ok\n");
	return RF_T_PASS;
}
