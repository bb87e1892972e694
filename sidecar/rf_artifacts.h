/*
 * rf_artifacts.h - the task run's artifacts, built from the records.
 *
 * inspect/{tasks,samples,sample_scores,events,model_usage}.json in MLflow's
 * table format ({"columns": [...], "data": [[...], ...]}, listed in the run's
 * mlflow.loggedArtifacts tag as log_table does), sample_results/<eval_id>.json,
 * and the raw Inspect log file (inspect/logs/<name>) when it is on a local
 * disk.  Rows are collected per task as records arrive and uploaded at task
 * end (PUT through the tracking server's artifact proxy, retried).
 *
 * Not built: inspect/messages.json and eval_logs/<eval_id>.json need the
 * conversation and the log header, which are only in Inspect's .eval file,
 * a zip with zstd members that Debian 12's libzip (1.7.3) cannot read; the raw
 * log file is uploaded instead.
 */
#ifndef RF_ARTIFACTS_H
#define RF_ARTIFACTS_H

#include <jansson.h>
#include <msgpack.h>

struct rf_art; /* per task */

struct rf_art *rf_art_new(void);
void rf_art_free(struct rf_art *a);
void rf_art_task_start(struct rf_art *a, const msgpack_object *m);
void rf_art_sample_init(struct rf_art *a, const msgpack_object *m);
void rf_art_sample_end(struct rf_art *a, const msgpack_object *m);
void rf_art_event(struct rf_art *a, int type, const msgpack_object *m);

/* The files to upload: each is {"path": relative path, "body": bytes as a
 * JSON string, "type": "table"|"json"|"file"}; "file" bodies are local paths. */
json_t *rf_art_files(struct rf_art *a, const char *eval_id, const char *log_location);

#endif
