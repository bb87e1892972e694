/*
 * rf_loop.c - io_uring event loop (see rf_loop.h).
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rf_clock.h"
#include "rf_err.h"
#include "rf_loop.h"

/* liburing 2.3 (Debian 12) predates IORING_OP_FUTEX_WAIT (kernel 6.7): the
 * opcode follows SENDMSG_ZC, READ_MULTISHOT and WAITID. */
_Static_assert(IORING_OP_SENDMSG_ZC == 48, "io_uring opcode numbering");
#define RF_OP_FUTEX_WAIT 51
#define RF_FUTEX2_SIZE_U32 0x02

#define MAX_FDS 1024
#define UD_FUTEX ((uint64_t)1 << 62)
#define UD_CANCEL ((uint64_t)1 << 61)

struct watch {
	rf_fd_cb cb;
	void *arg;
	unsigned want;   /* events wanted now (0 = none) */
	bool armed;      /* a POLL_ADD is in flight */
	uint32_t gen;    /* distinguishes re-uses of the fd */
};

struct timer {
	uint64_t due; /* 0 = off */
	rf_timer_cb cb;
	void *arg;
	bool used;
	uint32_t gen; /* bumped when the slot is given back: old ids go stale */
};

/* Whether this kernel's io_uring has FUTEX_WAIT (kernel >= 6.7). */
enum futex_support { FUTEX_UNKNOWN = 0, FUTEX_WORKS, FUTEX_UNSUPPORTED };

struct rf_loop {
	struct io_uring ring;
	struct watch fds[MAX_FDS];
	struct timer timers[RF_LOOP_TIMERS];
	rf_timer_cb futex_cb;
	void *futex_arg;
	bool futex_armed;
	enum futex_support futex;
};

uint64_t rf_loop_now_ms(void)
{
	return rf_now_ms(); /* a function of its own: the fuzz targets replace it */
}

int rf_loop_new(rf_loop **out)
{
	rf_loop *l = calloc(1, sizeof *l);
	if (!l)
		return rf_err_set(ENOMEM, "event loop: out of memory");
	int rc = io_uring_queue_init(256, &l->ring, 0);
	if (rc < 0) {
		free(l);
		return rf_err_set_sys(-rc, "event loop: io_uring_queue_init (ringflowd needs io_uring, "
				      "which the kernel or its sysctl kernel.io_uring_disabled may refuse)");
	}
	*out = l;
	return 0;
}

void rf_loop_free(rf_loop *l)
{
	if (!l)
		return;
	io_uring_queue_exit(&l->ring);
	free(l);
}

