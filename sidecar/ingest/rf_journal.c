/*
 * rf_journal.c - see rf_journal.h.
 *
 * File: a 48-byte header, then records
 *   u32 len | i32 type | u32 crc32(type, pos, sub, payload) | u32 sub | u64 pos | payload
 * Orphan spill records (RF_RING_REC_ORPHAN: no stable ring position) carry
 * pos = UINT64_MAX and are never matched by rf_journal_seen(): a sidecar
 * killed while ingesting an orphan file may deliver its records twice.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "rf_clock.h"
#include "rf_err.h"
#include "rf_journal.h"
#include "rf_safefile.h"

#define MAGIC "RFJOURN1"
#define VERSION 1u
#define MAX_REC (64u << 20)
#define NO_POS UINT64_MAX

struct jhdr {
	char magic[8];
	uint32_t version, hdr_bytes;
	uint64_t ring_created_ns;
	uint64_t last_pos; /* highest ring position journaled before the last reset */
	uint32_t last_sub, has_last;
	uint64_t _pad;
};

struct jrec {
	uint32_t len;
	int32_t type;
	uint32_t crc;
	uint32_t sub;
	uint64_t pos;
};

_Static_assert(sizeof(struct jhdr) == 48, "journal header");
_Static_assert(sizeof(struct jrec) == 24, "journal record header");

struct rf_journal {
	int fd;
	char path[600];
	int policy;
	struct jhdr h;
	bool has_last;
	uint64_t last_pos;
	uint32_t last_sub;
	uint8_t *buf;
	size_t len, cap;
	uint64_t last_sync_ms;
	uint64_t size;           /* bytes in the file: header + whole records */
	int failing;             /* errno of the last failed write, 0 when writable */
	uint64_t fail_ms, fail_since;
	struct rf_journal_stats st;
};

static uint32_t rec_crc(const struct jrec *r, const void *data)
{
	uLong c = crc32(0L, (const Bytef *)&r->type, sizeof r->type);
	c = crc32(c, (const Bytef *)&r->pos, sizeof r->pos);
	c = crc32(c, (const Bytef *)&r->sub, sizeof r->sub);
	return (uint32_t)crc32(c, (const Bytef *)data, r->len);
}

static int write_header(rf_journal *j)
{
	j->h.last_pos = j->last_pos;
	j->h.last_sub = j->last_sub;
	j->h.has_last = j->has_last;
	uint8_t raw[sizeof j->h];
	memcpy(raw, &j->h, sizeof raw);
	if (pwrite(j->fd, raw, sizeof raw, 0) != (ssize_t)sizeof raw)
		return -errno;
	return 0;
}

static void note_pos(rf_journal *j, uint64_t pos, uint32_t sub)
{
	if (pos == NO_POS)
		return;
	if (!j->has_last || pos > j->last_pos || (pos == j->last_pos && sub > j->last_sub)) {
		j->last_pos = pos;
		j->last_sub = sub;
		j->has_last = true;
	}
}

/* Is there a whole, checksummed record at m[off]? */
static bool rec_ok(const uint8_t *m, size_t size, size_t off, struct jrec *r)
{
	if (off + sizeof *r > size)
		return false;
	memcpy(r, m + off, sizeof *r);
	if (r->len > MAX_REC || r->type <= 0 || size - off - sizeof *r < r->len)
		return false;
	return rec_crc(r, m + off + sizeof *r) == r->crc;
}

/* A position the resync may checksum: a well-formed header whose record
 * fits, followed by another well-formed header or by the end of the file
 * (a torn last record included).  O(1), no checksum. */
static bool candidate(const uint8_t *m, size_t size, size_t p, struct jrec *r)
{
	if (size - p < sizeof *r)
		return false;
	memcpy(r, m + p, sizeof *r);
	if (r->len > MAX_REC || r->type <= 0 || r->type > RF_RING_TYPE_MAX ||
	    size - p - sizeof *r < r->len)
		return false;
	size_t q = p + sizeof *r + r->len;
	if (size - q < sizeof(struct jrec))
		return true;
	struct jrec n;
	memcpy(&n, m + q, sizeof n);
	return n.len <= MAX_REC && n.type > 0 && n.type <= RF_RING_TYPE_MAX;
}

#define POLL_BYTES (1u << 20) /* interrupt check every this much work */

