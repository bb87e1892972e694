/*
 * rf_artifacts.h - the task run's artifacts, built from the records.
 *
 * inspect/{tasks,samples,sample_scores,model_usage}.json in MLflow's
 * table format ({"columns": [...], "data": [[...], ...]}, listed in the run's
 * mlflow.loggedArtifacts tag as log_table does) and sample_results/<eval_id>.json
 * from the records (collected per task as they arrive); inspect/messages.json,
 * inspect/events.json (one row per event of every sample, all event types),
 * eval_logs/<eval_id>.json (the log without samples) and the raw log file
 * (inspect/logs/<name>) from Inspect's own log when it is on a local disk
 * (rf_evallog.c, one sample at a time; the two tables are written row by
 * row as JSON text, never held as JSON trees).  Uploaded at task end through
 * the tracking server's artifact proxy, retried.
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

/* The files to upload: each is {"path": relative path, "body": bytes as a
 * JSON string, "type": "table"|"json"|"file"|"error"}; "file" bodies are
 * local paths; an "error" entry reports why the log could not be read. */
json_t *rf_art_files(struct rf_art *a, const char *eval_id, const char *log_location);

#endif
