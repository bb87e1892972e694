/*
 * rf_status.c - the daemon's published counters (see rf_status.h).
 *
 * Seqlock over an array of atomic words: the writer makes the sequence odd,
 * stores every word (relaxed), then makes it even with a release store; a
 * reader loads the sequence (acquire), copies the words (relaxed), issues an
 * acquire fence and checks the sequence did not move and was even.  Word-wise
 * atomics keep the copy free of data races (a memcpy would race with the
 * writer, which is undefined behaviour even though the result is discarded).
 */
#include "rf_status.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rf_err.h"
#include "rf_ring.h"
#include "rf_safefile.h"

#define WORDS ((sizeof(struct rf_status_snap) + 7) / 8)

struct rf_status_shm {
	_Atomic uint64_t seq;
	_Atomic uint64_t w[WORDS];
};

_Static_assert(sizeof(struct rf_status_snap) % 8 == 0, "snapshot is whole words");
_Static_assert(sizeof(struct rf_status_shm) <= 4096, "stats block fits a page");

struct rf_status {
	struct rf_status_shm *m;
	int fd;
};

/* The ring's name without its leading '/' (names are "/base"). */
static const char *ring_base(const char *ring, char *buf, size_t len)
{
	if (!ring) {
		rf_ring_default_name(buf, len);
		ring = buf;
	}
	return ring[0] == '/' ? ring + 1 : ring;
}

int rf_status_path(char *buf, size_t len, const char *spool, const char *ring)
{
	char name[128];
	int n = snprintf(buf, len, "%s/ringflowd-%s.stats", spool, ring_base(ring, name, sizeof name));
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int rf_status_open(rf_status **out, const char *path)
{
	*out = NULL;
	rf_status *s = calloc(1, sizeof *s);
	if (!s)
		return rf_err_set(ENOMEM, "stats file %s: out of memory", path);
	/* Owner-only whatever the umask or an earlier file said, and only a
	 * file of our own (the spool may be the group's). */
	s->fd = rf_safe_open(path, O_RDWR | O_CREAT, 0600, rf_ring_group_requested());
	if (s->fd < 0) {
		int e = s->fd;
		free(s);
		return e;
	}
	if (ftruncate(s->fd, sizeof *s->m) < 0)
		goto fail;
	s->m = mmap(NULL, sizeof *s->m, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
	if (s->m == MAP_FAILED)
		goto fail;
	*out = s;
	return 0;
fail:;
	int e = errno;
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	return rf_err_set_sys(e, "stats file %s", path);
}

void rf_status_publish(rf_status *s, const struct rf_status_snap *snap)
{
	if (!s)
		return;
	uint64_t w[WORDS];
	memcpy(w, snap, sizeof *snap);
	struct rf_status_snap *h = (struct rf_status_snap *)w;
	h->magic = RF_STATUS_MAGIC;
	h->version = RF_STATUS_VERSION;
	uint64_t seq = atomic_load_explicit(&s->m->seq, memory_order_relaxed);
	/* Odd: a reader that sees it (or sees it change) retries. */
	atomic_store_explicit(&s->m->seq, seq + 1, memory_order_relaxed);
	/* Orders the odd sequence before the word stores (pairs with the
	 * reader's acquire fence before its second load of seq). */
	atomic_thread_fence(memory_order_release);
	for (size_t i = 0; i < WORDS; i++)
		atomic_store_explicit(&s->m->w[i], w[i], memory_order_relaxed);
	/* Release: pairs with the reader's acquire load of seq. */
	atomic_store_explicit(&s->m->seq, seq + 2, memory_order_release);
}

void rf_status_close(rf_status *s)
{
	if (!s)
		return;
	munmap(s->m, sizeof *s->m);
	close(s->fd);
	free(s);
}

/* The seqlock's read side (see the top of this file). */
static int read_block(const struct rf_status_shm *m, struct rf_status_snap *out)
{
	uint64_t w[WORDS];
	int rc = -EAGAIN;
	for (int attempt = 0; attempt < 1000; attempt++) {
		uint64_t s1 = atomic_load_explicit(&m->seq, memory_order_acquire);
		if (s1 & 1) {
			sched_yield();
			continue;
		}
		for (size_t i = 0; i < WORDS; i++)
			w[i] = atomic_load_explicit(&m->w[i], memory_order_relaxed);
		/* Pairs with the writer's release fence: if any word came from a
		 * later update, the sequence load below sees it moved. */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&m->seq, memory_order_relaxed) == s1) {
			rc = 0;
			break;
		}
	}
	if (rc)
		return rc;
	memcpy(out, w, sizeof *out);
	if (out->magic != RF_STATUS_MAGIC || out->version != RF_STATUS_VERSION)
		return -EPROTO;
	out->last_error[sizeof out->last_error - 1] = 0;
	out->tracking_uri[sizeof out->tracking_uri - 1] = 0;
	out->experiment[sizeof out->experiment - 1] = 0;
	return 0;
}

int rf_status_read(const char *path, struct rf_status_snap *out)
{
	int fd = rf_safe_open(path, O_RDONLY, 0, true); /* only our own file counts */
	if (fd < 0)
		return fd;
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
	} else if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		rc = -EPERM; /* someone else's, or readable by others: not ours to trust */
	} else if ((size_t)st.st_size < sizeof(struct rf_status_shm)) {
		rc = -EPROTO;
	}
	if (rc) {
		close(fd);
		return rc;
	}
	struct rf_status_shm *m = mmap(NULL, sizeof *m, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -errno;
	rc = read_block(m, out);
	munmap(m, sizeof *m);
	return rc;
}

int rf_status_read_own(rf_status *s, struct rf_status_snap *out)
{
	return read_block(s->m, out);
}

