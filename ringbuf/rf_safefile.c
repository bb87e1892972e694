/*
 * rf_safefile.c - see rf_safefile.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rf_err.h"
#include "rf_ring_int.h"
#include "rf_safefile.h"

static const char *kind(mode_t m)
{
	return S_ISREG(m) ? "regular file" : S_ISDIR(m) ? "directory" : S_ISLNK(m) ? "symbolic link" :
	       S_ISFIFO(m) ? "FIFO" : S_ISSOCK(m) ? "socket" : S_ISCHR(m) || S_ISBLK(m) ? "device" :
	       "special file";
}

int rf_safe_dir_open(const char *dir, bool group)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOTDIR || e == ELOOP)
			return rf_err_set(e, "spool directory %s is not a directory (or is a "
					  "symbolic link): remove it or set RINGFLOW_SPOOL_DIR to "
					  "a directory of your own", dir);
		return rf_err_set_sys(e, "spool directory %s", dir);
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return rf_err_set_sys(e, "spool directory %s: fstat", dir);
	}
	if (st.st_uid != geteuid() || (st.st_mode & 0002) || (!group && (st.st_mode & 0020))) {
		close(fd);
		return rf_err_set(EPERM, "spool directory %s is owned by uid %u with mode %03o; "
				  "it must be owned by uid %u and writable by nobody else%s: "
				  "remove it (if another user made it, ask them or root) or set "
				  "RINGFLOW_SPOOL_DIR to a directory of your own", dir,
				  (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777),
				  (unsigned)geteuid(), group ? " but the group" : "");
	}
	return fd;
}

int rf_safe_openat(int dirfd, const char *name, const char *shown, int flags, mode_t mode)
{
	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return rf_err_set(EINVAL, "%s: not a plain file name", shown);
	int oflags = (flags & ~O_TRUNC) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
	int fd = openat(dirfd, name, oflags, mode);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			return rf_err_set(e, "%s is a symbolic link, which ringflow never follows "
					  "there: remove it (someone who can write the directory "
					  "put it there)", shown);
		return rf_err_set_sys(e, "%s", shown);
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return rf_err_set_sys(e, "%s: fstat", shown);
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
		close(fd);
		return rf_err_set(EPERM, "%s is a %s owned by uid %u with %lu link(s); ringflow "
				  "uses only a regular file of its own (uid %u) with one link "
				  "there: remove it (someone who can write the directory put it "
				  "there)", shown, kind(st.st_mode), (unsigned)st.st_uid,
				  (unsigned long)st.st_nlink, (unsigned)geteuid());
	}
	int e = 0;
	if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		e = errno;
	/* Verified ours: the mode we promise, whatever the umask or an earlier
	 * file said; then (only now) the truncation asked for. */
	else if ((flags & O_CREAT) && (st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)
		e = errno;
	else if ((flags & O_TRUNC) && st.st_size && ftruncate(fd, 0) < 0)
		e = errno;
	if (e) {
		close(fd);
		return rf_err_set_sys(e, "%s", shown);
	}
	return fd;
}

int rf_safe_open(const char *path, int flags, mode_t mode, bool group)
{
	const char *slash = strrchr(path, '/');
	char dir[RF_PATH_MAX];
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else if ((size_t)(slash - path) < sizeof dir)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	else {
		return rf_err_set(ENAMETOOLONG, "%s: path too long", path);
	}
	int dfd = rf_safe_dir_open(dir, group);
	if (dfd < 0)
		return dfd;
	int fd = rf_safe_openat(dfd, slash ? slash + 1 : path, path, flags, mode);
	close(dfd);
	return fd;
}
