/*
 * rf_daemon_cycle.c - the daemon's cycle: read a batch from the ring
 * (held: the ring frees it only once it is journaled), journal it, fold it
 * into each run's destination, pump requests to MLflow, then wait on the
 * loop for the ring's wakeup, an answer, a timer or a stop signal.  The
 * spool and memory gate (rf_gate.h) closes the ring while MLflow catches up.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "rf_daemon.h"
#include "rf_daemon_int.h"
#include "rf_decode.h"
#include "rf_detach.h"
#include "rf_redact.h"
#include "rf_version.h"
#include "ringflow.h"

/* Records taken from the ring per batch, journaled as one write. */
#define RF_DRAIN_MAX 4096
/* After a batch of a trickle, how long records gather before the next
 * (wait_for_work): their producers then make no wakeup syscall; a record
 * waits this much longer to be journaled. */
#define RF_LINGER_MS 10

/* Decode (records are untrusted) and fold into the MLflow state. */
static void feed(rf_daemon *d, int type, const void *data, uint32_t len)
{
	rf_decoded dec;
	d->records++;
	if (rf_decode(&dec, data, len) == 0) {
		rf_dests_record(d->dests, type, dec.root);
	} else {
		if (d->malformed++ < 10)
			rf_logf("warn", "malformed record (type %d, %u bytes) skipped: %s", type, len,
				rf_err_msg());
	}
	rf_decoded_free(&dec);
}

void rf_daemon_on_replay(int type, const void *data, uint32_t len, void *arg)
{
	feed(arg, type, data, len);
}

static void wait_orphan_room(rf_daemon *d);

static int on_rec(const struct rf_ring_rec *rec, void *arg)
{
	rf_daemon *d = arg;
	if (rf_journal_seen(d->journal, rec))
		return 0; /* journaled before a restart; the ring had not freed it */
	rf_journal_append(d->journal, rec);
	d->journaled_since_reset++;
	d->rec_orphan = rec->flags & RF_RING_REC_ORPHAN;
	if (d->rec_orphan && ++d->orphan_recs % 1024 == 0)
		wait_orphan_room(d);
	feed(d, rec->type, rec->data, rec->len);
	return 0;
}

void rf_daemon_on_signal(rf_loop *l, int fd, unsigned events, void *arg)
{
	(void)l;
	(void)events;
	rf_daemon *d = arg;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof si) == sizeof si)
		d->stopping = 1;
}

/* Long ring work (a large or damaged spill file) stops for SIGTERM/SIGINT:
 * they are blocked and read from the signalfd by the loop, so a pending one
 * is seen with sigpending(). */
int rf_daemon_stop_requested(void *arg)
{
	rf_daemon *d = arg;
	sigset_t p;
	return d->stopping ||
	       (sigpending(&p) == 0 && (sigismember(&p, SIGTERM) || sigismember(&p, SIGINT)));
}

static void on_futex(rf_loop *l, void *arg)
{
	(void)l;
	(void)arg; /* the wakeup itself is the event: the loop goes round */
}

/* The spool and memory bounds (rf_gate.h): closed = take nothing from the ring. */
static bool gate_closed(rf_daemon *d)
{
	/* Asked at every batch: only what the gate reads (the full stats walk
	 * every trace held). */
	struct rf_track_stats ts;
	struct rf_http_stats hs;
	rf_dests_track_stats(d->dests, &ts);
	rf_http_stats(d->http, &hs);
	/* Traces weigh their bytes (complete ones past half of it wait on disk). */
	struct rf_gate_in in = {.now_ms = rf_loop_now_ms(), .journal_bytes = rf_journal_size(d->journal),
				.journal_failing = rf_journal_failing(d->journal),
				.pending = ts.pending, .trace_bytes = rf_dests_trace_mem(d->dests),
				.http_ok = hs.ok, .http_pending = rf_http_pending(d->http)};
	if (rf_gate_update(&d->gate, &in)) {
		char msg[512];
		rf_gate_describe(&d->gate, &in, msg, sizeof msg);
		rf_logf(rf_gate_closed(&d->gate) ? "warn" : "info", "%s", msg);
	}
	if (d->gate.reason == RF_GATE_MEMORY) {
		struct rf_traces_stats xs;
		rf_dests_traces_stats(d->dests, &xs);
		if (xs.spans_unsent)
			rf_dests_pressure(d->dests); /* held spans must be able to drain */
	}
	return rf_gate_closed(&d->gate);
}