struct resync {
	struct rf_journal_scan *s;
	uint64_t budget; /* bytes that may still be checksummed while resyncing */
	uint64_t polled;
};

static bool scan_work(struct resync *rs, uint64_t bytes)
{
	struct rf_journal_scan *s = rs->s;
	s->work += bytes;
	rs->polled += bytes;
	if (rs->polled < POLL_BYTES || !s->interrupted_fn)
		return s->interrupted;
	rs->polled = 0;
	if (s->interrupted_fn(s->interrupt_arg))
		s->interrupted = true;
	return s->interrupted;
}

/* The next whole, checksummed record after `from`, or `size`.  Linear: a
 * checksum only at candidates, and at most the file's size + 1 MiB of
 * checksummed bytes in all; past that the rest counts as damaged. */
static size_t resync(struct resync *rs, const uint8_t *m, size_t size, size_t from)
{
	struct jrec r;
	for (size_t p = from; p + sizeof r <= size; p++) {
		if ((p & 4095) == 0 && scan_work(rs, 4096))
			return size;
		if (!candidate(m, size, p, &r))
			continue;
		if (r.len > rs->budget) {
			rs->budget = 0;
			rs->s->budget_spent = true;
			return size;
		}
		rs->budget -= r.len;
		rs->s->crc_bytes += r.len;
		if (rec_crc(&r, m + p + sizeof r) == r.crc)
			return p;
		if (scan_work(rs, r.len))
			return size;
	}
	return size;
}

/* The parse of a journal image (untrusted bytes): rf_journal_open() runs it
 * on the file, the fuzz target tests/fuzz/journal on anything.  A record
 * whose checksum fails is not the end: the scan looks for the next whole
 * record whose checksum holds (a 32-bit crc over its header and payload: a
 * false match has odds of 2^-32 per position checked), reports the bytes in
 * between (on_bad) and goes on, so one bad sector costs only the records in
 * it.  What is left after the last good record is a torn tail (the batch
 * being written when the sidecar died) if it does not parse as a record. */
int rf_journal_scan(const uint8_t *m, size_t size, uint64_t ring_created_ns, rf_journal_fn fn,
		    void *arg, struct rf_journal_scan *s)
{
	void (*on_bad)(size_t, size_t, void *) = s->on_bad;
	void (*on_good)(size_t, size_t, void *) = s->on_good;
	void *varg = s->visit_arg;
	int (*intr)(void *) = s->interrupted_fn;
	void *iarg = s->interrupt_arg;
	memset(s, 0, sizeof *s);
	s->interrupted_fn = intr;
	s->interrupt_arg = iarg;
	s->end = sizeof(struct jhdr);
	if (size < sizeof(struct jhdr))
		return 0; /* empty or new: nothing to replay */
	struct jhdr h;
	memcpy(&h, m, sizeof h);
	if (memcmp(h.magic, MAGIC, 8) || h.version != VERSION || h.hdr_bytes != sizeof h)
		return -EBADMSG;
	s->same_ring = h.ring_created_ns == ring_created_ns;
	if (s->same_ring && h.has_last) {
		s->has_last = true;
		s->last_pos = h.last_pos;
		s->last_sub = h.last_sub;
	}
	struct resync rs = {.s = s, .budget = (uint64_t)size + (1u << 20)};
	size_t off = sizeof(struct jhdr);
	while (off < size) {
		struct jrec r;
		if (!rec_ok(m, size, off, &r)) {
			size_t next = resync(&rs, m, size, off + 1);
			if (s->interrupted)
				break;
			if (next == size && !s->budget_spent) { /* no good record after it */
				bool torn = off + sizeof r > size;
				if (!torn) {
					memcpy(&r, m + off, sizeof r);
					torn = r.len <= MAX_REC && size - off - sizeof r < r.len;
				}
				if (torn)
					break; /* the batch being written when we died: cut */
			}
			s->corrupt++;
			s->corrupt_bytes += next - off;
			if (on_bad)
				on_bad(off, next, varg);
			off = next;
			continue;
		}
		size_t n = sizeof r + r.len;
		fn(r.type, m + off + sizeof r, r.len, arg);
		/* Only after fn: on_good may move this record down in the file,
		 * and the mapping shows the file (never anything still to be read). */
		if (on_good)
			on_good(off, n, varg);
		if (r.pos != NO_POS &&
		    (!s->has_last || r.pos > s->last_pos || (r.pos == s->last_pos && r.sub > s->last_sub))) {
			s->last_pos = r.pos;
			s->last_sub = r.sub;
			s->has_last = true;
		}
		s->records++;
		off += n;
		if (scan_work(&rs, n))
			break;
	}
	s->end = off;
	return 0;
}

