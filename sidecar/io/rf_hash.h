/*
 * rf_hash.h - the one string hash of the sidecar's tables and names:
 * 64-bit FNV-1a (public domain algorithm; three lines, no cryptographic
 * need: keys come from this host's producers and only spread buckets or
 * tell file names apart).  Never 0, so 0 can mean "empty".
 */
#ifndef RF_HASH_H
#define RF_HASH_H

#include <stdint.h>

static inline uint64_t rf_hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h ? h : 1;
}

#endif
