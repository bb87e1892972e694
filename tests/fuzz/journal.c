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

#include "fuzz_track.h"
#include "rf_journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_rec(int type, const void *d, uint32_t len, void *arg)
{
	(*(uint64_t *)arg)++;
	fuzz_track_feed(type, d, len);
}

/* Record header: u32 len | i32 type | u32 crc | u32 sub | u64 pos. */
static void fix_crcs(uint8_t *m, size_t size)
{
	size_t off = 48;
	while (off + 24 <= size) {
		uint32_t len;
		memcpy(&len, m + off, 4);
		if (len > size - off - 24)
			break;
		uLong c = crc32(0L, m + off + 4, 4);     /* type */
		c = crc32(c, m + off + 16, 8);           /* pos */
		c = crc32(c, m + off + 12, 4);           /* sub */
		uint32_t crc = (uint32_t)crc32(c, m + off + 24, len);
		memcpy(m + off + 8, &crc, 4);
		off += 24 + len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t opt = data[0];
	size--;
	uint8_t *m = malloc(size ? size : 1); /* exact size: ASan sees any overread */
	if (!m)
		return 0;
	memcpy(m, data + 1, size);
	if (opt & 1)
		fix_crcs(m, size);
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