int rf_status_spool_usage(const char *spool, const char *ring, uint64_t ring_created_ns,
			  uint64_t *bytes, uint64_t *files)
{
	char name[128], spill[96], journal[160], defname[64];
	const char *base = ring_base(ring, name, sizeof name);
	/* As rf_spill.c names them: spill-<base (24 chars max)>-<ring id>-... */
	snprintf(spill, sizeof spill, "spill-%.24s-%016" PRIx64 "-", base, ring_created_ns);
	snprintf(journal, sizeof journal, "journal-%s.rfj", base);
	/* ringflowd names the default ring's journal "default". */
	snprintf(defname, sizeof defname, "ringflow-%u", (unsigned)getuid());
	bool is_default = !strcmp(base, defname);
	*bytes = *files = 0;
	DIR *d = opendir(spool);
	if (!d)
		return -errno;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, spill, strlen(spill)) && strcmp(e->d_name, journal) &&
		    !(is_default && !strcmp(e->d_name, "journal-default.rfj")))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
			*bytes += (uint64_t)st.st_size;
			*files += 1;
		}
	}
	closedir(d);
	return 0;
}

#define LOSS(f, h) {#f, h, offsetof(struct rf_status_snap, f)}
const struct rf_status_loss rf_status_loss_table[] = {
	LOSS(rejected, "entities MLflow refused as invalid (or a proxy as too large)"),
	LOSS(malformed, "records the decoder refused"),
	LOSS(invalid, "records without a usable id"),
	LOSS(bad_fields, "record fields of the wrong type, ignored"),
	LOSS(runs_failed, "runs MLflow refused to create (their data is in rejected)"),
	LOSS(artifacts_failed, "artifacts not uploaded"),
	LOSS(creds_refused, "requests not sent: credentials for another origin"),
	LOSS(keys_capped, "metrics dropped: too many metric names in their run"),
	LOSS(traces_failed, "traces MLflow refused"),
	LOSS(spans_failed, "spans MLflow refused"),
	LOSS(spans_forced, "spans that never ended, closed as ERROR"),
	LOSS(spans_capped, "spans dropped: their trace or all traces held too many"),
	LOSS(traces_late, "records for a trace already uploaded"),
	LOSS(export_failed, "spans the OTLP collector refused"),
	LOSS(journal_corrupt, "corrupt journal stretches skipped at replay"),
	LOSS(dropped, "records producers dropped (ring full, DROP policy)"),
	LOSS(spill_failed, "records producers could neither put in the ring nor spill"),
	LOSS(spill_corrupt, "spill files quarantined as corrupt"),
	LOSS(abandoned, "claims of dead producers turned into padding"),
	LOSS(ring_corrupt, "corrupt ring records skipped (their bytes: ring_corrupt_bytes)"),
	LOSS(refused_records, "records of runs naming a tracking URI ringflowd cannot serve"),
};
#undef LOSS
const size_t rf_status_loss_count = sizeof rf_status_loss_table / sizeof rf_status_loss_table[0];

uint64_t rf_status_losses(const struct rf_status_snap *s, char *buf, size_t cap)
{
	uint64_t sum = 0;
	size_t used = 0;
	if (cap)
		buf[0] = 0;
	for (size_t i = 0; i < rf_status_loss_count; i++) {
		uint64_t v = rf_status_loss_value(s, i);
		if (!v)
			continue;
		sum += v;
		if (used < cap) {
			int n = snprintf(buf + used, cap - used, "%s%s %llu", used ? ", " : "",
					 rf_status_loss_table[i].name, (unsigned long long)v);
			used += n > 0 ? (size_t)n : 0;
		}
	}
	return sum;
}

const char *rf_status_gate_name(uint64_t gate)
{
	switch (gate) {
	case RF_STATUS_GATE_OPEN: return "open";
	case RF_STATUS_GATE_SPOOL_FULL: return "spool_full";
	case RF_STATUS_GATE_MEMORY: return "memory";
	case RF_STATUS_GATE_JOURNAL: return "journal";
	default: return "unknown";
	}
}

void rf_status_gate_describe(const struct rf_status_snap *s, char *buf, size_t cap)
{
	const double mib = 1024.0 * 1024.0;
	switch (s->gate) {
	case RF_STATUS_GATE_OPEN:
		snprintf(buf, cap, "%s", "");
		break;
	case RF_STATUS_GATE_SPOOL_FULL:
		snprintf(buf, cap, "spool full: the journal reached RINGFLOW_SPOOL_MAX_MB and MLflow "
				   "answers nothing; until it answers");
		break;
	case RF_STATUS_GATE_MEMORY:
		/* As rf_gate.c decides: entities first, then the traces' weight. */
		if (s->pending_max && s->pending > s->pending_max / 2)
			snprintf(buf, cap, "memory bound: %llu entities wait for MLflow (bound %llu, "
					   "RINGFLOW_PENDING_MAX); until they drain to %llu",
				 (unsigned long long)s->pending, (unsigned long long)s->pending_max,
				 (unsigned long long)(s->pending_max / 2));
		else
			snprintf(buf, cap, "memory bound: traces held weigh %.1f MiB (bound %.1f MiB, "
					   "RINGFLOW_TRACE_MEM_MB; open traces or traces partly sent); "
					   "until they drain to %.1f MiB",
				 (double)s->trace_mem_bytes / mib, (double)s->trace_mem_max / mib,
				 (double)s->trace_mem_max / 2 / mib);
		break;
	case RF_STATUS_GATE_JOURNAL:
		snprintf(buf, cap, "the journal cannot be written (see the last error); until a "
				   "write succeeds");
		break;
	default:
		snprintf(buf, cap, "reason %llu (unknown to this ringflowd)", (unsigned long long)s->gate);
		break;
	}
}
