/*
 * rf_blob.h - a request body too big to keep in memory: written once, as a
 * stream, to an unnamed file in the spool directory (O_TMPFILE: no name any
 * other process could open, gone with the last descriptor), then read back
 * by libcurl for each attempt of its upload (rf_http_request_blob).  Where
 * no such file can be made (no directory given, a file system without
 * O_TMPFILE and no room for a named one), the body is kept in memory
 * instead: slower to weigh, never lost.
 *
 * One owner at a time: the writer, then whoever queues the upload, then
 * rf_http, which frees it with the request.
 */
#ifndef RF_BLOB_H
#define RF_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct rf_blob;

/* A new, empty blob, written through rf_blob_writer().  dir may be NULL
 * (memory).  NULL only when out of memory. */
struct rf_blob *rf_blob_new(const char *dir);
/* The stream to write the body to, until rf_blob_seal(). */
FILE *rf_blob_writer(struct rf_blob *b);
/* The body is complete: 0, or -errno when any write failed (a full disk),
 * with the reason in rf_err_msg(); the blob then holds nothing usable. */
int rf_blob_seal(struct rf_blob *b);
/* After rf_blob_seal(): its length; n bytes at off (short at the end,
 * -errno on a failed read); overwrite bytes already written (the same
 * length, e.g. a cell reserved as blanks). */
uint64_t rf_blob_len(const struct rf_blob *b);
ssize_t rf_blob_read(const struct rf_blob *b, uint64_t off, void *buf, size_t n);
int rf_blob_patch(struct rf_blob *b, uint64_t off, const void *data, size_t n);
/* In an unnamed file (false: in memory). */
bool rf_blob_in_file(const struct rf_blob *b);
void rf_blob_free(struct rf_blob *b);

#endif
