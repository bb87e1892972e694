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
#include <stddef.h>

typedef void (*rf_evallog_fn)(json_t *header, json_t *sample, void *arg);

/* The most of a log file read (a bigger one is refused, counted). */
#define RF_EVALLOG_MAX (512u << 20)

/* Reads the log at path (named by a record: untrusted) into *data (free it),
 * once, without ever blocking: not through a symlink in the last component,
 * only a regular file, at most RF_EVALLOG_MAX bytes.  Everything done with
 * the log (secret check, parse, the raw upload) uses these bytes, so the
 * file cannot be swapped in between.  Returns 0, or -errno with the reason in rf_err_msg(). */
int rf_evallog_load(const char *path, char **data, size_t *len);

/* Over bytes rf_evallog_load() read from path (whose name says .json or
 * .eval): calls fn for the header (the log without samples; sample == NULL)
 * and for each sample object.  Returns 0, or -errno with the reason in rf_err_msg(). */
int rf_evallog_parse(const char *path, const char *data, size_t len, rf_evallog_fn fn,
		     void *arg, bool *has_secret);

#endif
