/*
 * rf_experiments.h - an MLflow experiment's id by its name: the one
 * get-or-create that tracking (rf_runs) and tracing (rf_traces) share.
 *
 * experiments/get-by-name; a deleted experiment is restored (the user asked
 * for data there: it must be seen); one that does not exist is created (and
 * looked up again when someone else created it meanwhile).  Answers are
 * untrusted: one without a usable id is a failure like an HTTP error.
 * MLflow's own verdict (a 4xx with its JSON error_code, e.g. an invalid
 * name) refuses the experiment for good; anything else (no answer, 5xx,
 * 429, an auth failure, a proxy's page) is retried after RF_EXP_RETRY_MS.
 */
#ifndef RF_EXPERIMENTS_H
#define RF_EXPERIMENTS_H

#include <stdint.h>

#include "rf_mlflow.h"

enum rf_exp_state {
	RF_EXP_UNKNOWN,  /* not asked yet, or to ask again at retry_at */
	RF_EXP_ASKING,   /* a request in flight */
	RF_EXP_READY,    /* id known, experiment active */
	RF_EXP_REFUSED,  /* MLflow refused it: its data cannot be logged */
};

#define RF_EXP_RETRY_MS 2000

/* Told each failure ("experiment <name>: HTTP <status>: <message>"). */
typedef void (*rf_exp_err_fn)(void *arg, const char *msg);

struct rf_exp {
	rf_mlflow *m;
	char name[257], id[64];
	enum rf_exp_state state;
	uint64_t retry_at;        /* monotonic ms */
	rf_exp_err_fn err;
	void *err_arg;
};

/* The struct must stay where it is while a request is in flight (the
 * owner cancels its requests, rf_http_cancel_all, before freeing it). */
void rf_exp_init(struct rf_exp *e, rf_mlflow *m, const char *name, rf_exp_err_fn err, void *arg);

/* The id: NULL while not known (a request is started when none is in
 * flight and the retry time has come), "" when refused for good. */
const char *rf_exp_resolve(struct rf_exp *e);

/* The id if known, without asking (NULL otherwise). */
const char *rf_exp_id(const struct rf_exp *e);

#endif
