/*
 * evallog.c - fuzz target: Inspect's log as ringflowd reads it at a task's
 * end (rf_evallog_parse over the log's copy).
 *
 * Input: one byte of options, then the log's bytes.  Option bit 0 reads
 * them as a .json log (the object's frame stepped over by hand, each key
 * and value parsed by jansson), else as an .eval zip (libarchive).  On
 * success the header comes exactly once, as an object, after the samples
 * of a .json log.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "rf_blob.h"
#include "rf_evallog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	bool json;
	int headers, samples;
};

static int on_log(json_t *header, json_t *sample, void *arg)
{
	struct seen *s = arg;
	if (!header == !sample)
		abort(); /* one of the two, never both */
	if (header && !json_is_object(header))
		abort();
	if (s->json && (s->headers || (header && json_object_get(header, "samples"))))
		abort(); /* .json: the header last, without its samples */
	s->headers += header != NULL;
	s->samples += sample != NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	struct rf_blob *b = rf_blob_new(NULL);
	if (!b)
		return 0;
	FILE *w = rf_blob_writer(b);
	if (w && size > 1)
		fwrite(data + 1, 1, size - 1, w);
	if (rf_blob_seal(b) == 0) {
		struct seen s = {.json = data[0] & 1};
		bool secret = false;
		int rc = rf_evallog_parse(data[0] & 1 ? "log.json" : "log.eval", b, on_log, &s,
					  &secret);
		if (rc == 0 && s.json && s.headers != 1)
			abort(); /* a .json log read whole gives its header once */
	}
	rf_blob_free(b);
	return 0;
}
