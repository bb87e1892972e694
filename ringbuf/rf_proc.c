/*
 * rf_proc.c - is a claimant still alive?
 *
 * A claim records (pid, tid, start time).  The consumer asks /proc whether that
 * exact thread still runs: a missing entry, a zombie, or a different start
 * time (the tid was recycled) all mean dead.  This is what lets the consumer
 * tell a dead producer from a slow one without waiting out a timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rf_ring_int.h"

pid_t rf_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* Parse state and starttime (field 22) of /proc/<pid>/task/<tid>/stat.
 * Returns 0, or -ENOENT when the thread is gone. */
static int read_stat(pid_t pid, pid_t tid, char *state, uint64_t *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -ENOENT;
	buf[n] = 0;
	/* comm may contain spaces and parentheses: parse after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EINVAL;
	p += 2;
	*state = *p;
	/* p is at field 3; starttime is field 22. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EINVAL;
		p++;
	}
	*start = strtoull(p, NULL, 10);
	return 0;
}

uint64_t rf_thread_start_time(pid_t pid, pid_t tid)
{
	char state;
	uint64_t start = 0;
	if (read_stat(pid, tid, &state, &start))
		return 0;
	return start;
}

int rf_thread_alive(pid_t pid, pid_t tid, uint64_t start_time)
{
	char state;
	uint64_t start;
	int rc = read_stat(pid, tid, &state, &start);
	if (rc == -ENOENT || rc == -ESRCH)
		return 0;
	if (rc < 0) {
		/* /proc unreadable: fall back to signal 0 (no recycling check). */
		if (syscall(SYS_tgkill, pid, tid, 0) == 0 || errno == EPERM)
			return 1;
		return 0;
	}
	if (state == 'Z' || state == 'X')
		return 0;
	if (start_time && start != start_time)
		return 0;
	return 1;
}