/* A spill file comes in as one batch (hundreds of MB): the memory bound
 * stops it too (asked every MiB of it).  The file stays and is read again
 * from its start once the gate opens; what was journaled is skipped.  Not
 * an orphan file (its producer died before its marker was in the ring): its
 * records have no stable position, the journal cannot tell which were
 * taken, so it is read whole, waiting for room (wait_orphan_room). */
int rf_daemon_ring_interrupt(void *arg)
{
	rf_daemon *d = arg;
	if (rf_daemon_stop_requested(d))
		return 1;
	return !d->rec_orphan && gate_closed(d) && d->gate.reason == RF_GATE_MEMORY;
}

/* An orphan spill file cannot be stopped mid-way (rf_daemon_ring_interrupt):
 * while the memory gate is closed, its reading waits here, every 1,024
 * records, and the loop keeps uploading (and serving status) until the gate
 * opens or a stop is asked for. */
static void wait_orphan_room(rf_daemon *d)
{
	while (!rf_daemon_stop_requested(d) && gate_closed(d) && d->gate.reason == RF_GATE_MEMORY) {
		rf_dests_pump(d->dests, false);
		rf_daemon_ops_tick(d, false, 0);
		rf_loop_run_once(d->loop, 50);
	}
}

/* One batch from the ring into the journal and the destinations: how many
 * records (0 also when the ring could not be read: *backoff). */
static int drain(rf_daemon *d, bool *closed, bool *backoff)
{
	/* Held: the ring frees the batch only once it is journaled. */
	int n = rf_ring_consume_held(d->ring, on_rec, d, RF_DRAIN_MAX);
	unsigned long long more = 0;
	if (n == -EINTR) {
		if (d->stopping) /* else the memory gate: logged as it closed */
			rf_logf("info", "%s", rf_ring_errmsg()); /* read again at the next start */
	} else if (n < 0) {
		/* Not a busy loop: the next try waits (backoff). */
		if (rf_rate_ok(&d->rl_ring_err, rf_loop_now_ms(), &more))
			rf_logf("error", "%s (%llu more like it)", rf_ring_errmsg(), more);
	}
	if (n < 0) {
		*backoff = true;
		n = 0;
	}
	rf_daemon_ring_damage(d);
	if (rf_journal_flush(d->journal) < 0) {
		if (rf_rate_ok(&d->rl_journal, rf_loop_now_ms(), &more))
			rf_logf("error", "%s (%llu more like it)", rf_err_msg(), more);
		*closed = gate_closed(d); /* keep the batch in the ring */
	} else {
		rf_ring_release(d->ring);
	}
	return n;
}

/* Did the batch of n records find a trickle?  It did not fill, and it read
 * under a sixteenth of the ring, which is under a sixteenth full after it:
 * what producers write while we linger fits many times over, so none waits
 * or spills for it.  Not while stopping: the flush window starts only once
 * a drain finds nothing. */
static bool trickle(rf_daemon *d, int n)
{
	struct rf_ring_stats st;
	if (rf_ring_stats(d->ring, &st))
		return false;
	uint64_t read = st.head - d->ring_head;
	d->ring_head = st.head;
	return n < RF_DRAIN_MAX && !d->stopping && read < st.capacity / 16 &&
	       st.tail - st.head < st.capacity / 16;
}

/* Wait on the loop: after a batch, RF_LINGER_MS while records trickle in,
 * else not at all (more may be waiting); 50 ms while the ring is not read;
 * else until the ring's wakeup (FUTEX_WAIT on its parked word), an answer,
 * a timer or a signal. */
