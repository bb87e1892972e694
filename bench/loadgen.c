/*
 * loadgen - many producer processes x threads writing Inspect-like records
 * whose every one is checkable in MLflow (tests/python/test_load.py).
 *
 *   loadgen TAG PROCS THREADS RECORDS [SAMPLE_EVERY]
 *
 * Each process is one Inspect run (run_id TAG-p<i>), each of its threads one
 * task (eval_id TAG-p<i>-t<j>).  A thread writes RECORDS records: every
 * SAMPLE_EVERY-th (default 1000) is a sample_end (three metric rows in
 * MLflow), all others are model_usage records, which ringflowd sums per task
 * into usage/load/model/{input,output,total}_tokens (task_end carries no
 * totals).  Token counts vary per record, so a lost or doubled record changes
 * a sum: 32 M records become a few hundred thousand MLflow rows whose values
 * account for every record.
 *
 * Lifecycle records (run/task start and end) are retried until written (the
 * spool may be full for a while); data records are written once, and a
 * failure (ring full and the spill failed: -EIO) is counted, not retried.
 * Output: one JSON object per task on stdout with what was written
 * successfully ("ok"), what failed ("failed") and the sums of what was
 * written, one {"proc":..,"lifecycle_retries":..} per process (failed attempts
 * of lifecycle records, each counted by the ring like any failed record), then
 * a summary line {"records":..,"seconds":..}.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ringflow.h"

static const char *tag;
static long n_threads, n_records, sample_every = 1000;
static rf_producer *prod;
static int proc_ix;
static _Atomic uint64_t lifecycle_retries; /* failed attempts of MUST() records */

