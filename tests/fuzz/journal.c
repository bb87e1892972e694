/*
 * journal.c - fuzz target: the sidecar's journal replay.
 *
 * Input: one byte of options, then a journal file image
 * (<spool>/journal-<ring>.rfj).  Option bit 0 recomputes every record's
 * checksum first, so the fuzzer reaches record contents and lengths rather
 * than stopping at crc32; bit 1 replays it as the journal of another ring.
 * The image goes through rf_journal_scan() (what rf_journal_open() runs on
 * the mapped file) and each replayed record through what ringflowd does
 * with it (fuzz_track.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_image.h"
#include "fuzz_track.h"
#include "rf_journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_rec(int type, const void *d, uint32_t len, void *arg)
{
	(*(uint64_t *)arg)++;
	fuzz_track_feed(type, d, len);
}

/* Record header: u32 len | i32 type | u32 crc | u32 sub | u64 pos; the
 * crc covers type, pos, sub and the payload. */
static uint32_t record_crc(const uint8_t *r, uint32_t len)
{
	uLong c = crc32(0L, r + 4, 4);  /* type */
	c = crc32(c, r + 16, 8);         /* pos */
	c = crc32(c, r + 12, 4);         /* sub */
	return (uint32_t)crc32(c, r + 24, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_records recs = {48, 24, record_crc};
	struct fuzz_image im = fuzz_image(data, size, &recs);
	uint8_t *m = im.m, opt = im.opt;
	if (!m)
		return 0;
	size = im.size;
	uint64_t created = 0;
	if (size >= 24)
		memcpy(&created, m + 16, 8); /* the header's ring_created_ns */
	if (opt & 2)
		created++;
	fuzz_track_begin((size & 1) != 0); /* odd sizes: one trace per run */
	uint64_t n = 0;
	struct rf_journal_scan s = {0};
	int rc = rf_journal_scan(m, size, created, on_rec, &n, &s);
	if (rc == 0 && (s.records != n || s.end > (size < 48 ? 48 : size) ||
			s.corrupt_bytes > size))
		abort(); /* the scan's report must match what it delivered */
	if (s.crc_bytes > (uint64_t)size + (1u << 20))
		abort(); /* linear: the resync's checksummed bytes are bounded by the size */
	fuzz_track_end();
	free(m);
	return 0;
}