/* rf_journal_open()'s side of the scan: corrupt stretches are kept aside
 * (0600) and the good records after them move down over them (always to a
 * lower offset than any still to be read), so the next start does not meet
 * the same damage again. */
struct replay_ctx {
	rf_journal *j;
	const uint8_t *m;
	size_t w;       /* where the next good record goes */
	bool can_move;
};

static struct rf_err_sink journal_note;

void rf_journal_set_note(const struct rf_err_sink *sink)
{
	journal_note = sink ? *sink : (struct rf_err_sink){0};
}

/* Damage found and handled while replaying, to the sink. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rf_err_vreport(&journal_note, fmt, ap);
	va_end(ap);
}

static void quarantine(size_t from, size_t to, void *arg)
{
	struct replay_ctx *c = arg;
	rf_journal *j = c->j;
	char aside[640];
	snprintf(aside, sizeof aside, "%s.corrupt-%llu-%zu", j->path, (unsigned long long)time(NULL),
		 from);
	int fd = rf_safe_open(aside, O_WRONLY | O_CREAT | O_EXCL, 0600, rf_ring_group_requested());
	bool kept = fd >= 0 && write(fd, c->m + from, to - from) == (ssize_t)(to - from);
	if (fd >= 0)
		close(fd);
	j->st.corrupt++;
	j->st.corrupt_bytes += to - from;
	if (!kept)
		j->st.corrupt_unkept++;
	note("journal %s: %zu corrupt bytes at offset %zu %s %s; the records around them "
	     "are replayed", j->path, to - from, from, kept ? "quarantined as" :
	     "could not be kept aside as", aside);
}

static void compact(size_t off, size_t n, void *arg)
{
	struct replay_ctx *c = arg;
	rf_journal *j = c->j;
	if (c->w != off && c->can_move && pwrite(j->fd, c->m + off, n, (off_t)c->w) != (ssize_t)n) {
		j->st.write_errors++;
		j->st.compact_failed++;
		note("journal %s: compacting after a corrupt stretch failed (%s); the records "
		     "after it are replayed but not kept", j->path, strerror(errno));
		c->can_move = false;
	}
	if (c->can_move)
		c->w += n;
}

static int (*journal_interrupt)(void *);
static void *journal_interrupt_arg;

void rf_journal_set_interrupt(int (*fn)(void *arg), void *arg)
{
	journal_interrupt = fn;
	journal_interrupt_arg = arg;
}

/* An interrupted replay: the part not yet read moves down next to the
 * records kept so far (the stretch in between held records already moved,
 * or corrupt bytes already set aside), so the file is whole again and the
 * next start replays each record once.  Returns the new end of the file. */