struct task {
	pthread_t th;
	int ix;
	char run_id[96], eval_id[128];
	uint64_t usage_ok, samples_ok, failed;
	double in_sum, out_sum, tot_sum;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A lifecycle record: retried for up to 120 s (a full spool may recover). */
#define MUST(type, body)                                                                   \
	do {                                                                               \
		for (int try_ = 0;; try_++) {                                              \
			rf_rec r;                                                          \
			if (rf_rec_begin(prod, &r, type, 0) == 0) {                        \
				body;                                                      \
				if (rf_rec_end(&r) == 0)                                   \
					break;                                             \
			}                                                                  \
			lifecycle_retries++;                                               \
			if (try_ == 12000) {                                               \
				fprintf(stderr, "loadgen: giving up on a %s record: %s\n", \
					rf_event_name(type), rf_errmsg());                 \
				exit(1);                                                   \
			}                                                                  \
			usleep(10000);                                                     \
		}                                                                          \
	} while (0)

static void ids(rf_rec *r, const struct task *t)
{
	rf_rec_str(r, "run_id", t->run_id);
	rf_rec_str(r, "eval_id", t->eval_id);
	rf_rec_str(r, "task", "load");
}

static void *task_main(void *arg)
{
	struct task *t = arg;
	double t0 = now();
	MUST(RF_EV_TASK_START, {
		ids(&r, t);
		rf_rec_str(&r, "model", "load/model");
		rf_rec_map_begin(&r, "dataset");
		rf_rec_str(&r, "name", "load");
		rf_rec_int(&r, "samples", n_records / sample_every);
		rf_rec_map_end(&r);
		rf_rec_double(&r, "created", t0);
	});
	uint64_t samples = 0;
	for (long i = 1; i <= n_records; i++) {
		rf_rec r;
		int rc;
		if (i % sample_every == 0) {
			double done = t0 + (double)i * 1e-6;
			if ((rc = rf_rec_begin(prod, &r, RF_EV_SAMPLE_END, 0)) == 0) {
				ids(&r, t);
				char uuid[160];
				snprintf(uuid, sizeof uuid, "%s-s%" PRIu64, t->eval_id, samples);
				rf_rec_str(&r, "sample_uuid", uuid);
				rf_rec_int(&r, "sample_id", (int64_t)samples + 1);
				rf_rec_int(&r, "epoch", 1);
				rf_rec_str(&r, "status", "success");
				rf_rec_double(&r, "started_at", done - 0.5);
				rf_rec_double(&r, "completed_at", done);
				rf_rec_double(&r, "total_time", 0.5);
				rf_rec_double(&r, "working_time", 0.25);
				rf_rec_map_begin(&r, "scores");
				rf_rec_map_begin(&r, "match");
				rf_rec_str(&r, "value", "C");
				rf_rec_map_end(&r);
				rf_rec_map_end(&r);
				rc = rf_rec_end(&r);
			}
			samples++;
			if (rc == 0)
				t->samples_ok++;
			else
				t->failed++;
			continue;
		}
		int in = (int)(i % 997) + 1, out = (int)(i % 89) + 1;
		if ((rc = rf_rec_begin(prod, &r, RF_EV_MODEL_USAGE, 0)) == 0) {
			ids(&r, t);
			rf_rec_str(&r, "model", "load/model");
			rf_rec_int(&r, "input_tokens", in);
			rf_rec_int(&r, "output_tokens", out);
			rf_rec_int(&r, "total_tokens", in + out);
			rf_rec_double(&r, "call_duration", 0.01);
			rf_rec_int(&r, "retries", 0);
			rf_rec_double(&r, "time", t0);
			rc = rf_rec_end(&r);
		}
		if (rc == 0) {
			t->usage_ok++;
			t->in_sum += in;
			t->out_sum += out;
			t->tot_sum += in + out;
		} else {
			t->failed++;
		}
	}
	MUST(RF_EV_TASK_END, {
		ids(&r, t);
		rf_rec_str(&r, "status", "success");
		rf_rec_int(&r, "total_samples", (int64_t)samples);
		rf_rec_int(&r, "completed_samples", (int64_t)t->samples_ok);
		rf_rec_double(&r, "started_at", t0);
		rf_rec_double(&r, "completed_at", now());
		rf_rec_double(&r, "time", now());
	});
	return NULL;
}

static int child(void)
{
	if (rf_producer_open(&prod, NULL)) {
		fprintf(stderr, "loadgen: %s\n", rf_errmsg());
		return 1;
	}
	struct task *ts = calloc((size_t)n_threads, sizeof *ts);
	char run_id[96];
	snprintf(run_id, sizeof run_id, "%s-p%d", tag, proc_ix);
	MUST(RF_EV_RUN_START, {
		rf_rec_str(&r, "run_id", run_id);
		rf_rec_array_begin(&r, "task_names");
		rf_rec_str(&r, NULL, "load");
		rf_rec_array_end(&r);
		rf_rec_double(&r, "time", now());
	});
	for (long j = 0; j < n_threads; j++) {
		ts[j].ix = (int)j;
		snprintf(ts[j].run_id, sizeof ts[j].run_id, "%s", run_id);
		snprintf(ts[j].eval_id, sizeof ts[j].eval_id, "%s-t%ld", run_id, j);
		pthread_create(&ts[j].th, NULL, task_main, &ts[j]);
	}
	for (long j = 0; j < n_threads; j++)
		pthread_join(ts[j].th, NULL);
	MUST(RF_EV_RUN_END, {
		rf_rec_str(&r, "run_id", run_id);
		rf_rec_nil(&r, "exception");
		rf_rec_double(&r, "time", now());
	});
	for (long j = 0; j < n_threads; j++) {
		struct task *t = &ts[j];
		printf("{\"run_id\":\"%s\",\"eval_id\":\"%s\",\"usage_ok\":%" PRIu64
		       ",\"samples_ok\":%" PRIu64 ",\"failed\":%" PRIu64
		       ",\"input_tokens\":%.0f,\"output_tokens\":%.0f,\"total_tokens\":%.0f}\n",
		       t->run_id, t->eval_id, t->usage_ok, t->samples_ok, t->failed, t->in_sum,
		       t->out_sum, t->tot_sum);
	}
	printf("{\"proc\":%d,\"lifecycle_retries\":%" PRIu64 "}\n", proc_ix,
	       (uint64_t)lifecycle_retries);
	fflush(stdout);
	rf_producer_close(prod);
	free(ts);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: loadgen TAG PROCS THREADS RECORDS [SAMPLE_EVERY]\n");
		return 2;
	}
	tag = argv[1];
	long procs = atol(argv[2]);
	n_threads = atol(argv[3]);
	n_records = atol(argv[4]);
	if (argc > 5)
		sample_every = atol(argv[5]);
	if (procs < 1 || n_threads < 1 || n_records < 1 || sample_every < 2)
		return 2;
	double t0 = now();
	fflush(stdout);
	for (long i = 0; i < procs; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			proc_ix = (int)i;
			_exit(child());
		}
	}
	int bad = 0, st;
	while (wait(&st) > 0)
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			bad++;
	printf("{\"records\":%ld,\"seconds\":%.3f,\"failed_processes\":%d}\n",
	       procs * n_threads * n_records, now() - t0, bad);
	return bad ? 1 : 0;
}
