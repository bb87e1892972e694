/*
 * ring_bench_run.c - one run of one ring_bench configuration: the shared
 * memory, the consumer and producer processes, the start barrier, the
 * deadline, and collecting the figures into a struct result.
 */
#include "ring_bench.h"

void sh_fail(struct shared *sh, const char *fmt, ...)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&sh->failed, &expected, 1)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(sh->errmsg, sizeof sh->errmsg, fmt, ap);
		va_end(ap);
		for (char *p = sh->errmsg; *p; p++)
			if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
				*p = '\'';
	}
	atomic_store(&sh->stop, 1);
}

void wait_start(struct shared *sh)
{
	atomic_fetch_add(&sh->threads_ready, 1);
	while (!atomic_load_explicit(&sh->start, memory_order_acquire))
		sched_yield(); /* more threads than CPUs: do not spin hard */
}

void thread_finish(struct shared *sh, struct thread_slot *s, uint64_t seq,
		   uint64_t eagain)
{
	s->committed = seq;
	s->eagain = eagain;
	atomic_fetch_add(&sh->total_committed, seq); /* before threads_done */
	atomic_fetch_add(&sh->threads_done, 1);
}

void child_setup(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* do not outlive a killed coordinator */
}

static void producer_process(struct run *run, unsigned proc)
{
	struct shared *sh = run->sh;
	struct thread_arg args[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	rf_ring *ring = NULL;
	unsigned started = 0;

	child_setup();
	if (run->tr == T_RING) {
		close(run->sv[0]);
		struct rf_ring_opts ro = {
			.flags = 0,
			.full_policy = RF_RING_FULL_WAIT,
			.full_wait_ns = run->o->full_wait_ns,
		};
		int rc = rf_ring_open(&ring, run->name, &ro);
		if (rc < 0) {
			sh_fail(sh, "producer %u: rf_ring_open(%s): %s (%s)", proc, run->name,
				strerror(-rc), rf_ring_errmsg());
			_exit(1);
		}
	} else {
		close(run->sv[0]);
	}
	for (unsigned t = 0; t < run->threads; t++) {
		struct thread_arg *a = &args[t];
		a->run = run;
		a->ring = ring;
		a->fd = run->sv[1];
		a->tid = proc * run->threads + t;
		int rc = pthread_create(&th[t], NULL,
					run->tr == T_RING ? ring_producer_thread
							  : dgram_producer_thread,
					a);
		if (rc != 0) {
			sh_fail(sh, "pthread_create: %s", strerror(rc));
			break;
		}
		started++;
	}
	for (unsigned t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	if (ring)
		rf_ring_close(ring);
	_exit(started == run->threads ? 0 : 1);
}

/* True once every producer thread has finished and every record it committed
 * has been received. */
bool all_received(struct shared *sh, unsigned nthreads, uint64_t consumed)
{
	if (atomic_load_explicit(&sh->threads_done, memory_order_acquire) != nthreads)
		return false;
	return consumed >= atomic_load_explicit(&sh->total_committed, memory_order_acquire);
}

int consumer_idle(struct shared *sh, const struct run *run, uint64_t consumed,
		  uint64_t *last_progress, const char *what)
{
	if (all_received(sh, run->nthreads, consumed)) {
		sh->t_end_ns = mono_ns();
		return 1;
	}
	if (atomic_load(&sh->failed))
		return -1;
	if (atomic_load_explicit(&sh->threads_done, memory_order_acquire) != run->nthreads)
		return 0;
	uint64_t now = mono_ns();
	if (*last_progress == 0) {
		*last_progress = now;
	} else if (now - *last_progress > DRAIN_STALL_NS) {
		sh_fail(sh, "consumer: no %s for %llu s after the producers finished (%" PRIu64
			" of %" PRIu64 ")", what, DRAIN_STALL_NS / 1000000000ull, consumed,
			atomic_load(&sh->total_committed));
		sh->t_end_ns = now;
		return -1;
	}
	return 0;
}

void consumer_finish(struct shared *sh, struct verifier *v, bool ok)
{
	sh->consumed = v->consumed;
	sh->corrupt = v->corrupt;
	sh->out_of_order = v->out_of_order;
	sh->spilled_recs = v->spilled;
	atomic_store(&sh->consumer_state, ok ? 2 : -1);
}


/* One run of one configuration into *res; res->ok if every record arrived intact. */
void run_config(const struct opts *o, enum transport tr, unsigned producers,
		unsigned threads, size_t bytes, unsigned seq_no, struct result *res)
{
	memset(res, 0, sizeof *res);
	res->rps = res->p50 = res->p99 = res->p999 = res->pmax = res->mean = NAN;
	struct run run = {
		.o = o, .tr = tr, .producers = producers, .threads = threads,
		.nthreads = producers * threads, .bytes = bytes, .sv = { -1, -1 },
	};
	size_t shsize = sizeof(struct shared) + run.nthreads * sizeof(struct thread_slot);
	struct shared *sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		snprintf(res->errmsg, sizeof res->errmsg, "mmap: %s", strerror(errno));
		return;
	}
	run.sh = sh;
	snprintf(run.name, sizeof run.name, "/rf-bench-%d-%u", (int)getpid(), seq_no);

	if (tr == T_DGRAM) {
		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, run.sv) != 0) {
			snprintf(res->errmsg, sizeof res->errmsg, "socketpair: %s",
				 strerror(errno));
			munmap(sh, shsize);
			return;
		}
		sh->sndbuf = set_sockbuf(run.sv[1], SO_SNDBUFFORCE, SO_SNDBUF, o->sockbuf);
		sh->rcvbuf = set_sockbuf(run.sv[0], SO_RCVBUFFORCE, SO_RCVBUF, o->sockbuf);
	}

	fprintf(stderr, "ring_bench: %s producers=%u threads=%u bytes=%zu ...\n",
		transport_name[tr], producers, threads, bytes);

	pid_t pids[MAX_THREADS + 1];
	unsigned npids = 0;
	bool reaped[MAX_THREADS + 1] = { false };
	int status_bad = 0;

	/* consumer first: it creates the ring */
	pid_t c = fork();
	if (c < 0) {
		snprintf(res->errmsg, sizeof res->errmsg, "fork: %s", strerror(errno));
		if (run.sv[0] >= 0) {
			close(run.sv[0]);
			close(run.sv[1]);
		}
		munmap(sh, shsize);
		return;
	}
	if (c == 0) {
		if (tr == T_RING)
			ring_consumer_process(&run);
		else
			dgram_consumer_process(&run);
	}
	pids[npids++] = c;

	uint64_t deadline = mono_ns() + 10ull * 1000000000ull;
	while (atomic_load(&sh->consumer_state) == 0 && mono_ns() < deadline)
		sleep_ns(100 * 1000);
	if (atomic_load(&sh->consumer_state) != 1) {
		if (!atomic_load(&sh->failed))
			sh_fail(sh, "consumer did not become ready");
		goto collect;
	}

	for (unsigned p = 0; p < producers; p++) {
		pid_t pid = fork();
		if (pid < 0) {
			sh_fail(sh, "fork: %s", strerror(errno));
			break;
		}
		if (pid == 0)
			producer_process(&run, p);
		pids[npids++] = pid;
	}

	deadline = mono_ns() + 10ull * 1000000000ull;
	while (atomic_load(&sh->threads_ready) < run.nthreads && !atomic_load(&sh->failed) &&
	       mono_ns() < deadline)
		sleep_ns(100 * 1000);
	if (atomic_load(&sh->threads_ready) < run.nthreads && !atomic_load(&sh->failed))
		sh_fail(sh, "producer threads did not become ready");

