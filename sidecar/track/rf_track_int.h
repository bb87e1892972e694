/* rf_track_int.h - private state shared by rf_track.c (mapping) and
 * rf_runs.c (run lifecycle and uploads). */
#ifndef RF_TRACK_INT_H
#define RF_TRACK_INT_H

#include <jansson.h>

#include "rf_artifacts.h"
#include "rf_metrics.h"

#include "rf_track.h"

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

enum { RUN_NEW, RUN_CREATING, RUN_READY, RUN_FAILED };

struct mrun {
	struct mrun *next;
	char key[160];               /* "run:<inspect run_id>" / "task:<eval_id>" */
	char id[64];                 /* MLflow run id, "" until known */
	char artifact_uri[512];
	char name[256];
	int state;
	int attempts;
	bool lookup;                 /* search by ringflow.key before creating again */
	uint64_t retry_at;           /* monotonic ms: creation retry after an ambiguous failure */
	struct mrun *parent;
	int64_t start_ms;
	json_t *ctags;               /* tags sent with runs/create */
	struct rf_track *t;
	struct rf_mqueue mq;         /* pending metric rows, in order */
	json_t *params, *tags;       /* pending, by key */
	bool inflight;               /* one log-batch in flight per run (keeps order) */
	const char *end_status;      /* set when the Inspect side ended */
	int64_t end_ms;
	int end_state;               /* 0 not sent, 1 in flight, 2 done */
	uint64_t hold_since;         /* monotonic ms: the end waits for traces since */
	json_t *uploads;             /* artifacts waiting to be PUT */
	int uploads_inflight;
	struct task_agg *agg;
	struct rf_keys *keys;        /* its metric names (at most RF_RUN_KEYS_MAX) */
	bool keys_said;              /* the cap was reported */
};

/* Distinct metric names per run: far above what an eval logs (tens), far
 * below what exhausts memory (~300 bytes each). */
#define RF_RUN_KEYS_MAX 2000

struct rf_track {
	rf_mlflow *m;
	struct rf_track_opts o;
	char experiment[257];
	char exp_id[64];
	int exp_state;               /* 0 none, 1 in flight, 2 ready, 3 failed */
	uint64_t exp_retry_at;
	struct mrun *runs;
	json_t *idmap;               /* key -> [run id, artifact uri] (persisted) */
	char idmap_path[600];
	uint64_t last_flush;
	rf_track_busy_fn end_hold;   /* traces still on their way for a run key */
	void *end_hold_arg;
	struct rf_track_stats st;
};

struct mrun *rf_track_run(rf_track *t, const char *key, bool create);
void rf_run_tag(struct mrun *r, const char *key, const char *value, bool at_create);
void rf_run_param(struct mrun *r, const char *key, const char *value);
void rf_run_metric(struct mrun *r, const char *key, double value, int64_t ts_ms, int64_t step);
void rf_run_end(struct mrun *r, const char *status, int64_t end_ms);
/* Queue artifact files (rf_art_files()) for upload before the run ends. */
void rf_run_artifacts(struct mrun *r, json_t *files);
bool rf_value_to_float(const msgpack_object *v, double *out);
/* The id map (rf_idmap.c): load at start; add a created run (-EIO when the
 * line could not be written: the run is still known in memory). */
void rf_idmap_load(rf_track *t);
int rf_idmap_add(rf_track *t, struct mrun *r);

#endif
