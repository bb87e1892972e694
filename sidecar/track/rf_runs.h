/*
 * rf_runs.h - one destination's MLflow runs: what is pending for each and
 * the requests that create them, log their data, upload their artifacts and
 * end them (rf_runs.c).  rf_track folds records into these runs and owns
 * them (rf_track_new/free/pump); nothing here calls back into rf_track.
 */
#ifndef RF_RUNS_H
#define RF_RUNS_H

#include <jansson.h>
#include <msgpack.h>

#include "rf_artifacts.h"
#include "rf_experiments.h"
#include "rf_idmap.h"
#include "rf_metrics.h"
#include "rf_track_types.h"

/* Usage summed from a task's model_usage records, per model: the task's
 * usage metrics when its task_end carries no totals (a C producer). */
struct usage_sum {
	struct usage_sum *next;
	char model[256];
	double v[7];                 /* RF_USAGE_FIELDS order, total_cost last */
	bool has[7];
};

struct task_agg {
	int64_t samples_done;        /* completion order: the step of sample metrics */
	double *total_times;
	size_t n_tt, cap_tt;
	double working_sum;
	size_t n_wt;
	uint64_t *seen;              /* hashes of counted event uuids */
	size_t seen_n, seen_cap;
	int64_t model_calls, tool_calls;
	struct rf_art *art;          /* artifact rows, when artifacts are on */
	struct usage_sum *usage;     /* from model_usage records */
};

enum rf_run_state { RUN_NEW, RUN_CREATING, RUN_READY, RUN_FAILED };
enum rf_run_end_state { RUN_END_NOT_SENT, RUN_END_SENDING, RUN_END_DONE };

struct mrun {
	struct mrun *next;
	char key[160];               /* "run:<inspect run_id>" / "task:<eval_id>" */
	char id[64];                 /* MLflow run id, "" until known */
	char artifact_uri[512];
	char name[256];
	enum rf_run_state state;
	int attempts;
	bool lookup;                 /* search by ringflow.key before creating again */
	uint64_t retry_at;           /* monotonic ms: creation retry after an ambiguous failure */
	struct mrun *parent;
	int64_t start_ms;
	json_t *ctags;               /* tags sent with runs/create */
	struct rf_runs *t;
	struct rf_mqueue mq;         /* pending metric rows, in order */
	json_t *params, *tags;       /* pending, by key */
	bool inflight;               /* one log-batch in flight per run (keeps order) */
	uint64_t sent_ms;            /* monotonic ms its last log-batch went */
	bool resend;                 /* a batch was put back: send without waiting for metrics_ms */
	const char *end_status;      /* set when the Inspect side ended */
	int64_t end_ms;
	enum rf_run_end_state end_state;
	uint64_t hold_since;         /* monotonic ms: the end waits for traces since */
	struct rf_artjob *art_job;   /* its artifacts, being built (rf_artq.h) */
	struct rf_art_file *uploads; /* artifacts waiting to be PUT, in order */
	int uploads_inflight;
	struct task_agg *agg;
	struct rf_keys *keys;        /* its metric names (at most RF_RUN_KEYS_MAX) */
	bool keys_said;              /* the cap was reported */
};

/* Distinct metric names per run: far above what an eval logs (tens), far
 * below what exhausts memory (~300 bytes each). */
#define RF_RUN_KEYS_MAX 2000

struct rf_runs {
	rf_mlflow *m;
	int64_t metrics_ms;          /* a running run's metrics are sent at least this often */
	int max_batch;               /* entities per log-batch */
	struct rf_exp exp;           /* the destination's experiment */
	struct mrun *list;           /* in the order first seen */
	struct rf_idmap idmap;
	struct rf_artq *artq;        /* artifacts built off the loop (NULL: on it) */
	rf_track_busy_fn end_hold;   /* traces still on their way for a run key */
	void *end_hold_arg;
	struct rf_err_sink err;      /* handled failures go here (rf_err.h) */
	struct rf_track_stats st;    /* kept here, read through rf_track_stats() */
};

/* 0, or -errno with rf_err set (the id map could not be read: the runs
 * start without it, so that error is also reported to err). */
int rf_runs_init(struct rf_runs *t, rf_mlflow *m, const struct rf_err_sink *err,
		 const char *experiment, const char *idmap_path,
		 int64_t metrics_ms, int max_batch);
void rf_runs_free(struct rf_runs *t);
/* Requests for what is ready: the experiment, run creation, log batches,
 * artifact uploads, final statuses; done families are forgotten. */
void rf_runs_pump(struct rf_runs *t, bool flush_now);
bool rf_runs_idle(struct rf_runs *t);
bool rf_runs_drained(struct rf_runs *t);
/* st.pending now: the entities every run waits to send. */
void rf_runs_count_pending(struct rf_runs *t);

/* The run of "run:<run_id>" / "task:<eval_id>"; created (as known from the
 * id map, or new) with `create`; NULL when absent or out of memory. */
struct mrun *rf_runs_get(struct rf_runs *t, const char *key, bool create);
void rf_run_tag(struct mrun *r, const char *key, const char *value, bool at_create);
void rf_run_param(struct mrun *r, const char *key, const char *value);
void rf_run_metric(struct mrun *r, const char *key, double value, int64_t ts_ms, int64_t step);
void rf_run_end(struct mrun *r, const char *status, int64_t end_ms);
/* Queue artifact files (rf_art_files()) for upload before the run ends. */
void rf_run_artifacts(struct mrun *r, struct rf_art_file *files); /* taken */
/* Builds a's files (rf_art_files) off the loop (rf_artq.h) or, failing
 * that, here; they join the run's uploads, and its end waits for them.
 * a is taken. */
void rf_run_build_artifacts(struct mrun *r, struct rf_art *a, const char *eval_id,
			    const char *location);

#endif /* RF_RUNS_H */
