/*
 * rf_ring.c - segment lifecycle: create, validate, attach, close; errors.
 *
 * Nothing is read from a segment before fstat() says it is ours and large
 * enough, and nothing but the descriptor is trusted before the magic, version
 * and sizes check out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rf_arch.h"
#include "rf_env.h"
#include "rf_err.h"
#include "rf_ring_int.h"

/*
 * One mapping per segment per process.  Handles opened on the same segment
 * (a sidecar thread and a producer in one process, a test's two sides) share
 * it: ThreadSanitizer tracks virtual addresses, and with two mappings the
 * handshakes between the handles would be invisible to it.
 */
struct rf_mapping {
	dev_t dev;
	ino_t ino;
	void *addr;
	size_t len;
	int refs;
};
static pthread_mutex_t rf_map_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rf_mapping rf_maps[16];

/* Map `fd` (size `len`) or share this process's existing mapping of it. */
static void *map_shared(int fd, size_t len)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return MAP_FAILED;
	pthread_mutex_lock(&rf_map_lock);
	for (size_t i = 0; i < sizeof rf_maps / sizeof *rf_maps; i++) {
		struct rf_mapping *m = &rf_maps[i];
		if (m->refs && m->dev == st.st_dev && m->ino == st.st_ino && m->len == len) {
			m->refs++;
			pthread_mutex_unlock(&rf_map_lock);
			return m->addr;
		}
	}
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED) {
		for (size_t i = 0; i < sizeof rf_maps / sizeof *rf_maps; i++)
			if (!rf_maps[i].refs) {
				rf_maps[i] = (struct rf_mapping){st.st_dev, st.st_ino, p, len, 1};
				break;
			}
	}
	pthread_mutex_unlock(&rf_map_lock);
	return p;
}

static void unmap_shared(void *addr, size_t len)
{
	pthread_mutex_lock(&rf_map_lock);
	for (size_t i = 0; i < sizeof rf_maps / sizeof *rf_maps; i++) {
		struct rf_mapping *m = &rf_maps[i];
		if (m->refs && m->addr == addr) {
			if (--m->refs == 0)
				munmap(addr, len);
			pthread_mutex_unlock(&rf_map_lock);
			return;
		}
	}
	pthread_mutex_unlock(&rf_map_lock);
	munmap(addr, len); /* more than 16 segments mapped: not shared */
}
static _Atomic uint64_t rf_next_id = 1;

const char *rf_ring_errmsg(void)
{
	return rf_err_msg();
}


/* Aeron-style backoff: spin, then yield, then sleep 1 us doubling to 1 ms. */
void rf_backoff(unsigned *step)
{
	unsigned s = (*step)++;
	if (s < 16) {
		rf_cpu_relax();
	} else if (s < 32) {
		sched_yield();
	} else {
		unsigned shift = s - 32 < 10 ? s - 32 : 10;
		struct timespec ts = {0, 1000L << shift};
		nanosleep(&ts, NULL);
	}
}

int rf_ring_group_requested(void)
{
	return rf_env_flag("RINGFLOW_RING_GROUP", false);
}

/* Is gid this process's group or one of its supplementary groups? */
static bool in_our_groups(gid_t gid)
{
	if (gid == getegid())
		return true;
	gid_t g[256];
	int n = getgroups(256, g);
	for (int i = 0; i < n; i++)
		if (g[i] == gid)
			return true;
	return false;
}

