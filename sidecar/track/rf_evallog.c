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

#include "rf_blob.h"
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

int rf_evallog_copy(const char *path, struct rf_blob *b, bool *has_secret)
{
	*has_secret = false;
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
	enum { CHUNK = 1 << 20 };
	char *buf = rc ? NULL : malloc(CHUNK);
	if (!rc && !buf)
		rc = rf_err_set(ENOMEM, "%s: %s", path, strerror(ENOMEM));
	struct rf_redact_scan scan = {0};
	FILE *w = rf_blob_writer(b);
	uint64_t n = 0;
	/* Bounded whatever the size said (a file may grow, /proc says 0). */
	while (!rc) {
		ssize_t r = read(fd, buf, CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = rf_err_set_sys(errno, "%s", path);
		} else if (r == 0) {
			break;
		} else if ((n += (uint64_t)r) > RF_EVALLOG_MAX) {
			rc = rf_err_set(EFBIG, "%s: grew past %u MiB while read: not read", path,
					RF_EVALLOG_MAX >> 20);
		} else {
			rf_redact_scan(&scan, buf, (size_t)r);
			if (!w || fwrite(buf, 1, (size_t)r, w) != (size_t)r)
				break; /* rf_blob_seal says why */
		}
	}
	close(fd);
	free(buf);
	*has_secret = scan.found;
	rf_redact_scan_end(&scan);
	int sealed = rf_blob_seal(b);
	if (!rc && sealed)
		rc = rf_err_wrap("%s: copying the log", path);
	return rc;
}

/* A reading position in the copy: libarchive and jansson read it through
 * their callbacks below (from a file or memory alike). */
struct src {
	const struct rf_blob *b;
	uint64_t off;
};

struct zsrc { /* libarchive's: the position and its block */
	struct src at;
	char buf[65536];
};

static ssize_t src_take(struct src *s, void *buf, size_t n)
{
	ssize_t r = rf_blob_read(s->b, s->off, buf, n);
	if (r > 0)
		s->off += (uint64_t)r;
	return r;
}

static la_ssize_t src_read(struct archive *a, void *p, const void **out)
{
	struct zsrc *z = p;
	ssize_t n = src_take(&z->at, z->buf, sizeof z->buf);
	if (n < 0) {
		archive_set_error(a, EIO, "%s", rf_err_msg());
		return -1;
	}
	*out = z->buf;
	return n;
}

static la_int64_t src_seek(struct archive *a, void *p, la_int64_t off, int whence)
{
	(void)a;
	struct src *s = &((struct zsrc *)p)->at;
	int64_t len = (int64_t)rf_blob_len(s->b);
	int64_t at = whence == SEEK_SET ? off : whence == SEEK_CUR ? (int64_t)s->off + off : len + off;
	if (at < 0)
		return ARCHIVE_FATAL;
	s->off = (uint64_t)(at > len ? len : at);
	return (la_int64_t)s->off;
}

static la_int64_t src_skip(struct archive *a, void *p, la_int64_t req)
{
	(void)a;
	struct src *s = &((struct zsrc *)p)->at;
	uint64_t left = rf_blob_len(s->b) - s->off;
	uint64_t n = req < 0 ? 0 : (uint64_t)req > left ? left : (uint64_t)req;
	s->off += n;
	return (la_int64_t)n;
}

static int read_eval_zip(const char *path, const struct rf_blob *blob, rf_evallog_fn fn,
			 void *arg, bool *has_secret)
{
	struct archive *a = archive_read_new();
	struct zsrc *src = a ? calloc(1, sizeof *src) : NULL;
	if (!src) {
		archive_read_free(a);
		return rf_err_set(ENOMEM, "%s: %s", path, strerror(ENOMEM));
	}
	src->at.b = blob;
	archive_read_support_format_zip(a);
	archive_read_support_filter_all(a);
	archive_read_set_read_callback(a, src_read);
	archive_read_set_seek_callback(a, src_seek);
	archive_read_set_skip_callback(a, src_skip);
	archive_read_set_callback_data(a, src);
	if (archive_read_open1(a) != ARCHIVE_OK) {
		rf_err_set(EIO, "%s: %s", path, archive_error_string(a));
		archive_read_free(a);
		free(src);
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
		/* Header and samples are parsed, so read whole; every other
		 * member is only checked for secrets, a piece at a time (the
		 * raw file goes as is, so every member is checked). */
		bool keep = header || sample;
		struct rf_redact_scan scan = {0};
		size_t len = 0;
		for (;;) {
			if (!keep && len) {
				rf_redact_scan(&scan, buf, len);
				len = 0;
			}
			if (len + 65536 + 1 > cap) {
				size_t ncap = cap ? cap * 2 : 1 << 20;
				char *nb = ncap <= ENTRY_MAX ? realloc(buf, ncap) : NULL;
				if (!nb) {
					rf_redact_scan_end(&scan);
					rc = rf_err_set(E2BIG, "%s: %s larger than %u MiB", path,
							name, ENTRY_MAX >> 20);
					goto out;
				}
				buf = nb;
				cap = ncap;
			}
			la_ssize_t n = archive_read_data(a, buf + len, 65536);
			if (n < 0) {
				rf_redact_scan_end(&scan);
				rc = rf_err_set(EIO, "%s: %s: %s", path, name, archive_error_string(a));
				goto out;
			}
			if (n == 0)
				break;
			len += (size_t)n;
			if ((total += (size_t)n) > TOTAL_MAX) {
				rf_redact_scan_end(&scan);
				rc = rf_err_set(E2BIG, "%s: decompresses to more than %llu GiB: not read",
						path, TOTAL_MAX >> 30);
				goto out;
			}
		}
		rf_redact_scan(&scan, buf, len);
		if (scan.found)
			*has_secret = true;
		rf_redact_scan_end(&scan);
		if (!keep)
			continue;
		json_t *j = json_loadb(buf, len, 0, NULL);
		if (!j) {
			rc = rf_err_set(EBADMSG, "%s: %s is not JSON", path, name);
			goto out;
		}
		int stop = fn(header ? j : NULL, header ? NULL : j, arg);
		json_decref(j);
		if (stop) {
			rc = rf_err_set(ECANCELED, "%s: reading stopped", path);
			goto out;
		}
	}
out:
	free(buf);
	archive_read_free(a);
	free(src);
	return rc;
}

