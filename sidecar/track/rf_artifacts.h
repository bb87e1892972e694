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
 * (rf_evallog.c, one sample at a time).  Every table is written row by row
 * as JSON text into an unnamed file in the spool directory (rf_blob.h) as
 * its rows arrive, and the log is copied there once: the sidecar's memory
 * does not grow with the number of samples.  Uploaded at task end through
 * the tracking server's artifact proxy, from those files, retried.
 */
#ifndef RF_ARTIFACTS_H
#define RF_ARTIFACTS_H

#include <jansson.h>
#include <stdatomic.h>
#include <msgpack.h>

struct rf_art; /* per task */

/* dir: where the tables' files are made (the spool directory; NULL:
 * memory). */
struct rf_art *rf_art_new(const char *dir);
void rf_art_free(struct rf_art *a);
void rf_art_task_start(struct rf_art *a, const msgpack_object *m);
void rf_art_sample_init(struct rf_art *a, const msgpack_object *m);
void rf_art_sample_end(struct rf_art *a, const msgpack_object *m);

/* One file to upload, or ("error") one that cannot be, and why. */
struct rf_art_file {
	struct rf_art_file *next;
	char path[300];         /* relative to the run's artifact root */
	const char *type;       /* "table" | "json" | "bytes" | "error" */
	struct rf_blob *body;   /* sealed; NULL for an error */
	char err[512];
};

/* The task's files, in upload order (free with rf_art_files_free); the
 * tables' rows are handed over, so call it once, at the task's end.  stop
 * (NULL: never) is read between the log's samples: once set, the log is
 * read no further and the files are not the task's (throw them away). */
struct rf_art_file *rf_art_files(struct rf_art *a, const char *eval_id, const char *log_location,
				 const atomic_bool *stop);
void rf_art_files_free(struct rf_art_file *f);
/* Did rf_art_files() stop reading the log because stop was set? */
bool rf_art_stopped(const struct rf_art *a);

#endif
