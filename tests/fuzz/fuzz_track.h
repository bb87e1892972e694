/*
 * fuzz_track.h - a real rf_track (mapping, runs, batching, artifacts) on the
 * fuzz_http stand-in, for the fuzz targets that feed it records.
 */
#ifndef FUZZ_TRACK_H
#define FUZZ_TRACK_H

#include <stdint.h>

/* A fresh tracker for one fuzz input. */
void fuzz_track_begin(void);
/* What ringflowd's feed() does with one record: decode (untrusted), fold
 * in; also renders it as ringflow-dump does.  Returns 0 or -EBADMSG. */
int fuzz_track_feed(int type, const void *data, uint32_t len);
/* Upload everything against a well-behaved server (canned answers; every
 * request body must be valid JSON), then free the tracker. */
void fuzz_track_end(void);

#endif