static off_t close_gap(rf_journal *j, const uint8_t *m, size_t w, size_t from, size_t size)
{
	size_t left = size - from;
	if (w == from)
		return (off_t)size;
	for (size_t done = 0; done < left;) {
		ssize_t n = pwrite(j->fd, m + from + done, left - done, (off_t)(w + done));
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return (off_t)(w + left);
}

/* In group mode a group member may truncate the journal while it is read
 * from a mapping, and touching a page past the new end is SIGBUS: the
 * replay reads a private copy instead (an unnamed file in the same
 * directory, owner-only, unreachable by name).  What the copy lacks (the
 * file shrank while copying) is simply not replayed.  -errno. */
static int private_copy(int fd, const char *path, off_t size)
{
	char dir[600];
	snprintf(dir, sizeof dir, "%s", path);
	char *sl = strrchr(dir, '/');
	if (!sl)
		snprintf(dir, sizeof dir, ".");
	else
		sl[sl == dir] = 0; /* "/x" -> "/" */
	int t = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (t < 0)
		return -errno;
	off_t in = 0;
	while (in < size) {
		ssize_t n = copy_file_range(fd, &in, t, NULL, (size_t)(size - in), 0);
		if (n > 0)
			continue;
		if (n == 0)
			break; /* the file ended early */
		char buf[1 << 16]; /* no copy_file_range here: read and write */
		ssize_t r = pread(fd, buf, sizeof buf, in);
		if (r <= 0 || write(t, buf, (size_t)r) != r)
			break;
		in += r;
	}
	return t;
}

int rf_journal_open(rf_journal **out, const char *path, uint64_t ring_created_ns, int fsync_policy,
		    rf_journal_fn fn, void *arg)
{
	rf_journal *j = calloc(1, sizeof *j);
	if (!j)
		return rf_err_set(ENOMEM, "journal %s: out of memory", path);
	snprintf(j->path, sizeof j->path, "%s", path);
	j->policy = fsync_policy;
	/* Owner-only, as the ring (group access only by choice; the umask
	 * does not decide it).  In group mode the directory is the group's
	 * too: rf_safe_open() refuses a planted symlink, FIFO, hard link or
	 * someone else's file before anything is written or chmod'ed. */
	bool group = rf_ring_group_requested();
	j->fd = rf_safe_open(path, O_RDWR | O_CREAT, group ? 0660 : 0600, group);
	if (j->fd < 0) {
		int e = j->fd;
		free(j);
		return e;
	}
	struct stat st;
	fstat(j->fd, &st);
	off_t end = sizeof(struct jhdr);
	bool same_ring = false;
	int rfd = j->fd; /* what the replay reads */
	if (group && (size_t)st.st_size >= sizeof(struct jhdr)) {
		rfd = private_copy(j->fd, path, st.st_size);
		if (rfd < 0 || fstat(rfd, &st) < 0) {
			int e = rfd < 0 ? rfd : -errno;
			if (rfd >= 0)
				close(rfd);
			close(j->fd);
			free(j);
			return rf_err_set_sys(e, "journal %s: a private copy to replay from", path);
		}
	}
	if ((size_t)st.st_size >= sizeof(struct jhdr)) {
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, rfd, 0);
		if (m != MAP_FAILED) {
			struct replay_ctx c = {.j = j, .m = m, .w = sizeof(struct jhdr), .can_move = true};
			struct rf_journal_scan sc = {.on_bad = quarantine, .on_good = compact,
						     .visit_arg = &c,
						     .interrupted_fn = journal_interrupt,
						     .interrupt_arg = journal_interrupt_arg};
			int src = rf_journal_scan(m, (size_t)st.st_size, ring_created_ns, fn, arg, &sc);
			if (src == 0 && sc.interrupted) {
				/* Stopped (SIGTERM): keep the file whole, header as it was. */
				off_t e = c.can_move ? close_gap(j, m, c.w, sc.end, (size_t)st.st_size)
						     : (off_t)st.st_size;
				munmap(m, (size_t)st.st_size);
				if (rfd != j->fd)
					close(rfd);
				if (e >= 0 && e < st.st_size && ftruncate(j->fd, e) < 0)
					e = -1;
				close(j->fd);
				free(j);
				return e < 0 ? -EIO : -EINTR;
			}
			if (src == 0) {
				same_ring = sc.same_ring;
				/* Positions of another ring mean nothing here. */
				j->has_last = same_ring && sc.has_last;
				j->last_pos = sc.last_pos;
				j->last_sub = sc.last_sub;
				j->st.replayed += sc.records;
				end = (off_t)c.w;
			} else {
				j->st.corrupt++;
				j->st.corrupt_unkept++;
				j->st.corrupt_bytes += (uint64_t)st.st_size;
				note("journal %s: not a ringflow journal; started over", path);
			}
			munmap(m, (size_t)st.st_size);
		}
	}
	if (rfd != j->fd)
		close(rfd);
	if (!same_ring) /* a new ring: its positions start over */
		j->has_last = false;
	memcpy(j->h.magic, MAGIC, 8);
	j->h.version = VERSION;
	j->h.hdr_bytes = sizeof j->h;
	j->h.ring_created_ns = ring_created_ns;
	if (ftruncate(j->fd, end) < 0 || write_header(j) < 0 || lseek(j->fd, end, SEEK_SET) < 0) {
		int e = errno;
		close(j->fd);
		free(j);
		return rf_err_set_sys(e, "journal %s", path);
	}
	j->size = (uint64_t)end;
	j->last_sync_ms = rf_now_ms();
	*out = j;
	return 0;
}

void rf_journal_close(rf_journal *j)
{
	if (!j)
		return;
	rf_journal_flush(j);
	fdatasync(j->fd);
	close(j->fd);
	free(j->buf);
	free(j);
}

