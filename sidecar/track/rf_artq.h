/*
 * rf_artq.h - a task's artifacts built off the daemon's loop.
 *
 * At a task's end rf_art_files() reads Inspect's whole log and writes the
 * messages and events tables: seconds for a large log (3 s for a 60 MB
 * log of 10,000 samples).  On the loop that would stop every request
 * meanwhile (the traces, other runs' metrics, status), so it runs here, on
 * one worker thread per queue, one job at a time, in the order pushed.
 *
 * Ownership is the whole protocol: a job owns its rf_art from push to take
 * and the worker is the only one to touch it; every field the loop and the
 * worker share is read and written under the queue's mutex.  The one
 * exception is the flag that cuts the job being built short at shutdown:
 * an atomic, read between the log's samples, carrying no data.  What the
 * worker calls reads no daemon state but the secret values (rf_redact.h),
 * fixed before the first job.
 */
#ifndef RF_ARTQ_H
#define RF_ARTQ_H

#include <stddef.h>

struct rf_art;
struct rf_art_file;
struct rf_artq;
struct rf_artjob;

/* A queue; its worker starts with the first job.  NULL: out of memory. */
struct rf_artq *rf_artq_new(void);

/* Stops the worker, cutting short the job it is on (its log is read no
 * further than the sample at hand; its copy of the log, up to 512 MiB, is
 * made whole first), joins it, then frees every job not taken.  Returns how
 * many that was: their files are not uploaded, and their tasks' records
 * are still in the daemon's journal, so the next start builds them again.
 * *cut_short (may be NULL): how many of them stopped reading their log. */
size_t rf_artq_free(struct rf_artq *q, size_t *cut_short);

/* Hands a over to be built as rf_art_files(a, eval_id, location) on the
 * worker.  Returns the job, or NULL (q NULL, out of memory, no thread):
 * then a is still the caller's, to build on its own thread. */
struct rf_artjob *rf_artq_push(struct rf_artq *q, struct rf_art *a, const char *eval_id,
			       const char *location);

/* 1: the job is built; *files is the caller's (rf_art_files_free) and the
 * job is gone.  0: still queued or building. */
int rf_artq_take(struct rf_artq *q, struct rf_artjob *j, struct rf_art_file **files);

/* Jobs pushed and not yet taken. */
size_t rf_artq_jobs(struct rf_artq *q);

#endif
