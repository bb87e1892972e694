/*
 * rf_detach.c - background start with a readiness pipe (see rf_detach.h).
 */
#include "rf_detach.h"

#include "rf_err.h"
#include "rf_safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int ready_fd = -1; /* write end, in the daemon until it reported */

int rf_detach_start(bool *starter)
{
	int p[2];
	*starter = false;
	if (pipe2(p, O_CLOEXEC) < 0)
		return rf_err_set_sys(errno, "cannot detach: pipe");
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return rf_err_set_sys(e, "cannot detach: fork");
	}
	if (pid > 0) {
		/* The starting process: the daemon's verdict, or its death (EOF:
		 * every copy of the write end is closed). */
		close(p[1]);
		unsigned char code;
		ssize_t n;
		while ((n = read(p[0], &code, 1)) < 0 && errno == EINTR)
			;
		waitpid(pid, NULL, 0); /* the intermediate child exits at once */
		close(p[0]);
		*starter = true;
		if (n != 1)
			return rf_err_set(ECHILD, "the daemon exited while starting (see its log)");
		return code;
	}
	close(p[0]);
	setsid();
	pid = fork();
	if (pid < 0)
		_exit(1); /* EOF on the pipe: the starting process reports it */
	if (pid > 0)
		_exit(0);
	ready_fd = p[1];
	return 0;
}

int rf_detach_redirect(const char *log, bool group)
{
	/* The spool may be the group's too: never a planted link or someone
	 * else's file (rf_safe_open checks the directory and the file). */
	int fd = rf_safe_open(log, O_WRONLY | O_CREAT | O_APPEND, group ? 0660 : 0600, group);
	if (fd < 0)
		return fd;
	int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nul < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	int rc = dup2(nul, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 ? -errno : 0;
	close(nul);
	close(fd);
	if (rc == 0 && chdir("/") < 0)
		rc = -errno;
	return rc;
}

void rf_detach_ready(int code)
{
	if (ready_fd < 0)
		return;
	unsigned char c = (unsigned char)code;
	while (write(ready_fd, &c, 1) < 0 && errno == EINTR)
		;
	close(ready_fd);
	ready_fd = -1;
}
