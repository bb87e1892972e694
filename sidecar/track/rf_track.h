/*
 * rf_track.h - Inspect records -> MLflow experiments, runs, params, metrics,
 * tags (names as inspect-mlflow; docs/DESIGN.md "The sidecar").
 *
 * rf_track_record() folds one decoded record into per-run state and pending
 * log-batch data; rf_track_pump() turns what is ready into requests: the
 * experiment, parent and child runs (in order), batches of up to 1000
 * entities per run with one in flight per run, and final run statuses once a
 * run's data is all sent.
 */
#ifndef RF_TRACK_H
#define RF_TRACK_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "rf_err.h"
#include "rf_experiments.h"
#include "rf_track_types.h"
#include "rf_mlflow.h"

typedef struct rf_track rf_track;

struct rf_track_opts {
	const char *experiment;  /* MLFLOW_EXPERIMENT_NAME, default "inspect_ai" */
	const char *state_dir;   /* where the Inspect->MLflow id map is kept */
	const char *idmap_id;    /* the destination's server in the id map's name (rf_dest.c) */
	int64_t metrics_ms;      /* a running run's metrics are sent at least this often */
	int max_batch;           /* entities per log-batch (<= 1000) */
	bool log_artifacts;      /* INSPECT_MLFLOW_LOG_ARTIFACTS (default true) */
	struct rf_err_sink err;  /* where each handled failure is reported (rf_err.h) */
};


int rf_track_new(rf_track **out, rf_mlflow *m, const struct rf_track_opts *o);
void rf_track_free(rf_track *t);
void rf_track_record(rf_track *t, int type, const msgpack_object *root);
void rf_track_pump(rf_track *t, bool flush_now);
/* Nothing waiting: every run created, every entity and status sent. */
bool rf_track_idle(rf_track *t);
/* Nothing taken so far waits to be sent (runs may still be open). */
bool rf_track_drained(rf_track *t);
void rf_track_stats(rf_track *t, struct rf_track_stats *st);
/* No run is open or waiting: everything seen so far is in MLflow. */
bool rf_track_empty(rf_track *t);

void rf_track_set_end_hold(rf_track *t, rf_track_busy_fn busy, void *arg);

/* For the trace uploader: the destination's experiment (one resolver for
 * tracking and tracing: rf_exp_resolve() asks for it if no run did yet);
 * the MLflow run id of "run:<run_id>" / "task:<eval_id>" (NULL while not
 * known; *failed when it never will be). */
struct rf_exp *rf_track_experiment(rf_track *t);
const char *rf_track_run_id(rf_track *t, const char *key, bool *failed);

#endif
