/*
 * fuzz_http.h - the fuzz targets' stand-in for rf_http: the fuzzer plays the
 * MLflow server.
 *
 * fuzz_http.c implements rf_http.h without a network: requests are queued
 * in order, and the harness answers them with bytes of its input (or drops
 * them, as a cancelled request).  Every JSON request body ringflowd builds
 * is checked to be valid JSON here (a fuzzed key or value that breaks the
 * body would make MLflow refuse the whole batch): abort() if not.
 */
#ifndef FUZZ_HTTP_H
#define FUZZ_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rf_http.h"

struct fuzz_req {
	char method[8];
	char url[1024];
};

/* Requests waiting for an answer. */
size_t fuzz_http_queued(rf_http *h);
/* Look at the oldest request (false if none). */
bool fuzz_http_peek(rf_http *h, struct fuzz_req *out);
/* Answer the oldest request: status 0 means no answer (err set). */
void fuzz_http_answer(rf_http *h, long status, const char *body, size_t len);

/* rf_loop_now_ms() is virtual in the fuzz targets: move it on. */
void fuzz_clock_advance(uint64_t ms);

#endif
