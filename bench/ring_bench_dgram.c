/*
 * ring_bench_dgram.c - the baseline of ring_bench: the same records sent
 * over a socketpair(AF_UNIX, SOCK_DGRAM) with blocking send() (no loss) and
 * received with recvmmsg.
 */
#include "ring_bench.h"

void *dgram_producer_thread(void *p)
{
	struct thread_arg *a = p;
	struct run *run = a->run;
	struct shared *sh = run->sh;
	struct thread_slot *s = &sh->slot[a->tid];
	const size_t bytes = run->bytes;
	const uint64_t limit = run->o->records ? run->o->records : UINT64_MAX;
	const uint64_t mask = run->o->sample_every - 1;
	uint64_t seq = 0, eagain = 0, samples = 0;
	void *buf = aligned_alloc(64, (bytes + 63) & ~(size_t)63);

	if (!buf) {
		sh_fail(sh, "out of memory");
		thread_finish(sh, s, 0, 0);
		return NULL;
	}
	wait_start(sh);
	while (seq < limit) {
		if ((seq & 63) == 0 && atomic_load_explicit(&sh->stop, memory_order_relaxed))
			break;
		const bool timed = (seq & mask) == 0;
		uint64_t t0 = timed ? ticks() : 0;
		rec_fill(buf, bytes, a->tid, seq);
		ssize_t w = send(a->fd, buf, bytes, 0);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == ENOBUFS) {
				eagain++;
				if (atomic_load_explicit(&sh->stop, memory_order_relaxed))
					break;
				continue;
			}
			sh_fail(sh, "send: %s", strerror(errno));
			break;
		}
		if ((size_t)w != bytes) {
			sh_fail(sh, "send: short datagram %zd of %zu", w, bytes);
			break;
		}
		if (timed) {
			uint64_t t1 = ticks();
			s->hist[h_index(t1 > t0 ? t1 - t0 : 0)]++;
			samples++;
		}
		seq++;
	}
	free(buf);
	s->samples = samples;
	thread_finish(sh, s, seq, eagain);
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
