/*
 * rf_zone.h - per-thread msgpack-c zones, reused: the object tree of one
 * unpacked value lives in a zone that is emptied (its chunk kept: no malloc
 * once warm) for the next, and freed when the thread exits.  One zone per
 * use, so a decoded record and a value re-encoded meanwhile never share one.
 */
#ifndef RF_ZONE_H
#define RF_ZONE_H

#include <msgpack.h>

enum rf_zone_use {
	RF_ZONE_ENCODE, /* a msgpack value re-encoded through the record builder */
	RF_ZONE_DECODE, /* a ring record read by the consumer (rf_decode) */
	RF_ZONE_USES
};

/* This thread's zone for `use`, emptied; created with a first chunk of
 * `chunk` bytes.  NULL on ENOMEM. */
msgpack_zone *rf_zone_get(enum rf_zone_use use, size_t chunk);

#endif
