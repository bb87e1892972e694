/*
 * rf_detach.h - `ringflowd --detach`: run in the background, and let the
 * starting process know whether the daemon came up.
 *
 * rf_detach_start() forks twice (a new session, no controlling terminal);
 * the caller goes on in the grandchild, which opens the ring itself, so the
 * ring records the daemon's pid as its consumer.  The original process
 * waits on a pipe: rf_detach_ready(0) once the daemon serves the ring makes
 * it exit 0; rf_detach_ready(code) on a failed start makes it exit with
 * that code; a daemon that dies before either makes it exit 1.  Until then
 * the daemon's stderr is still the caller's, so start errors are seen.
 */
#ifndef RF_DETACH_H
#define RF_DETACH_H

#include <stdbool.h>

/* In the daemon: 0 with *starter false.  In the starting process (*starter
 * true), which must exit at once: the daemon's verdict as an exit status, or
 * -ECHILD if it died before giving one.  -errno (rf_err says why) if it could
 * not fork. */
int rf_detach_start(bool *starter);
/* Stdin from /dev/null, stdout and stderr to `log` (appended, 0600 or
 * 0660 with `group`), working directory "/".  0 or -errno. */
int rf_detach_redirect(const char *log, bool group);
/* Tell the waiting process the outcome (once; no-op when not detached). */
void rf_detach_ready(int code);

#endif
