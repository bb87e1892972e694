/*
 * rf_blob.c - see rf_blob.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rf_blob.h"
#include "rf_err.h"

struct rf_blob {
	int fd;        /* the unnamed file, or -1: in memory */
	FILE *w;       /* the writer until sealed */
	char *mem;     /* memory: open_memstream's buffer */
	size_t mem_len;
	uint64_t len;
	bool sealed;
};

/* An unnamed file in dir: O_TMPFILE, or a named one unlinked at once where
 * the file system has no O_TMPFILE (mode 0600 while it has a name). */
static int unnamed_file(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	char path[4096];
	if (snprintf(path, sizeof path, "%s/.rf-body-XXXXXX", dir) >= (int)sizeof path)
		return -1;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

struct rf_blob *rf_blob_new(const char *dir)
{
	struct rf_blob *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->fd = dir ? unnamed_file(dir) : -1;
	if (b->fd >= 0) {
		int wfd = dup(b->fd); /* the writer's own, closed by fclose */
		b->w = wfd >= 0 ? fdopen(wfd, "w") : NULL;
		if (!b->w) {
			if (wfd >= 0)
				close(wfd);
			close(b->fd);
			b->fd = -1;
		}
	}
	if (b->fd < 0)
		b->w = open_memstream(&b->mem, &b->mem_len);
	if (!b->w) {
		free(b);
		return NULL;
	}
	return b;
}

FILE *rf_blob_writer(struct rf_blob *b)
{
	return b->sealed ? NULL : b->w;
}

int rf_blob_seal(struct rf_blob *b)
{
	if (b->sealed)
		return 0;
	b->sealed = true;
	bool bad = ferror(b->w);
	int e = bad ? errno : 0;
	if (fclose(b->w) != 0 && !bad) {
		bad = true;
		e = errno;
	}
	b->w = NULL;
	if (bad) {
		const char *where = b->fd >= 0 ? "the spool directory" : "memory";
		if (b->fd >= 0)
			close(b->fd);
		b->fd = -1;
		free(b->mem);
		b->mem = NULL;
		b->mem_len = 0;
		return rf_err_set(e ? e : EIO, "writing a request body to %s: %s", where,
				  strerror(e ? e : EIO));
	}
	if (b->fd >= 0) {
		off_t end = lseek(b->fd, 0, SEEK_END);
		b->len = end > 0 ? (uint64_t)end : 0;
	} else {
		b->len = b->mem_len;
	}
	return 0;
}

uint64_t rf_blob_len(const struct rf_blob *b)
{
	return b->sealed ? b->len : 0;
}

ssize_t rf_blob_read(const struct rf_blob *b, uint64_t off, void *buf, size_t n)
{
	if (!b->sealed || off >= b->len)
		return 0;
	if (n > b->len - off)
		n = (size_t)(b->len - off);
	if (b->fd < 0) {
		memcpy(buf, b->mem + off, n);
		return (ssize_t)n;
	}
	for (;;) {
		ssize_t r = pread(b->fd, buf, n, (off_t)off);
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return rf_err_set_sys(errno, "reading a request body back");
	}
}

int rf_blob_patch(struct rf_blob *b, uint64_t off, const void *data, size_t n)
{
	if (!b->sealed || off > b->len || n > b->len - off)
		return rf_err_set(ERANGE, "patch of %zu bytes at %llu outside a %llu-byte body", n,
				  (unsigned long long)off, (unsigned long long)b->len);
	if (b->fd < 0) {
		memcpy(b->mem + off, data, n);
		return 0;
	}
	while (n) {
		ssize_t w = pwrite(b->fd, data, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return rf_err_set_sys(w < 0 ? errno : EIO, "rewriting a request body");
		data = (const char *)data + w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

bool rf_blob_in_file(const struct rf_blob *b)
{
	return b->fd >= 0;
}

void rf_blob_free(struct rf_blob *b)
{
	if (!b)
		return;
	if (b->w)
		fclose(b->w);
	if (b->fd >= 0)
		close(b->fd);
	free(b->mem);
	free(b);
}
