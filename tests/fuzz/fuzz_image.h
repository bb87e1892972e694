/*
 * fuzz_image.h - a fuzz input as a file image: byte 0 holds option bits for
 * the target, the rest is copied into a buffer of exactly its size (so
 * ASan sees any read past the end, as it would past a mapped file).
 */
#ifndef FUZZ_IMAGE_H
#define FUZZ_IMAGE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A record's checksum from its header (at rec) and its payload. */
typedef uint32_t (*fuzz_crc_fn)(const uint8_t *rec, uint32_t len);

/* Records of `hdr` header bytes (u32 payload length first, u32 crc at +8)
 * laid from `off`: each one's crc set to what `crc` computes, so the
 * fuzzer's edits reach the code past the checksum (input option bit 0). */
static inline void fuzz_fix_crcs(uint8_t *m, size_t size, size_t off, size_t hdr, fuzz_crc_fn crc)
{
	while (off + hdr <= size) {
		uint32_t len;
		memcpy(&len, m + off, 4);
		if (len > size - off - hdr)
			break;
		uint32_t c = crc(m + off, len);
		memcpy(m + off + 8, &c, 4);
		off += hdr + len;
	}
}

/* Records with checksums: laid from `first`, `hdr` header bytes each. */
struct fuzz_records {
	size_t first, hdr;
	fuzz_crc_fn crc;
};

/* m NULL for an empty input (or no memory); size is the image's; with
 * option bit 0 the records' checksums are made right first. */
struct fuzz_image {
	uint8_t *m;
	size_t size;
	uint8_t opt;
};

static inline struct fuzz_image fuzz_image(const uint8_t *data, size_t size,
					   const struct fuzz_records *recs)
{
	struct fuzz_image im = {NULL, 0, 0};
	if (size < 1)
		return im;
	im.opt = data[0];
	im.size = size - 1;
	im.m = malloc(im.size ? im.size : 1);
	if (!im.m)
		return im;
	memcpy(im.m, data + 1, im.size);
	if (im.opt & 1)
		fuzz_fix_crcs(im.m, im.size, recs->first, recs->hdr, recs->crc);
	return im;
}

#endif
