/*
 * rf_evallog.h - read what the records do not carry from Inspect's own log:
 * the log header (eval_logs/<eval_id>.json) and the conversation
 * (inspect/messages.json).  .eval logs are zips with zstd members, read with
 * libarchive; .json logs with jansson.
 */
#ifndef RF_EVALLOG_H
#define RF_EVALLOG_H

#include <jansson.h>
#include <stdbool.h>

/* Calls fn for the header (the log without samples; sample == NULL) and for
 * each sample object.  Returns 0, or -errno with *err set. */
typedef void (*rf_evallog_fn)(json_t *header, json_t *sample, void *arg);
int rf_evallog_read(const char *path, rf_evallog_fn fn, void *arg, char *err, size_t errlen,
		    bool *has_secret);

#endif