bool rf_journal_seen(rf_journal *j, const struct rf_ring_rec *rec)
{
	if (!j->has_last || (rec->flags & RF_RING_REC_ORPHAN))
		return false;
	bool seen = rec->pos < j->last_pos || (rec->pos == j->last_pos && rec->sub <= j->last_sub);
	if (seen)
		j->st.skipped++;
	return seen;
}

/* The write buffer stays below this: a batch can be a whole spill file
 * (hundreds of MB), which would otherwise be copied into memory first. */
#define BUF_MAX (4u << 20)

void rf_journal_append(rf_journal *j, const struct rf_ring_rec *rec)
{
	size_t need = j->len + sizeof(struct jrec) + rec->len;
	if (need > BUF_MAX && j->len && !j->failing) {
		rf_journal_flush(j); /* early is fine: still before the ring frees it */
		need = j->len + sizeof(struct jrec) + rec->len;
	}
	if (need > j->cap) {
		size_t cap = j->cap ? j->cap : 1u << 20;
		while (cap < need)
			cap *= 2;
		uint8_t *b = realloc(j->buf, cap);
		if (!b) {
			j->st.write_errors++;
			rf_err_set(ENOMEM, "journal %s: out of memory for a %u-byte record",
				   j->path, rec->len);
			return;
		}
		j->buf = b;
		j->cap = cap;
	}
	uint64_t pos = rec->flags & RF_RING_REC_ORPHAN ? NO_POS : rec->pos;
	struct jrec r = {.len = rec->len, .type = rec->type, .sub = rec->sub, .pos = pos};
	r.crc = rec_crc(&r, rec->data);
	memcpy(j->buf + j->len, &r, sizeof r);
	memcpy(j->buf + j->len + sizeof r, rec->data, rec->len);
	j->len += sizeof r + rec->len;
	note_pos(j, pos, rec->sub);
	j->st.records++;
}

static int failed(const rf_journal *j, uint64_t t)
{
	return rf_err_set(j->failing, "journal %s: write failed (%s): taking no more records from "
			  "the ring until it can be written (failing for %llu ms)", j->path,
			  strerror(j->failing), (unsigned long long)(t - j->fail_since));
}

int rf_journal_flush(rf_journal *j)
{
	if (!j->len)
		return 0;
	uint64_t t = rf_now_ms();
	if (j->failing && t - j->fail_ms < 200) /* a full disk is not retried in a busy loop */
		return failed(j, t);
	size_t off = 0;
	while (off < j->len) {
		ssize_t n = write(j->fd, j->buf + off, j->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : ENOSPC;
			j->st.write_errors++;
			if (!j->failing)
				j->fail_since = t;
			j->failing = e;
			j->fail_ms = t;
			/* Keep the file well-formed: cut what was half written; the
			 * buffer is kept and written again on the next flush. */
			if (ftruncate(j->fd, (off_t)j->size) == 0)
				lseek(j->fd, (off_t)j->size, SEEK_SET);
			return failed(j, t);
		}
		off += (size_t)n;
	}
	j->failing = 0;
	j->st.bytes += j->len;
	j->size += j->len;
	j->len = 0;
	if (j->policy == RF_FSYNC_ALWAYS || (j->policy == RF_FSYNC_INTERVAL && t - j->last_sync_ms >= 1000)) {
		fdatasync(j->fd);
		j->last_sync_ms = t;
	}
	return 0;
}

int rf_journal_reset(rf_journal *j)
{
	int rc = rf_journal_flush(j);
	if (rc < 0) /* what is buffered must be written first */
		return rc;
	if (ftruncate(j->fd, sizeof(struct jhdr)) < 0 || write_header(j) < 0 ||
	    lseek(j->fd, sizeof(struct jhdr), SEEK_SET) < 0)
		return rf_err_set_sys(errno, "journal %s: reset", j->path);
	fdatasync(j->fd);
	j->size = sizeof(struct jhdr);
	j->st.resets++;
	return 0;
}

uint64_t rf_journal_size(const rf_journal *j)
{
	return j->size + j->len;
}

int rf_journal_failing(const rf_journal *j)
{
	return j->len ? j->failing : 0;
}

void rf_journal_stats(rf_journal *j, struct rf_journal_stats *st)
{
	*st = j->st;
}
