/*
 * record.c - fuzz target: producer records into the sidecar.
 *
 * Input: records as [u8 type][u16 little-endian length][payload], one after
 * another (the last takes what is left).  Each goes through what ringflowd
 * does with a ring record: rf_decode (msgpack-c + shape checks), the rf_obj_*
 * accessors, ringflow-dump's JSON rendering, rf_track_record (the mapping,
 * aggregation, artifact tables); then the whole upload (runs, log-batch
 * bodies, artifacts, statuses) against canned server answers, each request
 * body checked to be valid JSON.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_track.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_track_begin((size & 1) != 0); /* odd sizes: one trace per run */
	size_t off = 0;
	while (off < size) {
		int type = data[off++];
		size_t len = size - off;
		if (len >= 2) {
			size_t want = (size_t)data[off] | (size_t)data[off + 1] << 8;
			off += 2;
			len = size - off < want ? size - off : want;
		} else {
			off += len;
			len = 0;
		}
		fuzz_track_feed(type, data + off, (uint32_t)len);
		off += len;
	}
	fuzz_track_end();
	return 0;
}
