/*
 * rf_evallog.c - see rf_evallog.h.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rf_err.h"
#include "rf_evallog.h"
#include "rf_redact.h"

#define ENTRY_MAX (512u << 20)
/* All entries together: a small zip of many highly compressed entries (a
 * zip bomb) must not keep the loop decompressing for minutes. */
#define TOTAL_MAX (4ull << 30)

static const char *kind(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" :
	       S_ISCHR(m) || S_ISBLK(m) ? "a device" : "not a regular file";
}

int rf_evallog_load(const char *path, char **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	/* A record names this path: it may be a FIFO (open and read would
	 * block the loop), a symlink to /dev/zero or a key, a directory, a
	 * huge file.  O_NONBLOCK: opening a FIFO returns at once; O_NOFOLLOW:
	 * Inspect writes its log as a regular file, never a symlink. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		return rf_err_set(e, "%s: %s", path,
				  e == ELOOP ? "a symbolic link (not followed)" : strerror(e));
	}
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0) {
		rc = rf_err_set_sys(errno, "%s", path);
	} else if (!S_ISREG(st.st_mode)) {
		rc = rf_err_set(EINVAL, "%s is %s: not read", path, kind(st.st_mode));
	} else if ((uint64_t)st.st_size > RF_EVALLOG_MAX) {
		rc = rf_err_set(EFBIG, "%s is larger than %u MiB: not read", path,
				RF_EVALLOG_MAX >> 20);
	}
	char *buf = NULL;
	size_t n = 0, cap = 0;
	/* Bounded whatever the size said (a file may grow, /proc says 0). */
	while (!rc) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : (size_t)st.st_size + 1;
			if (ncap > (size_t)RF_EVALLOG_MAX + 1)
				ncap = (size_t)RF_EVALLOG_MAX + 1;
			char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
			if (!nb) {
				rc = rf_err_set(ncap > cap ? ENOMEM : EFBIG, "%s: %s", path,
						ncap > cap ? strerror(ENOMEM) :
						"grew past the size limit while read: not read");
				break;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = rf_err_set_sys(errno, "%s", path);
		} else if (r == 0) {
			break;
		}
		n += r > 0 ? (size_t)r : 0;
	}
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	*data = buf ? buf : strdup("");
	*len = n;
	return *data ? 0 : -ENOMEM;
}

static int read_eval_zip(const char *path, const char *data, size_t dlen, rf_evallog_fn fn,
			 void *arg, bool *has_secret)
{
	struct archive *a = archive_read_new();
	if (!a)
		return -ENOMEM;
	archive_read_support_format_zip(a);
	archive_read_support_filter_all(a);
	if (archive_read_open_memory(a, data, dlen) != ARCHIVE_OK) {
		rf_err_set(EIO, "%s: %s", path, archive_error_string(a));
		archive_read_free(a);
		return -EIO;
	}
	struct archive_entry *e;
	char *buf = NULL;
	size_t cap = 0;
	uint64_t total = 0;
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
					rc = rf_err_set(E2BIG, "%s: %s larger than %u MiB", path,
							name, ENTRY_MAX >> 20);
					goto out;
				}
				buf = nb;
				cap = ncap;
			}
			la_ssize_t n = archive_read_data(a, buf + len, 65536);
			if (n < 0) {
				rc = rf_err_set(EIO, "%s: %s: %s", path, name, archive_error_string(a));
				goto out;
			}
			if (n == 0)
				break;
			len += (size_t)n;
			if ((total += (size_t)n) > TOTAL_MAX) {
				rc = rf_err_set(E2BIG, "%s: decompresses to more than %llu GiB: not read",
						path, TOTAL_MAX >> 30);
				goto out;
			}
		}
		if (rf_redact_bytes_have_secret(buf, len))
			*has_secret = true; /* every entry is checked: the raw file goes as is */
		if (!header && !sample)
			continue;
		json_t *j = json_loadb(buf, len, 0, NULL);
		if (!j) {
			rc = rf_err_set(EBADMSG, "%s: %s is not JSON", path, name);
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

static int read_json_log(const char *path, const char *data, size_t dlen, rf_evallog_fn fn,
			 void *arg, bool *has_secret)
{
	json_error_t je;
	if (rf_redact_bytes_have_secret(data, dlen))
		*has_secret = true;
	json_t *log = json_loadb(data, dlen, 0, &je);
	if (!log) {
		return rf_err_set(EBADMSG, "%s: %s", path, je.text);
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

int rf_evallog_parse(const char *path, const char *data, size_t len, rf_evallog_fn fn,
		     void *arg, bool *has_secret)
{
	size_t n = strlen(path);
	*has_secret = false;
	if (n > 5 && !strcmp(path + n - 5, ".json"))
		return read_json_log(path, data, len, fn, arg, has_secret);
	return read_eval_zip(path, data, len, fn, arg, has_secret);
}