int rf_ring_default_name(char *buf, size_t len)
{
	const char *env = getenv("RINGFLOW_RING");
	int n;
	if (env && *env)
		n = snprintf(buf, len, "%s%s", env[0] == '/' ? "" : "/", env);
	else
		n = snprintf(buf, len, "/ringflow-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= len)
		return rf_err_set(ENAMETOOLONG, "ring name too long");
	return 0;
}

int rf_ring_spool_check(const char *dir)
{
	return rf_spool_dir_check(dir, rf_ring_group_requested(), true);
}

int rf_ring_default_spool_dir(char *buf, size_t len)
{
	const char *env = getenv("RINGFLOW_SPOOL_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;
	if (env && *env)
		n = snprintf(buf, len, "%s", env);
	else if (xdg && *xdg)
		n = snprintf(buf, len, "%s/ringflow", xdg);
	else
		n = snprintf(buf, len, "/tmp/ringflow-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= len)
		return rf_err_set(ENAMETOOLONG, "spool directory name too long");
	return 0;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* Fill a freshly truncated segment; the magic is published last. */
static void init_segment(struct rf_ring_shm *h, uint64_t cap, const char *spool, unsigned flags)
{
	h->version = RF_RING_VERSION;
	h->data_off = RF_RING_DATA_OFF;
	h->capacity = cap;
	h->max_record = RF_RING_MAX_RECORD(cap);
	h->slot_count = RF_RING_SLOTS;
	h->flags = flags & RF_RING_GROUP;
	h->created_ns = rf_realtime_ns();
	snprintf(h->spool_dir, sizeof h->spool_dir, "%s", spool);
	struct rf_ring_slot *slots = (struct rf_ring_slot *)((uint8_t *)h + RF_RING_SLOTS_OFF);
	for (unsigned i = 0; i < RF_RING_SLOTS; i++)
		atomic_store_explicit(&slots[i].pos, RF_POS_IDLE, memory_order_relaxed);
	/* Release: pairs with the acquire load of magic in validate(); an
	 * attacher that sees the magic sees every field above. */
	atomic_store_explicit(&h->magic, RF_RING_MAGIC, memory_order_release);
}

/* fstat-level checks, before a single byte of the segment is read. */
static int check_stat(int fd, const char *name, bool group, off_t *size)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		return rf_err_set_sys(e, "ring %s: fstat", name);
	}
	/* Another user's segment only by choice (the group option), and only
	 * from a group we are in: its records would be trusted as ours. */
	if (st.st_uid != geteuid() && !(group && in_our_groups(st.st_gid))) {
		return rf_err_set(EPERM, "ring %s (/dev/shm%s) is owned by uid %u, not by this "
				  "user (uid %u); refusing to attach to another user's segment%s; "
				  "if it is not meant to be shared, that user or root must remove "
				  "/dev/shm%s, or choose another ring name with RINGFLOW_RING",
				  name, name, (unsigned)st.st_uid, (unsigned)geteuid(),
				  group ? "" : " (RINGFLOW_RING_GROUP=1 shares a ring within a group)",
				  name);
	}
	if ((st.st_mode & 0007) || (!group && (st.st_mode & 0070))) {
		return rf_err_set(EPERM, "ring %s has mode %03o: other users could read or forge "
				  "records; expected 0600%s", name, (unsigned)(st.st_mode & 0777),
				  group ? " or 0660" : " (0660 needs the group option)");
	}
	*size = st.st_size;
	return 0;
}

static int validate(rf_ring *r, const char *name, size_t map_len)
{
	struct rf_ring_shm *h = r->shm;
	/* Acquire: pairs with the release store of magic in init_segment(). */
	uint64_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
	if (magic != RF_RING_MAGIC)
		return rf_err_set(EPROTO, "ring %s: bad magic 0x%016llx: not a ringflow ring (or "
				  "not yet initialised)", name, (unsigned long long)magic);
	/* Each field is read once: what is checked is what is kept (another
	 * process may be rewriting the descriptor while we look). */
	uint32_t version = h->version, data_off = h->data_off, slots = h->slot_count;
	uint64_t cap = h->capacity, max_record = h->max_record;
	if (version != RF_RING_VERSION)
		return rf_err_set(EPROTO, "ring %s: layout version %u, this library speaks %u",
				  name, version, RF_RING_VERSION);
	if (data_off != RF_RING_DATA_OFF || slots != RF_RING_SLOTS || !is_pow2(cap) ||
	    cap < RF_RING_MIN_CAPACITY || cap > RF_RING_MAX_CAPACITY ||
	    max_record != RF_RING_MAX_RECORD(cap) || RF_RING_DATA_OFF + cap != map_len) {
		return rf_err_set(EINVAL, "ring %s: inconsistent descriptor (capacity %llu, "
				  "segment %zu bytes)", name, (unsigned long long)cap, map_len);
	}
	if (memchr(h->spool_dir, 0, sizeof h->spool_dir) == NULL)
		return rf_err_set(EINVAL, "ring %s: spool directory field not terminated", name);
	r->cap = cap;
	r->max_record = max_record;
	r->created_ns = h->created_ns;
	r->ring_flags = h->flags & RF_RING_GROUP;
	return 0;
}

void rf_ring_check_desc(rf_ring *r)
{
	struct rf_ring_shm *h = r->shm;
	if (h->capacity == r->cap && h->max_record == r->max_record &&
	    h->created_ns == r->created_ns && h->data_off == RF_RING_DATA_OFF &&
	    h->slot_count == RF_RING_SLOTS && h->version == RF_RING_VERSION)
		return;
	atomic_fetch_add_explicit(&h->hdr_changed, 1, memory_order_relaxed);
	rf_err_set(EPROTO, "ring %s: descriptor rewritten in shared memory (capacity %llu, "
		   "validated %llu); the validated values are used%s", r->name,
		   (unsigned long long)h->capacity, (unsigned long long)r->cap,
		   (r->flags & RF_RING_CONSUMER) ? " and written back" : "");
	if (!(r->flags & RF_RING_CONSUMER))
		return;
	/* Written back so that later attachers validate again; the magic is
	 * not touched (no release needed: attachers check each field). */
	h->version = RF_RING_VERSION;
	h->data_off = RF_RING_DATA_OFF;
	h->slot_count = RF_RING_SLOTS;
	h->capacity = r->cap;
	h->max_record = r->max_record;
	h->created_ns = r->created_ns;
}

static int map_existing(rf_ring *r, const char *name, bool group)
{
	uint64_t deadline = rf_now_ns() + 1000000000ull;
	unsigned step = 0;
	for (;;) {
		off_t size = 0;
		int rc = check_stat(r->fd, name, group, &size);
		if (rc)
			return rc;
		bool sized = (uint64_t)size >= RF_RING_DATA_OFF + RF_RING_MIN_CAPACITY &&
			     (uint64_t)size <= RF_RING_DATA_OFF + (uint64_t)RF_RING_MAX_CAPACITY;
		if (sized) {
			void *p = map_shared(r->fd, (size_t)size);
			if (p == MAP_FAILED) {
				int e = errno;
				return rf_err_set_sys(e, "ring %s: mmap %lld bytes", name,
						      (long long)size);
			}
			r->shm = p;
			r->map_len = (size_t)size;
			rc = validate(r, name, (size_t)size);
			if (rc == 0)
				return 0;
			uint64_t magic = atomic_load(&r->shm->magic);
			unmap_shared(p, (size_t)size);
			r->shm = NULL;
			/* Only a zero magic can mean "creator still initialising". */
			if (magic != 0)
				return rc;
		}
		/* Only an empty segment can be a creator before ftruncate. */
		if (!sized && size != 0)
			return rf_err_set(EINVAL, "ring %s: segment is %lld bytes, not a ringflow "
					  "ring size", name, (long long)size);
		if (rf_now_ns() > deadline) {
			if (!sized)
				return rf_err_set(EINVAL, "ring %s: segment is %lld bytes, not a "
						  "ringflow ring size", name, (long long)size);
			return -EPROTO;
		}
		rf_backoff(&step);
	}
}

static int create_segment(rf_ring *r, const char *name, const struct rf_ring_opts *o,
			  const char *spool)
{
	uint64_t cap = o->capacity ? o->capacity : RF_RING_DEFAULT_CAPACITY;
	if (!is_pow2(cap) || cap < RF_RING_MIN_CAPACITY || cap > RF_RING_MAX_CAPACITY)
		return rf_err_set(EINVAL, "ring capacity %llu: must be a power of two in [%u, %u]",
				  (unsigned long long)cap, RF_RING_MIN_CAPACITY,
				  RF_RING_MAX_CAPACITY);
	mode_t mode = (o->flags & RF_RING_GROUP) ? 0660 : 0600;
	/* fchmod: the umask must not widen or narrow what we promise. */
	if (fchmod(r->fd, mode) < 0 || ftruncate(r->fd, (off_t)(RF_RING_DATA_OFF + cap)) < 0) {
		int e = errno;
		return rf_err_set_sys(e, "ring %s: sizing new segment to %llu bytes", name,
				      (unsigned long long)(RF_RING_DATA_OFF + cap));
	}
	size_t len = RF_RING_DATA_OFF + cap;
	void *p = map_shared(r->fd, len);
	if (p == MAP_FAILED) {
		int e = errno;
		return rf_err_set_sys(e, "ring %s: mmap", name);
	}
	r->shm = p;
	r->map_len = len;
	init_segment(r->shm, cap, spool, o->flags);
	r->cap = cap;
	r->max_record = RF_RING_MAX_RECORD(cap);
	r->created_ns = r->shm->created_ns;
	r->ring_flags = o->flags & RF_RING_GROUP;
	return 0;
}

/* shm_open(name) failed with rc: a name another user took (squatted) only
 * says "Permission denied"; name the segment, its owner and what to do. */
static void squatted(const char *name, int rc)
{
	char path[160];
	struct stat st;
	snprintf(path, sizeof path, "/dev/shm%s", name);
	if ((rc == -EACCES || rc == -EPERM) && stat(path, &st) == 0 && st.st_uid != geteuid())
		rf_err_set(-rc, "ring %s: %s is owned by uid %u (mode %03o), not by this user "
			   "(uid %u), so it cannot be opened: another user took the name.  That "
			   "user or root must remove %s, or choose another ring name with "
			   "RINGFLOW_RING", name, path, (unsigned)st.st_uid,
			   (unsigned)(st.st_mode & 0777), (unsigned)geteuid(), path);
	else
		rf_err_set_sys(-rc, "ring %s: shm_open", name);
}

int rf_ring_open(rf_ring **out, const char *name, const struct rf_ring_opts *opts)
{
	struct rf_ring_opts o = {0};
	char defname[128];
	int rc;
	if (opts)
		o = *opts;
	if (rf_ring_group_requested())
		o.flags |= RF_RING_GROUP;
	*out = NULL;
	if (!name) {
		if ((rc = rf_ring_default_name(defname, sizeof defname)))
			return rc;
		name = defname;
	}
	if (name[0] != '/' || strlen(name) >= sizeof ((rf_ring *)0)->name || strchr(name + 1, '/'))
		return rf_err_set(EINVAL, "ring name '%s': must be '/name' without further "
				  "slashes", name);
	if (o.full_policy < RF_RING_FULL_SPILL || o.full_policy > RF_RING_FULL_DROP)
		return rf_err_set(EINVAL, "ring %s: unknown full policy %d", name, o.full_policy);
	rf_ring *r = calloc(1, sizeof *r);
	if (!r)
		return rf_err_set_sys(ENOMEM, "ring %s: handle", name);
	snprintf(r->name, sizeof r->name, "%s", name);
	r->fd = -1;
	r->spill.fd = -1;
	pthread_mutex_init(&r->spill.lock, NULL);
	r->flags = o.flags;
	r->full_policy = o.full_policy;
	r->full_wait_ns = o.full_wait_ns ? o.full_wait_ns : 10000000ull;
	r->stall_check_ns = o.stall_check_ns ? o.stall_check_ns : 20000000ull;
	r->stall_pos = RF_POS_IDLE;
	r->id = atomic_fetch_add(&rf_next_id, 1);
	r->pid = getpid();

	char spool[256];
	if (o.spool_dir)
		snprintf(spool, sizeof spool, "%s", o.spool_dir);
	else if ((rc = rf_ring_default_spool_dir(spool, sizeof spool)))
		goto fail;

	bool group = o.flags & RF_RING_GROUP;
	bool created = false;
	if (o.flags & RF_RING_CREATE) {
		r->fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, group ? 0660 : 0600);
		if (r->fd >= 0)
			created = true;
		else if (errno != EEXIST) {
			rc = -errno;
			rf_err_set_sys(-rc, "ring %s: shm_open(create)", name);
			goto fail;
		}
	}
	if (!created) {
		r->fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
		if (r->fd < 0) {
			rc = -errno;
			squatted(name, rc);
			goto fail;
		}
	}
	rc = created ? create_segment(r, name, &o, spool) : map_existing(r, name, group);
	if (rc) {
		if (created)
			shm_unlink(name);
		goto fail;
	}
	r->data = (uint8_t *)r->shm + RF_RING_DATA_OFF;
	r->mask = r->cap - 1;
	r->max_claim = rf_align8(RF_RING_HDR_BYTES + r->max_record);
	/* Producers and consumer agree on the spool dir through the ring. */
	snprintf(r->spool_dir, sizeof r->spool_dir, "%s",
		 o.spool_dir ? o.spool_dir : r->shm->spool_dir);

	if (o.flags & RF_RING_CONSUMER) {
		/* flock is dropped by the kernel when the holder dies, so a
		 * restarted consumer never has to wait out a stale lock. */
		if (flock(r->fd, LOCK_EX | LOCK_NB) < 0) {
			rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
			rf_err_set(-rc, "ring %s: another consumer (pid %d) is attached", name,
				   (int)atomic_load(&r->shm->consumer_pid));
			goto fail;
		}
		/* And an open-file-description lock on byte 0: the same lifetime
		 * as the flock, but others can probe it (F_OFD_GETLK) without
		 * taking it: rf_ring_consumer_alive(), which must not trust the
		 * pid in the segment (anyone mapping it can write any pid). */
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
		if (fcntl(r->fd, F_OFD_SETLK, &fl) < 0 && errno != EINVAL) {
			rc = -EBUSY;
			rf_err_set(EBUSY, "ring %s: another consumer holds its lock", name);
			goto fail;
		}
		r->consumer_pid = r->pid;
		atomic_store_explicit(&r->shm->consumer_start, rf_thread_start_time(r->pid, r->pid),
				      memory_order_relaxed);
		atomic_store_explicit(&r->shm->consumer_pid, (int32_t)r->pid, memory_order_relaxed);
		/* A predecessor killed while zeroing a batch it had delivered. */
		rf_ring_finish_free(r);
		/* Aligned down if forged: headers are only read at multiples of 8
		 * (batch_bounds() then writes the consumer's value back). */
		r->head = atomic_load_explicit(&r->shm->head, memory_order_relaxed) &
			  ~(uint64_t)(RF_RING_ALIGN - 1);
		atomic_store_explicit(&r->shm->parked, 0, memory_order_relaxed);
		if ((rc = rf_spool_dir_check(r->spool_dir, group, true)))
			goto fail;
	}
	*out = r;
	return 0;
fail:
	if (r->shm)
		unmap_shared(r->shm, r->map_len);
	if (r->fd >= 0)
		close(r->fd);
	pthread_mutex_destroy(&r->spill.lock);
	free(r);
	return rc;
}

void rf_ring_close(rf_ring *r)
{
	if (!r)
		return;
	rf_spill_close(r);
	rf_ring_release_slots(r);
	/* A forked child shares the parent's lock (same open file description):
	 * only the process that took it gives it back. */
	if ((r->flags & RF_RING_CONSUMER) && getpid() == r->consumer_pid) {
		atomic_store_explicit(&r->shm->consumer_pid, 0, memory_order_relaxed);
		flock(r->fd, LOCK_UN);
		/* Explicitly: a mapping made through this fd (shared with other
		 * handles of this process) keeps the open file description, and
		 * so its lock, alive after close(). */
		struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
		fcntl(r->fd, F_OFD_SETLK, &fl);
	}
	unmap_shared(r->shm, r->map_len);
	close(r->fd);
	pthread_mutex_destroy(&r->spill.lock);
	free(r);
}

int rf_ring_consumer_alive(rf_ring *r)
{
	if ((r->flags & RF_RING_CONSUMER) && r->consumer_pid == getpid())
		return 1; /* our own lock does not conflict with itself */
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	if (fcntl(r->fd, F_OFD_GETLK, &fl) == 0)
		return fl.l_type != F_UNLCK;
	/* No OFD locks (kernel < 3.15): the pid and its start time as the
	 * consumer recorded them; a forged pair still only fools this check. */
	int32_t pid = atomic_load_explicit(&r->shm->consumer_pid, memory_order_relaxed);
	uint64_t start = atomic_load_explicit(&r->shm->consumer_start, memory_order_relaxed);
	return pid > 0 && start && rf_thread_alive(pid, pid, start);
}

void rf_ring_set_interrupt(rf_ring *r, int (*fn)(void *arg), void *arg)
{
	r->interrupted = fn;
	r->interrupt_arg = arg;
}

int rf_ring_unlink(const char *name)
{
	char defname[128];
	int rc;
	if (!name) {
		if ((rc = rf_ring_default_name(defname, sizeof defname)))
			return rc;
		name = defname;
	}
	if (shm_unlink(name) < 0) {
		int e = errno;
		return rf_err_set_sys(e, "ring %s: shm_unlink", name);
	}
	return 0;
}

int rf_ring_stats(rf_ring *r, struct rf_ring_stats *st)
{
	struct rf_ring_shm *h = r->shm;
	memset(st, 0, sizeof *st);
	st->capacity = r->cap; /* as validated at open, not as the segment says now */
	st->max_record = r->max_record;
	/* Acquire both: pairs with the consumer's release store of head and the
	 * producers' release CAS on tail; a snapshot for reporting only. */
	st->head = atomic_load_explicit(&h->head, memory_order_acquire);
	st->tail = atomic_load_explicit(&h->tail, memory_order_acquire);
	st->spilled = atomic_load_explicit(&h->spilled, memory_order_relaxed);
	st->spill_failed = atomic_load_explicit(&h->spill_failed, memory_order_relaxed);
	st->dropped = atomic_load_explicit(&h->dropped, memory_order_relaxed);
	st->claim_timeouts = atomic_load_explicit(&h->claim_timeouts, memory_order_relaxed);
	st->abandoned = atomic_load_explicit(&h->abandoned, memory_order_relaxed);
	st->spill_ingested = atomic_load_explicit(&h->spill_ingested, memory_order_relaxed);
	st->spill_corrupt = atomic_load_explicit(&h->spill_corrupt, memory_order_relaxed);
	st->wakeups = atomic_load_explicit(&h->wakeups, memory_order_relaxed);
	st->consumer_pid = atomic_load_explicit(&h->consumer_pid, memory_order_relaxed);
	st->corrupt = atomic_load_explicit(&h->corrupt, memory_order_relaxed);
	st->corrupt_bytes = atomic_load_explicit(&h->corrupt_bytes, memory_order_relaxed);
	st->hdr_changed = atomic_load_explicit(&h->hdr_changed, memory_order_relaxed);
	st->created_ns = r->created_ns;
	st->consumer_heartbeat_ns = atomic_load_explicit(&h->heartbeat_ns, memory_order_relaxed);
	return 0;
}