static size_t json_src_read(void *buf, size_t n, void *p)
{
	ssize_t r = src_take(p, buf, n);
	return r < 0 ? (size_t)-1 : (size_t)r;
}

/* A .json log is one document, {"version": ..., "eval": ..., "samples":
 * [...], ...}: read one value at a time so memory is the largest sample,
 * never the log.  The object's frame (braces, keys' colons, commas) is
 * stepped over here; every key and value is jansson's, parsed from the
 * position with JSON_DISABLE_EOF_CHECK, which reports how many bytes the
 * value took (the callback may have read ahead: the position is moved back
 * to the value's end). */
struct jsrc {
	struct src at;
	char peek[256];
	uint64_t peek_off; /* where peek[] starts in the copy */
	size_t peek_len;
};

/* The next byte that is not JSON whitespace, consumed; -1 at the end. */
static int next_char(struct jsrc *j)
{
	for (;;) {
		if (j->at.off < j->peek_off || j->at.off >= j->peek_off + j->peek_len) {
			j->peek_off = j->at.off;
			ssize_t r = rf_blob_read(j->at.b, j->at.off, j->peek, sizeof j->peek);
			j->peek_len = r > 0 ? (size_t)r : 0;
			if (!j->peek_len)
				return -1;
		}
		int c = (unsigned char)j->peek[j->at.off++ - j->peek_off];
		if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
			return c;
	}
}

/* One JSON value from the position (after its leading whitespace). */
static json_t *next_value(struct jsrc *j, json_error_t *je)
{
	uint64_t from = j->at.off;
	json_t *v = json_load_callback(json_src_read, &j->at,
				       JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, je);
	j->at.off = from + (v && je->position > 0 ? (uint64_t)je->position : 0);
	return v;
}

static int read_json_log(const char *path, const struct rf_blob *b, rf_evallog_fn fn, void *arg)
{
	struct jsrc j = {.at.b = b};
	json_error_t je = {.text = "not a JSON object"};
	json_t *header = json_object(), *key = NULL, *v;
	int c = next_char(&j), rc = -1, stop = 0;
	if (!header || c != '{')
		goto out;
	if ((c = next_char(&j)) == '}')
		rc = 0;
	while (c == '"') {
		j.at.off--; /* the key's quote is jansson's */
		json_decref(key);
		if (!(key = next_value(&j, &je)) || !json_is_string(key) || next_char(&j) != ':') {
			snprintf(je.text, sizeof je.text, "a key without its value");
			goto out;
		}
		c = next_char(&j);
		if (c == '[' && !strcmp(json_string_value(key), "samples")) {
			if ((c = next_char(&j)) == -1)
				goto out;
			while (c != ']') {
				j.at.off--;
				if (!(v = next_value(&j, &je)))
					goto out;
				stop = fn(NULL, v, arg);
				json_decref(v);
				if (stop)
					goto out;
				if ((c = next_char(&j)) == ',')
					c = next_char(&j);
				else if (c != ']')
					goto out;
			}
		} else {
			j.at.off--;
			if (c == -1 || !(v = next_value(&j, &je)))
				goto out;
			if (strcmp(json_string_value(key), "samples")) /* the log without them */
				json_object_set_new(header, json_string_value(key), v);
			else
				json_decref(v);
		}
		if ((c = next_char(&j)) == '}') {
			rc = 0;
			break;
		}
		if (c != ',' || (c = next_char(&j)) != '"')
			break;
	}
out:
	if (!rc)
		stop = fn(header, NULL, arg);
	json_decref(header);
	json_decref(key);
	if (stop)
		return rf_err_set(ECANCELED, "%s: reading stopped", path);
	if (rc)
		return rf_err_set(EBADMSG, "%s: not an Inspect log near byte %llu: %s", path,
				  (unsigned long long)j.at.off, je.text);
	return 0;
}

int rf_evallog_parse(const char *path, const struct rf_blob *b, rf_evallog_fn fn, void *arg,
		     bool *has_secret)
{
	size_t n = strlen(path);
	if (n > 5 && !strcmp(path + n - 5, ".json"))
		return read_json_log(path, b, fn, arg);
	return read_eval_zip(path, b, fn, arg, has_secret);
}