collect:;
	uint64_t t_start = mono_ns();
	atomic_store_explicit(&sh->start, 1, memory_order_release);

	const uint64_t run_ns = o->records ? 0 : (uint64_t)(o->seconds * 1e9);
	const uint64_t hard_ns = run_ns + (uint64_t)(o->timeout * 1e9);
	unsigned live = npids;
	bool killed = false;
	while (live > 0) {
		int st;
		pid_t w = waitpid(-1, &st, WNOHANG);
		if (w > 0) {
			for (unsigned i = 0; i < npids; i++)
				if (pids[i] == w && !reaped[i]) {
					reaped[i] = true;
					live--;
					if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
						status_bad = 1;
						if (WIFSIGNALED(st))
							sh_fail(sh, "child %d killed by signal %d",
								(int)w, WTERMSIG(st));
						else
							sh_fail(sh, "child %d exited with status %d",
								(int)w, WEXITSTATUS(st));
					}
					if (i == 0 && live > 0) /* consumer gone early */
						atomic_store(&sh->stop, 1);
				}
			continue;
		}
		if (w < 0 && errno != EINTR)
			break;
		uint64_t el = mono_ns() - t_start;
		if (!atomic_load(&sh->stop) && run_ns && el >= run_ns)
			atomic_store(&sh->stop, 1);
		if (!killed && el >= hard_ns + DRAIN_STALL_NS) {
			sh_fail(sh, "run hung: killed after %.1f s", (double)el / 1e9);
			for (unsigned i = 0; i < npids; i++)
				if (!reaped[i])
					kill(pids[i], SIGKILL);
			killed = true;
		}
		sleep_ns(2 * 1000 * 1000);
	}

	if (tr == T_RING)
		rf_ring_unlink(run.name); /* harmless if it was never created */
	if (run.sv[0] >= 0) {
		close(run.sv[0]);
		close(run.sv[1]);
	}

	/* ---- results ---- */
	struct result *const r = res;
	static uint64_t hist[H_BUCKETS];
	memset(hist, 0, sizeof hist);
	double sum_ticks = 0;
	for (unsigned t = 0; t < run.nthreads; t++) {
		struct thread_slot *s = &sh->slot[t];
		r->committed += s->committed;
		r->eagain += s->eagain;
		r->samples += s->samples;
		for (unsigned i = 0; i < H_BUCKETS; i++) {
			hist[i] += s->hist[i];
			sum_ticks += (double)s->hist[i] * h_value(i);
		}
	}
	r->consumed = sh->consumed;
	r->corrupt = sh->corrupt;
	r->out_of_order = sh->out_of_order;
	/* per-thread: every sequence number up to `committed` must have been seen */
	uint64_t missing = 0;
	for (unsigned t = 0; t < run.nthreads; t++)
		if (sh->received_next[t] < sh->slot[t].committed)
			missing += sh->slot[t].committed - sh->received_next[t];
	uint64_t good = r->consumed >= r->corrupt ? r->consumed - r->corrupt : 0;
	r->lost = r->committed > good ? r->committed - good : 0;
	if (missing > r->lost)
		r->lost = missing;
	uint64_t t_end = sh->t_end_ns ? sh->t_end_ns : mono_ns();
	r->wall_s = (double)(t_end - t_start) / 1e9;
	r->rps = r->wall_s > 0 ? (double)r->consumed / r->wall_s : NAN;
	r->p50 = percentile(hist, r->samples, 0.50);
	r->p99 = percentile(hist, r->samples, 0.99);
	r->p999 = percentile(hist, r->samples, 0.999);
	r->pmax = percentile(hist, r->samples, 1.0);
	r->mean = r->samples ? sum_ticks / (double)r->samples * g_ns_per_tick : NAN;

	bool failed = atomic_load(&sh->failed) || status_bad;
	r->ok = !failed && r->lost == 0 && r->corrupt == 0 && r->out_of_order == 0;
	r->spilled_recs = sh->spilled_recs;
	r->have_rstats = sh->have_rstats;
	r->rstats = sh->rstats;
	r->sndbuf = sh->sndbuf;
	r->rcvbuf = sh->rcvbuf;
	memcpy(r->errmsg, sh->errmsg, sizeof r->errmsg);
	r->errmsg[sizeof r->errmsg - 1] = 0;
	munmap(sh, shsize);
}
