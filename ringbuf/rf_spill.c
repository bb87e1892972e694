/*
 * rf_spill.c - the full-ring spill path (producer side; rf_spill_ingest.c reads
 * the files back).
 *
 * When a claim finds no room within full_wait_ns, the producing process
 * switches to "spilling": its records go, in order, to one append-only file in
 * the ring's spool directory.  The process stays on the file until the ring has
 * room for a SPILL_MARK record; the marker names the sealed file and sits in
 * the ring exactly where the spilled records belong, so the consumer ingests
 * the file there and no producer's records ever overtake each other.
 *
 * Files whose producer died, or closed its handle while the ring was still
 * full, carry no marker: the consumer ingests them once the ring is drained
 * (they are newer than anything their producer left in the ring).
 *
 * File format: 32-byte header, then records of
 *   u32 len | i32 type | u32 crc32(type, payload) | u32 0 | payload[len]
 * A torn last record (producer killed inside write()) was never committed and
 * is counted as abandoned; any other inconsistency quarantines the file as
 * *.corrupt (counted) after delivering the valid records before and after the
 * damaged stretch (found again by their checksums).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "rf_err.h"
#include "rf_ring_int.h"
#include "rf_spill_fmt.h"
#include "rf_tlsbuf.h"

/* A spilled record is built here, then appended to the spill file. */
static __thread struct rf_tlsbuf spill_buf;
static struct rf_tlsbuf_key spill_buf_key = RF_TLSBUF_KEY_INIT;

int rf_spool_dir_check(const char *dir, bool group, bool create)
{
	if (create) {
		if (mkdir(dir, group ? 0770 : 0700) == 0) {
			if (group)
				chmod(dir, 0770); /* created just now: not narrowed by the umask */
		} else if (errno != EEXIST) {
			int e = errno;
			return rf_err_set_sys(e, "spool directory %s: mkdir", dir);
		}
	}
	struct stat st;
	if (lstat(dir, &st) < 0) {
		int e = errno;
		return rf_err_set_sys(e, "spool directory %s", dir);
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0002) ||
	    (!group && (st.st_mode & 0020))) {
		return rf_err_set(EPERM, "spool directory %s must be a directory owned by uid %u "
				  "and not writable by others (mode %03o, owner %u)%s", dir,
				  (unsigned)geteuid(), (unsigned)(st.st_mode & 0777),
				  (unsigned)st.st_uid,
				  st.st_uid != geteuid() ? ": another user took the name; that user or root " 			   "must remove it, or set RINGFLOW_SPOOL_DIR to a directory of your own" : "");
	}
	return 0;
}

