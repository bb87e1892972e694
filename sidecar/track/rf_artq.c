/*
 * rf_artq.c - see rf_artq.h.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "rf_artifacts.h"
#include "rf_artq.h"

enum job_state { JOB_QUEUED, JOB_BUILDING, JOB_BUILT, JOB_CUT };

struct rf_artjob {
	struct rf_artjob *next;    /* q->jobs, in push order */
	enum job_state state;      /* under q->mu */
	struct rf_art *a;          /* the worker's while queued or building; NULL once built or cut */
	struct rf_art_file *files; /* set under q->mu with state = JOB_BUILT */
	char eval_id[128];
	char location[1024];
};

struct rf_artq {
	pthread_mutex_t mu;
	pthread_cond_t cv;         /* a job pushed, or stop */
	struct rf_artjob *jobs;    /* not yet taken */
	size_t n;
	bool started;
	/* Set once, under mu (the worker waits on it with cv), and read by
	 * the job being built between its log's samples: it stops reading. */
	atomic_bool stop;
	size_t cut_short;          /* jobs cut short while their log was read; under mu */
	pthread_t worker;
};

struct rf_artq *rf_artq_new(void)
{
	struct rf_artq *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	if (pthread_mutex_init(&q->mu, NULL)) {
		free(q);
		return NULL;
	}
	if (pthread_cond_init(&q->cv, NULL)) {
		pthread_mutex_destroy(&q->mu);
		free(q);
		return NULL;
	}
	return q;
}

static void job_free(struct rf_artjob *j)
{
	rf_art_free(j->a);
	rf_art_files_free(j->files);
	free(j);
}

size_t rf_artq_free(struct rf_artq *q, size_t *cut_short)
{
	if (cut_short)
		*cut_short = 0;
	if (!q)
		return 0;
	pthread_mutex_lock(&q->mu);
	/* Relaxed: a request, no data comes with it; the mutex orders it for
	 * the worker's wait, and the join below orders everything the worker
	 * did before this thread reads the jobs. */
	atomic_store_explicit(&q->stop, true, memory_order_relaxed);
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	if (q->started)
		pthread_join(q->worker, NULL); /* after it, the jobs are this thread's alone */
	size_t left = 0;
	while (q->jobs) {
		struct rf_artjob *j = q->jobs;
		q->jobs = j->next;
		left++;
		job_free(j);
	}
	if (cut_short)
		*cut_short = q->cut_short;
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
	return left;
}

static struct rf_artjob *next_queued(struct rf_artq *q)
{
	for (struct rf_artjob *j = q->jobs; j; j = j->next)
		if (j->state == JOB_QUEUED)
			return j;
	return NULL;
}

static void *work(void *arg)
{
	struct rf_artq *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct rf_artjob *j = NULL;
		/* Relaxed: read under mu, which orders it with the store. */
		while (!atomic_load_explicit(&q->stop, memory_order_relaxed) &&
		       !(j = next_queued(q)))
			pthread_cond_wait(&q->cv, &q->mu);
		if (atomic_load_explicit(&q->stop, memory_order_relaxed))
			break;
		/* Building: j->a and the files are this thread's alone until
		 * JOB_BUILT is set under the mutex (take reads it under the same). */
		j->state = JOB_BUILDING;
		struct rf_art *a = j->a;
		pthread_mutex_unlock(&q->mu);
		struct rf_art_file *files = rf_art_files(a, j->eval_id, j->location, &q->stop);
		bool stopped = rf_art_stopped(a);
		rf_art_free(a);
		pthread_mutex_lock(&q->mu);
		j->a = NULL;
		/* Relaxed: under mu again, as above. */
		if (atomic_load_explicit(&q->stop, memory_order_relaxed)) {
			/* Cut short, or built as the queue is freed: not taken,
			 * so not uploaded; its records stay in the journal. */
			rf_art_files_free(files);
			q->cut_short += stopped;
			j->state = JOB_CUT;
			break;
		}
		j->files = files;
		j->state = JOB_BUILT;
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

struct rf_artjob *rf_artq_push(struct rf_artq *q, struct rf_art *a, const char *eval_id,
			       const char *location)
{
	if (!q)
		return NULL;
	struct rf_artjob *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->a = a;
	snprintf(j->eval_id, sizeof j->eval_id, "%s", eval_id ? eval_id : "");
	snprintf(j->location, sizeof j->location, "%s", location ? location : "");
	pthread_mutex_lock(&q->mu);
	if (!q->started) {
		/* Started here, by the loop's thread: it inherits its blocked
		 * signals, so SIGTERM and SIGINT stay for the loop's signalfd. */
		if (pthread_create(&q->worker, NULL, work, q)) {
			pthread_mutex_unlock(&q->mu);
			free(j);
			return NULL;
		}
		q->started = true;
	}
	struct rf_artjob **tail = &q->jobs;
	while (*tail)
		tail = &(*tail)->next;
	*tail = j;
	q->n++;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return j;
}

int rf_artq_take(struct rf_artq *q, struct rf_artjob *j, struct rf_art_file **files)
{
	pthread_mutex_lock(&q->mu);
	if (j->state != JOB_BUILT) {
		pthread_mutex_unlock(&q->mu);
		return 0;
	}
	struct rf_artjob **pp = &q->jobs;
	while (*pp != j)
		pp = &(*pp)->next;
	*pp = j->next;
	q->n--;
	pthread_mutex_unlock(&q->mu);
	*files = j->files;
	j->files = NULL;
	job_free(j);
	return 1;
}

size_t rf_artq_jobs(struct rf_artq *q)
{
	if (!q)
		return 0;
	pthread_mutex_lock(&q->mu);
	size_t n = q->n;
	pthread_mutex_unlock(&q->mu);
	return n;
}
