/*
 * rf_spill_ingest.c - the consumer's side of spill files: delivering them in
 * order, finding orphans, quarantining damaged ones.
 *
 * A spill file is untrusted: any process of the user (or of the group, on a
 * group ring) can write or truncate it, even while it is read.  So it is
 * read with pread() into a window, never mapped (a file truncated under a
 * mapping kills the reader with SIGBUS), and a read that comes back short
 * ends the file there.  Damage does not end it: the scan resumes at the next
 * whole record whose checksum holds.  That search is linear: a position is
 * checksummed only when its header is well-formed and the next header after
 * it is too (or the file ends there), and the bytes checksummed while
 * searching are capped at the file's size plus 1 MiB; past that, the rest of
 * the file counts as damaged.  A scan can be interrupted
 * (rf_ring_set_interrupt): the file is then left for the next consumer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rf_err.h"
#include "rf_ring_int.h"
#include "rf_spill_fmt.h"

#define RF_SPILL_WINDOW (4u << 20)  /* bytes read at a time */
#define RF_SPILL_POLL (1u << 20)    /* check for an interrupt every this many bytes of work */

/* The bytes of a spill file: a whole image in memory (the fuzz target, the
 * tests), or a file read through a window. */
struct spill_src {
	const uint8_t *m; /* the image, or NULL: read from fd */
	int fd;
	size_t size;      /* as fstat said when the file was opened */
	uint8_t *buf;
	size_t boff, blen, bcap;
	bool short_read;  /* the file shrank while it was read */
};

