/*
 * spill.c - fuzz target: the consumer's reading of producer spill files.
 *
 * Input: one byte of options, then a spill file image (<spool>/spill-*.open:
 * what a producer wrote when the ring was full, read back by the consumer
 * from a read-only mapping).  Option bit 0 recomputes every record's
 * checksum first, so the fuzzer reaches record contents and lengths rather
 * than stopping at crc32.  The image goes through rf_spill_scan() (what
 * deliver_file() runs on the mapped file) and each delivered record through
 * what ringflowd does with it (fuzz_track.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_image.h"
#include "fuzz_track.h"
#include "rf_ring_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXREC ((16u << 20) / 8 - 8) /* the default ring's max_record */

struct ctx {
	int n;
	uint32_t next_sub;
};

static int on_rec(const struct rf_ring_rec *rec, void *arg)
{
	struct ctx *c = arg;
	if (rec->sub != c->next_sub++ || rec->len > MAXREC || rec->type < 1 ||
	    !(rec->flags & RF_RING_REC_SPILLED))
		abort(); /* delivered in order, within limits, marked as spilled */
	c->n++;
	fuzz_track_feed(rec->type, rec->data, rec->len);
	return 0;
}

/* Record header: u32 len | i32 type | u32 crc32(type, payload) | u32 0. */
static uint32_t record_crc(const uint8_t *r, uint32_t len)
{
	return (uint32_t)crc32(crc32(0L, r + 4, 4), r + 16, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_records recs = {32, 16, record_crc};
	struct fuzz_image im = fuzz_image(data, size, &recs);
	uint8_t *m = im.m, opt = im.opt;
	if (!m)
		return 0;
	size = im.size;
	fuzz_track_begin((size & 1) != 0); /* odd sizes: one trace per run */
	struct ctx c = {0};
	struct rf_spill_report rep = {0};
	int n = rf_spill_scan(m, size, MAXREC, 4096, RF_RING_REC_SPILLED | ((opt & 2) ? RF_RING_REC_ORPHAN : 0),
			      on_rec, &c, &rep);
	if (n != c.n || rep.skipped > size || (rep.skipped && !rep.bad))
		abort(); /* the scan's report must match what it delivered */
	/* Linear: what the resync checksums is bounded by the input's size. */
	if (rep.crc_bytes > (uint64_t)size + (1u << 20))
		abort();
	fuzz_track_end();
	free(m);
	return 0;
}
