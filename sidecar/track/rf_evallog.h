/*
 * rf_evallog.h - read what the records do not carry from Inspect's own log:
 * the log header (eval_logs/<eval_id>.json) and the conversation
 * (inspect/messages.json).  .eval logs are zips with zstd members, read with
 * libarchive; .json logs with jansson; both from a copy in an rf_blob.
 */
#ifndef RF_EVALLOG_H
#define RF_EVALLOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Returns 0 to go on; anything else stops the read (rf_evallog_parse then
 * returns -ECANCELED). */
typedef int (*rf_evallog_fn)(json_t *header, json_t *sample, void *arg);

/* The most of a log file read (a bigger one is refused, counted). */
#define RF_EVALLOG_MAX (512u << 20)

struct rf_blob;

/* Copies the log at path (named by a record: untrusted) into b (an
 * rf_blob_new() not yet sealed; sealed on success), once, a piece at a
 * time, without ever blocking: not through a symlink in the last
 * component, only a regular file, at most RF_EVALLOG_MAX bytes.
 * Everything done with the log (secret check, parse, the raw upload) uses
 * this copy, so the file cannot be swapped in between.  *has_secret: its
 * bytes hold a known secret value.  Returns 0, or -errno with the reason
 * in rf_err_msg(). */
int rf_evallog_copy(const char *path, struct rf_blob *b, bool *has_secret);

/* Over the copy of the log at path (whose name says .json or .eval): calls
 * fn for the header (the log without samples; sample == NULL; a .json
 * log's comes last) and for each sample, one at a time: memory is the
 * largest sample, never the log.  *has_secret is set (never cleared) when a
 * decompressed member holds a secret value.  Returns 0, -ECANCELED when fn
 * asked to stop, or -errno with the reason in rf_err_msg(). */
int rf_evallog_parse(const char *path, const struct rf_blob *b, rf_evallog_fn fn, void *arg,
		     bool *has_secret);

#endif
