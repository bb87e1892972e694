/*
 * ring_bench_dgram.c - the baseline of ring_bench: the same records sent
 * over a socketpair(AF_UNIX, SOCK_DGRAM) with blocking send() (no loss) and
 * received with recvmmsg.
 */
#include "ring_bench.h"

static inline __attribute__((always_inline)) enum send_result
dgram_send(struct thread_arg *a, void *buf, uint64_t seq)
{
	const size_t bytes = a->run->bytes;
	rec_fill(buf, bytes, a->tid, seq);
	ssize_t w = send(a->fd, buf, bytes, 0);
	if (w < 0) {
		if (errno == EINTR)
			return SEND_RETRY;
		if (errno == EAGAIN || errno == ENOBUFS)
			return SEND_FULL;
		sh_fail(a->run->sh, "send: %s", strerror(errno));
		return SEND_FAIL;
	}
	if ((size_t)w != bytes) {
		sh_fail(a->run->sh, "send: short datagram %zd of %zu", w, bytes);
		return SEND_FAIL;
	}
	return SEND_OK;
}

void *dgram_producer_thread(void *p)
{
	struct thread_arg *a = p;
	void *buf = aligned_alloc(64, (a->run->bytes + 63) & ~(size_t)63);
	if (!buf) {
		sh_fail(a->run->sh, "out of memory");
		thread_finish(a->run->sh, &a->run->sh->slot[a->tid], 0, 0);
		return NULL;
	}
	producer_loop(a, dgram_send, buf);
	free(buf);
	return NULL;
}

void dgram_consumer_process(struct run *run)
{
	struct shared *sh = run->sh;
	struct verifier v = { .sh = sh, .bytes = run->bytes, .nthreads = run->nthreads };
	const int fd = run->sv[0];
	const size_t slot_bytes = (run->bytes + 64) & ~(size_t)63; /* room to see oversize */
	bool ok = true;

	child_setup();
	close(run->sv[1]);
	unsigned char *buf = malloc(slot_bytes * RECV_BATCH);
	struct mmsghdr *mm = calloc(RECV_BATCH, sizeof *mm);
	struct iovec *iov = calloc(RECV_BATCH, sizeof *iov);
	if (!buf || !mm || !iov) {
		sh_fail(sh, "consumer: out of memory");
		atomic_store(&sh->consumer_state, -1);
		_exit(1);
	}
	for (unsigned i = 0; i < RECV_BATCH; i++) {
		iov[i].iov_base = buf + i * slot_bytes;
		iov[i].iov_len = slot_bytes;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	atomic_store(&sh->consumer_state, 1);

	uint64_t last_progress = 0;
	for (;;) {
		int n = recvmmsg(fd, mm, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n > 0) {
			for (int i = 0; i < n; i++) {
				if (mm[i].msg_hdr.msg_flags & MSG_TRUNC)
					v.corrupt++;
				rec_check(&v, iov[i].iov_base, mm[i].msg_len);
				mm[i].msg_hdr.msg_flags = 0;
			}
			last_progress = 0;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			sh_fail(sh, "recvmmsg: %s", strerror(errno));
			ok = false;
			break;
		}
		int idle = consumer_idle(sh, run, v.consumed, &last_progress, "datagram");
		if (idle) {
			ok = idle > 0;
			break;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		poll(&pfd, 1, 1);
	}
	consumer_finish(sh, &v, ok);
	_exit(ok ? 0 : 1);
}

int set_sockbuf(int fd, int opt_force, int opt, int bytes)
{
	int got = 0;
	socklen_t len = sizeof got;
	/* SO_*BUFFORCE passes net.core.[wr]mem_max when privileged. */
	if (setsockopt(fd, SOL_SOCKET, opt_force, &bytes, sizeof bytes) != 0)
		setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
	getsockopt(fd, SOL_SOCKET, opt, &got, &len);
	return got;
}