static struct io_uring_sqe *get_sqe(rf_loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
	if (!sqe) {
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	return sqe;
}

static uint64_t fd_ud(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

static void arm(rf_loop *l, int fd)
{
	struct watch *w = &l->fds[fd];
	if (w->armed || !w->want)
		return;
	struct io_uring_sqe *sqe = get_sqe(l);
	if (!sqe)
		return;
	io_uring_prep_poll_add(sqe, fd, w->want);
	io_uring_sqe_set_data64(sqe, fd_ud(fd, w->gen));
	w->armed = true;
}

int rf_loop_watch(rf_loop *l, int fd, unsigned events, rf_fd_cb cb, void *arg)
{
	if (fd < 0 || fd >= MAX_FDS)
		return rf_err_set(EINVAL, "event loop: fd %d outside 0..%d", fd, MAX_FDS - 1);
	struct watch *w = &l->fds[fd];
	if (w->armed && (events != w->want || cb != w->cb)) {
		/* Cancel the outstanding poll; its completion is ignored by gen. */
		struct io_uring_sqe *sqe = get_sqe(l);
		if (sqe) {
			io_uring_prep_poll_remove(sqe, fd_ud(fd, w->gen));
			io_uring_sqe_set_data64(sqe, UD_CANCEL);
		}
		w->armed = false;
		w->gen++;
	}
	w->want = events;
	w->cb = cb;
	w->arg = arg;
	if (events)
		arm(l, fd);
	else
		w->gen++;
	return 0;
}

/* An id is slot + RF_LOOP_TIMERS * generation (kept positive). */
#define GEN_MAX ((uint32_t)(0x7fffffff / RF_LOOP_TIMERS))

static struct timer *timer_of(rf_loop *l, int id)
{
	if (id < 0)
		return NULL;
	struct timer *t = &l->timers[id % RF_LOOP_TIMERS];
	return t->used && t->gen == (uint32_t)(id / RF_LOOP_TIMERS) ? t : NULL;
}

int rf_loop_timer_new(rf_loop *l, rf_timer_cb cb, void *arg)
{
	for (int i = 0; i < RF_LOOP_TIMERS; i++) {
		struct timer *t = &l->timers[i];
		if (t->used)
			continue;
		*t = (struct timer){.cb = cb, .arg = arg, .used = true, .gen = t->gen};
		return i + RF_LOOP_TIMERS * (int)t->gen;
	}
	return -ENOSPC;
}

int rf_loop_timer_set(rf_loop *l, int id, int64_t ms)
{
	struct timer *t = timer_of(l, id);
	if (!t)
		return -ENOENT;
	if (ms < 0) {
		t->due = 0;
		return 0;
	}
	t->due = rf_loop_now_ms() + (uint64_t)ms;
	if (!t->due)
		t->due = 1;
	return 0;
}

int rf_loop_timer_del(rf_loop *l, int id)
{
	struct timer *t = timer_of(l, id);
	if (!t)
		return -ENOENT;
	t->used = false;
	t->due = 0;
	t->gen = (t->gen + 1) % GEN_MAX;
	return 0;
}

int rf_loop_futex_wait(rf_loop *l, uint32_t *uaddr, uint32_t val, rf_timer_cb cb, void *arg)
{
	l->futex_cb = cb;
	l->futex_arg = arg;
	if (l->futex_armed)
		return 0;
	if (l->futex == FUTEX_UNSUPPORTED)
		return -EOPNOTSUPP; /* an answer, asked at every park: no message */
	struct io_uring_sqe *sqe = get_sqe(l);
	if (!sqe)
		return rf_err_set(EBUSY, "event loop: submission queue full");
	memset(sqe, 0, sizeof *sqe);
	sqe->opcode = RF_OP_FUTEX_WAIT;
	sqe->fd = RF_FUTEX2_SIZE_U32; /* shared (not FUTEX2_PRIVATE): producers are other processes */
	sqe->addr = (uint64_t)(uintptr_t)uaddr;
	sqe->addr2 = val;
	sqe->addr3 = 0xffffffffu; /* FUTEX_BITSET_MATCH_ANY */
	io_uring_sqe_set_data64(sqe, UD_FUTEX);
	l->futex_armed = true;
	return 0;
}

static void on_cqe(rf_loop *l, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	if (ud == UD_CANCEL)
		return;
	if (ud == UD_FUTEX) {
		l->futex_armed = false;
		if (cqe->res == -EINVAL || cqe->res == -EOPNOTSUPP) {
			l->futex = FUTEX_UNSUPPORTED; /* old kernel: callers poll instead */
		} else if (l->futex == FUTEX_UNKNOWN) {
			l->futex = FUTEX_WORKS;
		}
		if (l->futex_cb)
			l->futex_cb(l, l->futex_arg);
		return;
	}
	int fd = (int)(uint32_t)ud;
	uint32_t gen = (uint32_t)(ud >> 32);
	if (fd < 0 || fd >= MAX_FDS)
		return;
	struct watch *w = &l->fds[fd];
	if (w->gen != gen)
		return; /* stale: the fd was re-watched or removed */
	w->armed = false;
	unsigned ev = cqe->res > 0 ? (unsigned)cqe->res : POLLERR;
	if (w->cb)
		w->cb(l, fd, ev, w->arg);
	if (w->gen == gen)
		arm(l, fd);
}

static void run_timers(rf_loop *l)
{
	uint64_t now = rf_loop_now_ms();
	for (int i = 0; i < RF_LOOP_TIMERS; i++) {
		struct timer *t = &l->timers[i];
		if (t->used && t->due && t->due <= now) {
			t->due = 0;
			t->cb(l, t->arg);
		}
	}
}

int rf_loop_run_once(rf_loop *l, int max_ms)
{
	uint64_t now = rf_loop_now_ms();
	int64_t wait = max_ms;
	for (int i = 0; i < RF_LOOP_TIMERS; i++)
		if (l->timers[i].due) {
			int64_t d = (int64_t)l->timers[i].due - (int64_t)now;
			if (d < wait)
				wait = d < 0 ? 0 : d;
		}
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = {wait / 1000, (wait % 1000) * 1000000};
	int rc = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
	if (rc < 0 && rc != -ETIME && rc != -EINTR)
		return rc;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&l->ring, head, cqe) {
		on_cqe(l, cqe);
		n++;
	}
	io_uring_cq_advance(&l->ring, n);
	run_timers(l);
	return 0;
}
