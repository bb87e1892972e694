/*
 * fuzz_track.h - a real rf_track (mapping, runs, batching, artifacts) and a
 * real rf_traces (Inspect and general traces, OTLP export) on the fuzz_http
 * stand-in, for the fuzz targets that feed them records.
 */
#ifndef FUZZ_TRACK_H
#define FUZZ_TRACK_H

#include <stdbool.h>
#include <stdint.h>

/* A fresh tracker and trace builder for one fuzz input; every Inspect run is
 * traced, one trace per run when run_mode, else one per sample. */
void fuzz_track_begin(bool run_mode);
/* What ringflowd's feed() does with one record: decode (untrusted), fold
 * into the runs and the traces; also renders it as ringflow-dump does.
 * Returns 0 or -EBADMSG. */
int fuzz_track_feed(int type, const void *data, uint32_t len);
/* Upload everything against a well-behaved server (canned answers; every
 * request body must be valid JSON; traces left open time out on the virtual
 * clock and are sent closed), then free both. */
void fuzz_track_end(void);

#endif
