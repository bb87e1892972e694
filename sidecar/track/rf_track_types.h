/*
 * rf_track_types.h - the tracker's counters and its end-hold callback (the
 * API is rf_track.h): its own header so rf_runs, under rf_track, need not
 * include the top one.
 */
#ifndef RF_TRACK_TYPES_H
#define RF_TRACK_TYPES_H

#include <stdbool.h>
#include <stdint.h>

struct rf_track_stats {
	uint64_t records, ignored;        /* folded / not for tracking */
	uint64_t invalid;                 /* unusable: an id missing or not a string */
	uint64_t bad_fields;              /* fields of the wrong type, ignored */
	uint64_t runs_created, runs_reused, runs_ended;
	uint64_t metrics, params, tags;   /* entities sent (2xx) */
	uint64_t batches, rejected;       /* log-batch requests; entities the server refused */
	uint64_t artifacts, artifacts_failed;
	uint64_t runs_failed;             /* runs MLflow refused to create (their data: rejected) */
	uint64_t keys_capped;             /* metrics dropped: their run has RF_RUN_KEYS_MAX names */
	uint64_t ends_held, end_hold_expired; /* run ends that waited for traces; gave up waiting */
	uint64_t pending;                 /* entities not yet sent */
	uint64_t artifact_jobs;           /* tasks whose artifacts are being built (rf_artq.h) */
};

/* The trace uploader holds a run's final status while traces linked to it
 * (run key "run:<run_id>" / "task:<eval_id>") are still on their way, so a
 * run shown FINISHED has everything in MLflow; at most RF_TRACK_END_HOLD_MS
 * (the run's end time is the Inspect one either way). */
#define RF_TRACK_END_HOLD_MS 300000
typedef bool (*rf_track_busy_fn)(void *arg, const char *run_key);

#endif
