/*
 * rf_evallog.c - see rf_evallog.h.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_evallog.h"
#include "rf_redact.h"

#define ENTRY_MAX (512u << 20)

static int read_eval_zip(const char *path, rf_evallog_fn fn, void *arg, char *err, size_t errlen,
			 bool *has_secret)
{
	struct archive *a = archive_read_new();
	if (!a)
		return -ENOMEM;
	archive_read_support_format_zip(a);
	archive_read_support_filter_all(a);
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
		snprintf(err, errlen, "%s: %s", path, archive_error_string(a));
		archive_read_free(a);
		return -EIO;
	}
	struct archive_entry *e;
	char *buf = NULL;
	size_t cap = 0;
	int rc = 0;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		bool header = name && !strcmp(name, "header.json");
		bool sample = name && !strncmp(name, "samples/", 8);
		size_t len = 0;
		for (;;) {
			if (len + 65536 + 1 > cap) {
				size_t ncap = cap ? cap * 2 : 1 << 20;
				char *nb = ncap <= ENTRY_MAX ? realloc(buf, ncap) : NULL;
				if (!nb) {
					snprintf(err, errlen, "%s: %s larger than %u MiB", path, name,
						 ENTRY_MAX >> 20);
					rc = -E2BIG;
					goto out;
				}
				buf = nb;
				cap = ncap;
			}
			la_ssize_t n = archive_read_data(a, buf + len, 65536);
			if (n < 0) {
				snprintf(err, errlen, "%s: %s: %s", path, name, archive_error_string(a));
				rc = -EIO;
				goto out;
			}
			if (n == 0)
				break;
			len += (size_t)n;
		}
		if (rf_redact_bytes_have_secret(buf, len))
			*has_secret = true; /* every entry is checked: the raw file goes as is */
		if (!header && !sample)
			continue;
		json_t *j = json_loadb(buf, len, 0, NULL);
		if (!j) {
			snprintf(err, errlen, "%s: %s is not JSON", path, name);
			rc = -EBADMSG;
			goto out;
		}
		fn(header ? j : NULL, header ? NULL : j, arg);
		json_decref(j);
	}
out:
	free(buf);
	archive_read_free(a);
	return rc;
}

static int read_json_log(const char *path, rf_evallog_fn fn, void *arg, char *err, size_t errlen,
			 bool *has_secret)
{
	json_error_t je;
	FILE *f = fopen(path, "rb");
	if (f) {
		char *buf = NULL;
		size_t cap = 0;
		FILE *m = open_memstream(&buf, &cap);
		char chunk[65536];
		size_t n;
		while (m && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
			fwrite(chunk, 1, n, m);
		if (m) {
			fclose(m);
			if (rf_redact_bytes_have_secret(buf, cap))
				*has_secret = true;
		}
		free(buf);
		fclose(f);
	}
	json_t *log = json_load_file(path, 0, &je);
	if (!log) {
		snprintf(err, errlen, "%s: %s", path, je.text);
		return -EBADMSG;
	}
	json_t *samples = json_incref(json_object_get(log, "samples"));
	json_object_del(log, "samples");
	fn(log, NULL, arg);
	size_t i;
	json_t *s;
	json_array_foreach(samples, i, s)
		fn(NULL, s, arg);
	json_decref(samples);
	json_decref(log);
	return 0;
}

int rf_evallog_read(const char *path, rf_evallog_fn fn, void *arg, char *err, size_t errlen,
		    bool *has_secret)
{
	size_t n = strlen(path);
	*has_secret = false;
	if (n > 5 && !strcmp(path + n - 5, ".json"))
		return read_json_log(path, fn, arg, err, errlen, has_secret);
	return read_eval_zip(path, fn, arg, err, errlen, has_secret);
}