/* [off, off + len) contiguous, or NULL if the file (now) ends before. */
static const uint8_t *src_get(struct spill_src *s, size_t off, size_t len)
{
	if (off > s->size || len > s->size - off)
		return NULL;
	if (s->m)
		return s->m + off;
	if (off >= s->boff && len <= s->blen && off - s->boff <= s->blen - len)
		return s->buf + (off - s->boff);
	size_t want = len > RF_SPILL_WINDOW ? len : RF_SPILL_WINDOW;
	if (want > s->size - off)
		want = s->size - off;
	if (want > s->bcap) {
		uint8_t *b = realloc(s->buf, want);
		if (!b) {
			s->short_read = true;
			return NULL;
		}
		s->buf = b;
		s->bcap = want;
	}
	size_t got = 0;
	while (got < want) {
		ssize_t n = pread(s->fd, s->buf + got, want - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	s->boff = off;
	s->blen = got;
	if (got < len) {
		s->short_read = true;
		s->size = off + got; /* what is left of it */
		return NULL;
	}
	return s->buf;
}

static bool hdr_ok(const struct spill_rec_hdr *rh, size_t maxrec)
{
	return rh->len <= maxrec && rh->type >= 1 && !rh->_zero;
}

struct scan {
	struct spill_src *src;
	size_t maxrec;
	uint64_t budget;     /* bytes that may still be checksummed while resyncing */
	uint64_t polled;     /* work since the last interrupt check */
	int (*interrupted)(void *);
	void *iarg;
	struct rf_spill_report *rep;
};

static bool work(struct scan *sc, uint64_t bytes)
{
	sc->rep->work += bytes;
	sc->polled += bytes;
	if (sc->polled < RF_SPILL_POLL || !sc->interrupted)
		return false;
	sc->polled = 0;
	if (sc->interrupted(sc->iarg))
		sc->rep->interrupted = true;
	return sc->rep->interrupted;
}

/* The offset of the next whole, checksummed record after `from` (or the
 * file's size: none, the search budget is spent, or interrupted). */
static size_t resync(struct scan *sc, size_t from)
{
	struct spill_src *s = sc->src;
	struct spill_rec_hdr rh, nh;
	for (size_t p = from; p + sizeof rh <= s->size; p++) {
		if ((p & 4095) == 0 && work(sc, 4096))
			return s->size;
		const uint8_t *h = src_get(s, p, sizeof rh);
		if (!h)
			break;
		memcpy(&rh, h, sizeof rh);
		if (!hdr_ok(&rh, sc->maxrec) || s->size - p - sizeof rh < rh.len)
			continue;
		/* Cheap test first: a record is followed by another header or
		 * by the end of the file (a torn last header included). */
		size_t q = p + sizeof rh + rh.len;
		if (s->size - q >= sizeof nh) {
			const uint8_t *n = src_get(s, q, sizeof nh);
			if (!n)
				break;
			memcpy(&nh, n, sizeof nh);
			if (!hdr_ok(&nh, sc->maxrec))
				continue;
		}
		if (rh.len > sc->budget) {
			sc->budget = 0;
			sc->rep->budget_spent = true;
			return s->size; /* the rest of the file counts as damaged */
		}
		sc->budget -= rh.len;
		const uint8_t *pl = src_get(s, p + sizeof rh, rh.len);
		if (!pl)
			break;
		sc->rep->crc_bytes += rh.len;
		if (work(sc, rh.len))
			return s->size;
		if (rf_spill_crc(rh.type, pl, rh.len) == rh.crc)
			return p;
	}
	return s->size;
}

/* Deliver the valid records of a spill file in order (see rf_spill_scan). */
static int scan_src(struct scan *sc, uint64_t pos, uint32_t flags, rf_ring_handler fn, void *arg)
{
	struct spill_src *s = sc->src;
	struct rf_spill_report *rep = sc->rep;
	struct spill_file_hdr fh;
	size_t off = sizeof fh;
	int n = 0;
	const uint8_t *h = src_get(s, 0, sizeof fh);
	if (!h) {
		rep->bad = "truncated file header";
		return 0;
	}
	memcpy(&fh, h, sizeof fh);
	if (memcmp(fh.magic, SPILL_MAGIC, 8) || fh.version != SPILL_VERSION ||
	    fh.hdr_bytes != sizeof fh) {
		rep->bad = "bad file header";
		return 0;
	}
	for (uint32_t sub = 0; off < s->size && !rep->interrupted;) {
		struct spill_rec_hdr rh;
		if (s->size - off < sizeof rh) {
			rep->torn = true;
			break; /* torn last record: never committed */
		}
		const uint8_t *hp = src_get(s, off, sizeof rh);
		if (!hp)
			break;
		memcpy(&rh, hp, sizeof rh);
		const char *why = NULL;
		const uint8_t *payload = NULL;
		if (!hdr_ok(&rh, sc->maxrec))
			why = "bad record header";
		else if (s->size - off - sizeof rh < rh.len)
			why = "torn";
		else if (!(payload = src_get(s, off + sizeof rh, rh.len)))
			break; /* shrank while read */
		else if (rf_spill_crc(rh.type, payload, rh.len) != rh.crc)
			why = "checksum mismatch";
		if (why) {
			/* Damage is not the end: go on at the next whole record whose
			 * checksum holds (deterministic, so `sub` numbers are the
			 * same if the file is read again after a consumer crash). */
			size_t next = resync(sc, off + 1);
			if (rep->interrupted)
				break;
			if (next == s->size && !strcmp(why, "torn") && !s->short_read &&
			    !rep->budget_spent) {
				rep->torn = true;
				break; /* the last record, torn: never committed */
			}
			if (!rep->bad)
				rep->bad = strcmp(why, "torn") ? why : "bad record length";
			rep->skipped += next - off;
			off = next;
			continue;
		}
		struct rf_ring_rec rec = {.pos = pos, .sub = sub++, .flags = flags, .type = rh.type,
					  .len = rh.len, .data = payload};
		fn(&rec, arg);
		n++;
		off += sizeof rh + rh.len;
		if (work(sc, sizeof rh + rh.len))
			break;
	}
	if (s->short_read && !rep->bad)
		rep->bad = "file truncated while it was read";
	if (rep->budget_spent)
		rep->bad = "damage too dense to search through (resync budget spent)";
	return n;
}

static void scan_init(struct scan *sc, struct spill_src *s, size_t maxrec,
		      struct rf_spill_report *rep)
{
	int (*in)(void *) = rep->interrupted_fn;
	void *iarg = rep->interrupt_arg;
	memset(rep, 0, sizeof *rep);
	*sc = (struct scan){.src = s, .maxrec = maxrec, .budget = (uint64_t)s->size + (1u << 20),
			    .interrupted = in, .iarg = iarg, .rep = rep};
}

int rf_spill_scan(const uint8_t *m, size_t size, size_t maxrec, uint64_t pos, uint32_t flags,
		  rf_ring_handler fn, void *arg, struct rf_spill_report *rep)
{
	struct spill_src s = {.m = m, .fd = -1, .size = size};
	struct scan sc;
	scan_init(&sc, &s, maxrec, rep);
	if (size < sizeof(struct spill_file_hdr)) {
		rep->bad = "truncated file header";
		return 0;
	}
	return scan_src(&sc, pos, flags, fn, arg);
}

/* Deliver every valid record of `path` (sealed, or its writer is gone; but
 * read as if it could still change).  Returns the count delivered, or
 * -EINTR when interrupted (the file stays for the next consumer). */
static int deliver_file(rf_ring *r, const char *path, uint64_t pos, rf_ring_handler fn,
			void *arg, bool orphan)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		return rf_err_set_sys(e, "ring %s: opening spill file %s", r->name, path);
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return rf_err_set(EINVAL, "ring %s: spill file %s is not a regular file", r->name,
				  path);
	}
	struct spill_src s = {.fd = fd, .size = (size_t)st.st_size};
	struct rf_spill_report rep = {.interrupted_fn = r->interrupted,
				      .interrupt_arg = r->interrupt_arg};
	struct scan sc;
	scan_init(&sc, &s, r->max_record, &rep);
	int n = scan_src(&sc, pos, RF_RING_REC_SPILLED | (orphan ? RF_RING_REC_ORPHAN : 0), fn, arg);
	close(fd);
	free(s.buf);
	atomic_fetch_add_explicit(&r->shm->spill_ingested, (uint64_t)n, memory_order_relaxed);
	if (rep.interrupted)
		return rf_err_set(EINTR, "ring %s: reading spill file %s interrupted after %d "
				  "records", r->name, path, n);
	if (rep.torn)
		atomic_fetch_add_explicit(&r->shm->abandoned, 1, memory_order_relaxed);
	if (rep.bad) {
		char q[RF_PATH_MAX + 16];
		snprintf(q, sizeof q, "%s.corrupt", path);
		rename(path, q);
		atomic_fetch_add_explicit(&r->shm->spill_corrupt, 1, memory_order_relaxed);
		rf_err_set(EPROTO, "ring %s: spill file %s: %s; %zu bytes skipped, %d records "
			   "delivered; quarantined as %s", r->name, path, rep.bad, rep.skipped, n,
			   q);
	} else if (orphan) { /* a marker's file goes once head passed the marker */
		unlink(path);
	}
	return n;
}

