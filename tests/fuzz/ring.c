/*
 * ring.c - fuzz target: the consumer's reading of a shared segment that
 * another process has written (a same-user producer, a group member).
 *
 * Input: one byte of options, then bytes laid over a 64 KiB ring:
 *   bit 0 of the options: the next 48 bytes replace the descriptor
 *   (version, data_off, capacity, max_record, slot_count, flags,
 *   created_ns; the magic stays), else it stays valid;
 *   then 24 bytes: head, tail, free_to;
 *   the rest: the data area from offset 0 (zeros after it).
 * A consumer then opens the ring (validation may refuse it: fine) and
 * consumes until nothing moves, with stall checks made immediate.  ASan
 * sees any read or write outside the segment's mapping (the data area ends
 * the mapping: a read past it is a fault); the handler checks that every
 * record it gets lies inside the data area, and the consumer's head must
 * never pass tail nor move by more than the capacity per call.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rf_ring_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP (64u << 10)

static rf_ring *keep; /* the creator's handle: keeps the segment mapped */
static char name[64], spool[128];

struct ctx {
	const uint8_t *lo, *hi;
	uint64_t bytes;
};

static int on_rec(const struct rf_ring_rec *rec, void *arg)
{
	struct ctx *c = arg;
	const uint8_t *d = rec->data;
	if (rec->len && (d < c->lo || d > c->hi || rec->len > (size_t)(c->hi - d)))
		abort(); /* a record outside the data area */
	for (uint32_t i = 0; i < rec->len; i++)
		c->bytes += d[i];
	if (rec->type < 1)
		abort(); /* padding and reserved types are never delivered */
	return 0;
}

static void cleanup(void)
{
	rf_ring_unlink(name);
	rmdir(spool);
}

static void setup(void)
{
	snprintf(name, sizeof name, "/rf-fuzz-ring-%d", (int)getpid());
	snprintf(spool, sizeof spool, "/tmp/rf-fuzz-ring-%d", (int)getpid());
	mkdir(spool, 0700);
	rf_ring_unlink(name);
	struct rf_ring_opts o = {.capacity = CAP, .flags = RF_RING_CREATE, .spool_dir = spool};
	if (rf_ring_open(&keep, name, &o))
		abort();
	atexit(cleanup);
}

/* Put the segment back to a valid, empty ring. */
static void reset(struct rf_ring_shm *h, uint8_t *dat)
{
	h->version = RF_RING_VERSION;
	h->data_off = RF_RING_DATA_OFF;
	h->capacity = CAP;
	h->max_record = RF_RING_MAX_RECORD(CAP);
	h->slot_count = RF_RING_SLOTS;
	h->flags = 0;
	h->created_ns = keep->created_ns;
	atomic_store(&h->head, 0);
	atomic_store(&h->tail, 0);
	atomic_store(&h->head_cache, 0);
	atomic_store(&h->free_to, 0);
	atomic_store(&h->consumer_pid, 0);
	memset(dat, 0, CAP);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!keep)
		setup();
	struct rf_ring_shm *h = keep->shm;
	uint8_t *dat = keep->data;
	reset(h, dat);
	if (size < 1)
		return 0;
	uint8_t opt = data[0];
	data++;
	size--;
	if ((opt & 1) && size >= 48) {
		struct {
			uint32_t version, data_off;
			uint64_t capacity, max_record;
			uint32_t slot_count, flags;
			uint64_t created_ns;
		} d;
		_Static_assert(sizeof d == 40, "descriptor image");
		memcpy(&d, data, sizeof d);
		h->version = d.version;
		h->data_off = d.data_off;
		h->capacity = d.capacity;
		h->max_record = d.max_record;
		h->slot_count = d.slot_count;
		h->flags = d.flags;
		h->created_ns = d.created_ns;
		data += 48;
		size -= 48;
	}
	if (size >= 24) {
		uint64_t v[3];
		memcpy(v, data, sizeof v);
		atomic_store(&h->head, v[0]);
		atomic_store(&h->tail, v[1]);
		atomic_store(&h->free_to, v[2]);
		data += 24;
		size -= 24;
	}
	memcpy(dat, data, size < CAP ? size : CAP);

	rf_ring *c;
	struct rf_ring_opts o = {.flags = RF_RING_CONSUMER, .spool_dir = spool, .stall_check_ns = 1};
	if (rf_ring_open(&c, name, &o) != 0)
		return 0;
	struct ctx cx = {.lo = c->data, .hi = c->data + CAP};
	uint64_t prev = c->head;
	for (int i = 0; i < 8; i++) {
		int n = rf_ring_consume(c, on_rec, &cx, 64);
		uint64_t head = c->head;
		uint64_t tail = atomic_load(&h->tail);
		if (head - prev > CAP || head > tail)
			abort(); /* head moves forward by at most a lap, never past tail */
		prev = head;
		if (n < 0)
			break;
		if (i % 2 == 1) { /* a stall needs two looks */
			struct timespec ts = {0, 2000};
			nanosleep(&ts, NULL);
		}
	}
	struct rf_ring_stats st;
	rf_ring_stats(c, &st);
	if (st.capacity != CAP)
		abort(); /* the validated capacity, whatever the segment says now */
	rf_ring_close(c);
	return 0;
}