/* Open this process's next spill file.  Caller holds spill.lock. */
static int open_spill(rf_ring *r)
{
	struct rf_spill_w *w = &r->spill;
	bool group = r->ring_flags & RF_RING_GROUP;
	int rc = rf_spool_dir_check(r->spool_dir, group, true);
	if (rc)
		return rc;
	uint64_t seq = atomic_fetch_add_explicit(&r->shm->spill_seq, 1, memory_order_relaxed);
	pid_t pid = getpid();
	/* The segment's creation time names the ring exactly: rings whose names
	 * share a prefix, or a ring recreated under the same name, never take
	 * each other's files. */
	snprintf(w->name, sizeof w->name, "spill-%.24s-%016" PRIx64 "-%d-%" PRIu64 "-%" PRIu64 ".open",
		 rf_spill_ring_base(r), r->created_ns, (int)pid, rf_thread_start_time(pid, pid), seq);
	char path[RF_PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", r->spool_dir, w->name);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, group ? 0660 : 0600);
	if (fd >= 0 && group && fchmod(fd, 0660) < 0) { /* not narrowed by the umask */
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		int e = errno;
		return rf_err_set_sys(e, "ring %s: creating spill file %s", r->name, path);
	}
	struct spill_file_hdr fh = {.version = SPILL_VERSION, .hdr_bytes = sizeof fh,
				    .pid = (uint32_t)pid, .created_ns = rf_realtime_ns()};
	memcpy(fh.magic, SPILL_MAGIC, 8);
	if (write(fd, &fh, sizeof fh) != (ssize_t)sizeof fh) {
		int e = errno ? errno : EIO;
		close(fd);
		unlink(path);
		return rf_err_set_sys(e, "ring %s: writing spill file %s", r->name, path);
	}
	w->fd = fd;
	w->records = 0;
	w->bytes = 0;
	return 0;
}

/* A forked child inherits the parent's spill state: the file and the lock
 * (possibly held by a parent thread that does not exist in the child) are
 * the parent's.  The child starts clean; the parent's marker covers the file. */
static void spill_fork_check(rf_ring *r)
{
	pid_t pid = getpid(); /* slow path only: never on the ring's hot path */
	if (pid == r->pid)
		return;
	r->pid = pid;
	pthread_mutex_init(&r->spill.lock, NULL);
	r->spill.fd = -1;
	atomic_store_explicit(&r->spill.active, 0, memory_order_relaxed);
}

#define RF_SPILL_RETRY_NS 1000000000ull /* retry a broken spool after 1 s */

int rf_spill_claim(rf_ring *r, int32_t type, size_t len, struct rf_ring_claim *c)
{
	spill_fork_check(r);
	uint64_t broken = atomic_load_explicit(&r->spill.broken_until, memory_order_relaxed);
	if (broken && rf_now_ns() < broken) {
		atomic_fetch_add_explicit(&r->shm->spill_failed, 1, memory_order_relaxed);
		return -EIO; /* the message of the failure that broke it stands */
	}
	uint8_t *b = rf_tlsbuf_grow(&spill_buf, &spill_buf_key, r->max_record);
	if (!b) {
		atomic_fetch_add_explicit(&r->shm->spill_failed, 1, memory_order_relaxed);
		return rf_err_set(ENOBUFS, "ring %s full and no memory for a spill buffer",
				  r->name);
	}
	c->data = b;
	c->len = (uint32_t)len;
	c->_flags = RF_CLAIM_SPILL;
	c->_pos = (uint64_t)(uint32_t)type;
	return 0;
}

static int append(rf_ring *r, int32_t type, const void *data, uint32_t len)
{
	struct rf_spill_w *w = &r->spill;
	if (w->fd < 0) {
		int rc = open_spill(r);
		if (rc)
			return rc;
	}
	struct spill_rec_hdr rh = {.len = len, .type = type, .crc = rf_spill_crc(type, data, len)};
	struct iovec iov[2] = {{&rh, sizeof rh}, {(void *)data, len}};
	ssize_t want = (ssize_t)(sizeof rh + len);
	ssize_t n = writev(w->fd, iov, 2);
	if (n != want) {
		int e = n < 0 ? errno : ENOSPC;
		/* Cut a short write back off so the file stays well-formed. */
		if (n > 0 && ftruncate(w->fd, (off_t)(sizeof(struct spill_file_hdr) + w->bytes)) < 0)
			e = errno;
		return rf_err_set_sys(e, "ring %s: spill write to %s/%s failed; record lost",
				      r->name, r->spool_dir, w->name);
	}
	w->records++;
	w->bytes += (uint64_t)want;
	atomic_fetch_add_explicit(&r->shm->spilled, 1, memory_order_relaxed);
	return 0;
}

int rf_spill_commit(rf_ring *r, struct rf_ring_claim *c, bool abort)
{
	if (abort)
		return 0;
	int32_t type = (int32_t)c->_pos;
	struct rf_spill_w *w = &r->spill;
	spill_fork_check(r);
	for (;;) {
		pthread_mutex_lock(&w->lock);
		if (atomic_load_explicit(&w->active, memory_order_relaxed) || w->fd >= 0) {
			atomic_store_explicit(&w->active, 1, memory_order_relaxed);
			int rc = append(r, type, c->data, c->len);
			if (rc) {
				atomic_store_explicit(&w->active, 0, memory_order_relaxed);
				atomic_store_explicit(&w->broken_until, rf_now_ns() + RF_SPILL_RETRY_NS,
						      memory_order_relaxed);
			}
			pthread_mutex_unlock(&w->lock);
			if (rc)
				atomic_fetch_add_explicit(&r->shm->spill_failed, 1,
							  memory_order_relaxed);
			return rc ? -EIO : 0;
		}
		pthread_mutex_unlock(&w->lock);
		/* Spilling ended between our claim and commit: the ring has room
		 * again and our earlier records precede the marker. */
		struct rf_ring_claim rc2;
		int rc = rf_ring_claim_ring(r, type, c->len, &rc2, r->full_wait_ns);
		if (rc == 0) {
			memcpy(rc2.data, c->data, c->len);
			return rf_ring_commit(r, &rc2);
		}
		if (rc != -ENOSPC)
			return rc;
		pthread_mutex_lock(&w->lock);
		atomic_store_explicit(&w->active, 1, memory_order_relaxed);
		pthread_mutex_unlock(&w->lock);
	}
}

/* Place the marker for the current file if the ring has room.  Caller holds
 * spill.lock.  Returns 0 when spilling is over. */
static int place_marker(rf_ring *r, uint64_t wait_ns)
{
	struct rf_spill_w *w = &r->spill;
	if (w->fd < 0) {
		atomic_store_explicit(&w->active, 0, memory_order_relaxed);
		return 0;
	}
	struct rf_ring_claim c;
	int rc = rf_ring_claim_ring(r, RF_RING_REC_SPILL_MARK, sizeof(struct rf_spill_mark), &c,
				    wait_ns);
	if (rc)
		return rc;
	close(w->fd); /* every append happened under the lock we hold */
	w->fd = -1;
	struct rf_spill_mark m = {.records = w->records, .bytes = w->bytes};
	snprintf(m.name, sizeof m.name, "%s", w->name);
	memcpy(c.data, &m, sizeof m);
	atomic_store_explicit(&w->active, 0, memory_order_relaxed);
	return rf_ring_commit(r, &c);
}

int rf_spill_try_leave(rf_ring *r)
{
	struct rf_spill_w *w = &r->spill;
	spill_fork_check(r);
	pthread_mutex_lock(&w->lock);
	int rc = atomic_load_explicit(&w->active, memory_order_relaxed) ? place_marker(r, 0) : 0;
	pthread_mutex_unlock(&w->lock);
	return rc;
}

void rf_spill_close(rf_ring *r)
{
	struct rf_spill_w *w = &r->spill;
	spill_fork_check(r);
	pthread_mutex_lock(&w->lock);
	if (w->fd >= 0 && place_marker(r, r->full_wait_ns) != 0) {
		/* Still full: leave the file for the consumer to find. */
		char from[RF_PATH_MAX], to[RF_PATH_MAX];
		snprintf(from, sizeof from, "%s/%s", r->spool_dir, w->name);
		snprintf(to, sizeof to, "%.*s.orphan", (int)(strlen(from) - 5), from);
		close(w->fd);
		w->fd = -1;
		if (rename(from, to) < 0)
			rf_err_set_sys(errno, "ring %s: renaming spill file %s", r->name, from);
	}
	pthread_mutex_unlock(&w->lock);
}