static bool valid_name(const char *name, size_t cap)
{
	const char *end = memchr(name, 0, cap);
	return end && strncmp(name, "spill-", 6) == 0 && !strchr(name, '/') &&
	       (size_t)(end - name) > 11 && strcmp(end - 5, ".open") == 0;
}

static bool parse_name(rf_ring *r, const char *name, pid_t *pid, uint64_t *start);

int rf_spill_ingest_marker(rf_ring *r, uint64_t pos, const void *mark, uint32_t len,
			   rf_ring_handler fn, void *arg)
{
	struct rf_spill_mark m;
	if (len != sizeof m) {
		atomic_fetch_add_explicit(&r->shm->spill_corrupt, 1, memory_order_relaxed);
		rf_err_set(EPROTO, "ring %s: spill marker of %u bytes ignored", r->name, len);
		return 0;
	}
	memcpy(&m, mark, sizeof m);
	pid_t mpid;
	uint64_t mstart;
	if (!valid_name(m.name, sizeof m.name) || !parse_name(r, m.name, &mpid, &mstart)) {
		atomic_fetch_add_explicit(&r->shm->spill_corrupt, 1, memory_order_relaxed);
		rf_err_set(EPROTO, "ring %s: spill marker with invalid file name ignored", r->name);
		return 0;
	}
	/* Take the file over under a name that carries the marker's position
	 * before delivering: if this consumer dies before head passes the
	 * marker, the marker is seen again and finds the file by that name;
	 * if it dies after, the orphan scan knows the file was delivered. */
	char path[RF_PATH_MAX], owned[RF_PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/%s", r->spool_dir, m.name);
	snprintf(owned, sizeof owned, "%s.p%" PRIu64, path, pos);
	if (rename(path, owned) < 0 && errno != ENOENT) {
		int e = errno;
		return rf_err_set_sys(e, "ring %s: taking over spill file %s", r->name, path);
	}
	int n = deliver_file(r, owned, pos, fn, arg, false);
	if (n == -ENOENT) {
		atomic_fetch_add_explicit(&r->shm->spill_corrupt, 1, memory_order_relaxed);
		rf_err_set(ENOENT, "ring %s: spill file %s named by a marker is missing "
			   "(%" PRIu64 " records lost)", r->name, path, m.records);
		return 0;
	}
	if (n >= 0)
		snprintf(r->pending_unlink, sizeof r->pending_unlink, "%s", owned);
	return n;
}

/* Parse "spill-<base>-<ring id>-<pid>-<start>-<seq>.<kind>" of this ring
 * (exactly: base and ring id must match), from the right, since a base may
 * contain '-'. */
static bool parse_name(rf_ring *r, const char *name, pid_t *pid, uint64_t *start)
{
	char buf[128];
	if (strncmp(name, "spill-", 6) || strlen(name) >= sizeof buf)
		return false;
	snprintf(buf, sizeof buf, "%s", name + 6);
	char *dot = strchr(buf, '.');
	if (!dot)
		return false;
	*dot = 0;
	char *f[4]; /* seq, start, pid, ring id (right to left) */
	for (int i = 0; i < 4; i++) {
		char *dash = strrchr(buf, '-');
		if (!dash)
			return false;
		*dash = 0;
		f[i] = dash + 1;
	}
	char base[32];
	snprintf(base, sizeof base, "%.24s", rf_spill_ring_base(r));
	char id[32];
	snprintf(id, sizeof id, "%016" PRIx64, r->created_ns);
	if (strcmp(buf, base) || strcmp(f[3], id))
		return false;
	*pid = (pid_t)strtol(f[2], NULL, 10);
	*start = strtoull(f[1], NULL, 10);
	return true;
}

int rf_spill_ingest_orphans(rf_ring *r, rf_ring_handler fn, void *arg)
{
	DIR *d = opendir(r->spool_dir);
	if (!d)
		return 0;
	uint64_t head = r->head; /* the consumer's own copy, not the segment's */
	int total = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		pid_t pid;
		uint64_t start;
		if (!parse_name(r, e->d_name, &pid, &start))
			continue;
		size_t nl = strlen(e->d_name);
		char path[RF_PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", r->spool_dir, e->d_name);
		const char *p = strstr(e->d_name, ".open.p");
		if (p) {
			/* Taken over by a marker: delivered once head passed it. */
			uint64_t mpos = strtoull(p + 7, NULL, 10);
			if (mpos < head)
				unlink(path);
			continue;
		}
		bool orphan = nl > 7 && strcmp(e->d_name + nl - 7, ".orphan") == 0;
		bool open_dead = nl > 5 && strcmp(e->d_name + nl - 5, ".open") == 0 &&
				 !rf_thread_alive(pid, pid, start);
		if (!orphan && !open_dead)
			continue;
		int n = deliver_file(r, path, head, fn, arg, true);
		if (n == -EINTR) { /* the file stays for the next scan */
			closedir(d);
			return -EINTR;
		}
		if (n > 0)
			total += n;
	}
	closedir(d);
	return total;
}
