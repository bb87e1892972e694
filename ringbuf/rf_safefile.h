/*
 * rf_safefile.h - opening files in a directory other users may write to.
 *
 * In group mode (RINGFLOW_RING_GROUP=1) the spool directory is 0770: every
 * member of the group can plant names in it (a symlink to the owner's
 * ~/.ssh/authorized_keys, a FIFO, a hard link, a file of their own).  Every
 * file the sidecar creates or opens there goes through these functions, which
 * never follow a symlink in the last component, never block on a FIFO or a
 * device, and refuse (before any fchmod/ftruncate/write) anything that is not
 * a regular file with one link owned by this process's effective uid.
 *
 * Errors: -errno, with rf_ring_errmsg() naming the path, what is wrong with it
 * (its type, owner, mode) and what to do.
 */
#ifndef RF_SAFEFILE_H
#define RF_SAFEFILE_H

#include <stdbool.h>
#include <sys/types.h>

/* Opens dir (O_DIRECTORY, not a symlink) and checks it: owned by this euid,
 * not writable by others, writable by the group only when group is true.
 * Returns the directory fd (close it) or -errno. */
int rf_safe_dir_open(const char *dir, bool group);

/* openat(dirfd, name, flags) that cannot be redirected: name is one path
 * component; O_NOFOLLOW, O_NONBLOCK while opening (cleared after, unless the
 * caller asked for it), O_CLOEXEC and O_NOCTTY are added.  The opened file
 * must be a regular file owned by this euid with one link.  Only then: with
 * O_CREAT, fchmod(mode) (the umask does not decide); with O_TRUNC, truncated.
 * shown names the file in errors.  Returns the fd or -errno. */
int rf_safe_openat(int dirfd, const char *name, const char *shown, int flags, mode_t mode);

/* Both in one: path's directory is checked as rf_safe_dir_open(dir, group),
 * then its last component opened as rf_safe_openat(). */
int rf_safe_open(const char *path, int flags, mode_t mode, bool group);

#endif