static void wait_for_work(rf_daemon *d, int n, bool ring_unread, uint64_t stop_at)
{
	if (n > 0) {
		/* Not parked while a trickle gathers, so its producers skip the
		 * wakeup syscall (rf_ring_wake_consumer), and one turn of ours
		 * takes many of its records (one journal write, one pump). */
		int linger = RF_LINGER_MS < d->c->flush_ms ? RF_LINGER_MS : (int)d->c->flush_ms;
		rf_loop_run_once(d->loop, trickle(d, n) ? linger : 0);
		return;
	}
	if (ring_unread && !stop_at) { /* just serve MLflow */
		rf_loop_run_once(d->loop, 50);
		return;
	}
	uint32_t *word, val;
	int wait_ms = (int)(d->c->flush_ms < 50 ? d->c->flush_ms : 50);
	if (!stop_at && rf_ring_park(d->ring, &word, &val)) {
		if (rf_loop_futex_wait(d->loop, word, val, on_futex, d) != 0)
			wait_ms = 2; /* no io_uring futex on this kernel: poll */
		rf_loop_run_once(d->loop, wait_ms);
		rf_ring_unpark(d->ring);
	} else {
		rf_loop_run_once(d->loop, stop_at ? 10 : 0);
	}
}

int rf_daemon_run(rf_daemon *d)
{
	rf_detach_ready(0); /* serving: `ringflowd --detach` exits 0 */
	rf_logf("info", "ringflowd %s (pid %d) serving ring %s -> %s (experiment %s%s)", RF_VERSION,
		(int)getpid(), d->c->ring ? d->c->ring : "(default)", d->shown_uri,
		d->c->experiment ? d->c->experiment : "inspect_ai",
		d->c->idle_exit_ms ? "; exits when idle" : "");

	uint64_t idle_since = rf_loop_now_ms(), last_report = idle_since, stop_at = 0;
	for (;;) {
		int n = 0;
		bool backoff = false;
		bool closed = gate_closed(d);
		if (rf_journal_failing(d->journal) && rf_journal_flush(d->journal) == 0) {
			rf_ring_release(d->ring); /* the held batch is journaled at last */
			closed = gate_closed(d);
		}
		if ((!d->stopping || !stop_at) && !closed)
			n = drain(d, &closed, &backoff);
		if (d->stopping && !stop_at && n == 0) {
			stop_at = rf_loop_now_ms() + (uint64_t)d->c->shutdown_ms;
			rf_http_retry_now(d->http); /* the flush window is short: try at once */
			rf_logf("info", "stopping: flushing for at most %ld ms", d->c->shutdown_ms);
		}
		rf_dests_pump(d->dests, stop_at != 0);
		rf_daemon_ops_tick(d, false, 0);
		uint64_t now = rf_loop_now_ms();
		bool idle = n == 0 && rf_dests_idle(d->dests) && rf_http_pending(d->http) == 0;
		if (idle && d->journaled_since_reset && rf_dests_empty(d->dests)) {
			if (rf_journal_reset(d->journal) == 0) /* all of it is in MLflow */
				d->journaled_since_reset = 0;
		}
		if (stop_at && (idle || now >= stop_at))
			break;
		if (!idle)
			idle_since = now;
		else if (d->c->idle_exit_ms > 0 && now - idle_since >= (uint64_t)d->c->idle_exit_ms) {
			rf_logf("info", "idle for %ld ms with nothing pending: exiting (the hook starts a "
				"sidecar again at the next eval)", d->c->idle_exit_ms);
			break;
		}
		if (now - last_report >= 60000) {
			rf_daemon_report(d, "info");
			last_report = now;
		}
		wait_for_work(d, n, closed || backoff, stop_at);
	}
	bool left = !rf_dests_idle(d->dests) || !rf_dests_empty(d->dests);
	rf_daemon_report(d, left ? "warn" : "info");
	if (left) /* the shutdown window ran out: say where the rest is */
		rf_logf("warn", "stopping with work not yet in MLflow (%llu traces held): it stays in "
			"the journal %s and is sent at the next start",
			rf_daemon_traces_held(d), d->jpath);
	return 0;
}
