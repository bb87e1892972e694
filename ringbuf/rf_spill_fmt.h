/*
 * rf_spill_fmt.h - private: the spill file format, shared by the producer
 * side (rf_spill.c) and the consumer side (rf_spill_ingest.c).
 *
 * File: 32-byte header, then records of
 *   u32 len | i32 type | u32 crc32(type, payload) | u32 0 | payload[len]
 */
#ifndef RF_SPILL_FMT_H
#define RF_SPILL_FMT_H

#include <stdint.h>
#include <zlib.h>

#include "rf_ring_int.h"

#define SPILL_MAGIC "RFSPILL1"
#define SPILL_VERSION 1u

struct spill_file_hdr {
	char magic[8];
	uint32_t version;
	uint32_t hdr_bytes;
	uint32_t pid;
	uint32_t _pad;
	uint64_t created_ns;
};

struct spill_rec_hdr {
	uint32_t len;
	int32_t type;
	uint32_t crc;
	uint32_t _zero;
};

struct rf_spill_mark {
	char name[96];
	uint64_t records;
	uint64_t bytes;
};

_Static_assert(sizeof(struct spill_file_hdr) == 32, "spill header");
_Static_assert(sizeof(struct rf_spill_mark) == 112, "marker");

static inline uint32_t rf_spill_crc(int32_t type, const void *p, uint32_t len)
{
	uLong c = crc32(0L, (const Bytef *)&type, sizeof type);
	return (uint32_t)crc32(c, (const Bytef *)p, len);
}

static inline const char *rf_spill_ring_base(rf_ring *r)
{
	return r->name + 1; /* names are "/base" */
}

#endif /* RF_SPILL_FMT_H */
