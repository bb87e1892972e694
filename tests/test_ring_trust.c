/*
 * test_ring_trust - the segment is writable by every process that maps it
 * (same-user producers; group members on a 0660 ring).  What any of them
 * writes into the shared header or the data area must never make the
 * consumer read or write outside the segment, spin, or stop for good: it is
 * bounded, skipped and counted.
 *
 * The forger here is the test itself, writing through the consumer's own
 * mapping (what another process would do through its mapping).
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "../ringbuf/rf_ring_int.h"
#include "rf_test.h"
#include "rf_test_ring.h"
#include "ringflow.h"

#define CAP (64u << 10)

struct collect {
	int n;
	uint64_t bytes;
	int32_t types[4096];
	uint32_t lens[4096];
	uint8_t first[4096];
};

static int on_rec(const struct rf_ring_rec *rec, void *arg)
{
	struct collect *c = arg;
	/* Touch every byte: a payload that runs past the segment faults here
	 * (or is reported by ASan). */
	const volatile uint8_t *d = rec->data;
	for (uint32_t i = 0; i < rec->len; i++)
		c->bytes += d[i];
	if (c->n < 4096) {
		c->types[c->n] = rec->type;
		c->lens[c->n] = rec->len;
		c->first[c->n] = rec->len ? d[0] : 0;
	}
	c->n++;
	return 0;
}

static void put(rf_ring *p, int32_t type, size_t len, uint8_t fill)
{
	static uint8_t buf[CAP];
	memset(buf, fill, len);
	CHECK_EQ(rf_ring_write(p, type, buf, len), 0);
}

/* Consume until a call delivers nothing, at most `rounds` calls (a consumer
 * that spins on damage would otherwise loop here forever). */
static int drain(rf_ring *c, struct collect *col, int rounds)
{
	int total = 0;
	for (int i = 0; i < rounds; i++) {
		int got = rf_ring_consume(c, on_rec, col, 1000);
		if (got < 0)
			return got;
		if (got == 0)
			break;
		total += got;
	}
	return total;
}

/* Move the consumer's head to `off` bytes before the end of the buffer. */
static void advance_to(rf_ring *p, rf_ring *c, uint64_t off)
{
	struct collect col = {0};
	uint64_t left = off;
	const uint64_t chunk = RF_RING_MAX_RECORD(CAP) + RF_RING_HDR_BYTES; /* 8192 */
	while (left) {
		uint64_t rec = left >= chunk ? chunk : left;
		put(p, 7, rec - RF_RING_HDR_BYTES, 0x11);
		left -= rec;
	}
	CHECK(drain(c, &col, 100) > 0);
	CHECK_EQ(atomic_load(&c->shm->head) & (CAP - 1), off);
}

/* Item: capacity (and max_record) are read from the segment only at open.
 * A producer rewrites them to twice the real size and forges a committed
 * record that runs past the end of the data area: the consumer must not
 * hand it out (its bytes are outside the segment), must report the rewrite
 * and put the validated descriptor back. */
static void test_forged_capacity(void)
{
	char name[64];
	rf_ring *p, *c;
	rf_test_open_pair(name, "trust-cap", CAP, RF_RING_FULL_WAIT, &p, &c);
	advance_to(p, c, CAP - 64);
	struct rf_ring_shm *h = c->shm;
	uint64_t head = atomic_load(&h->head);
	h->capacity = 2 * (uint64_t)CAP;
	h->max_record = RF_RING_MAX_RECORD(2 * (uint64_t)CAP);
	/* A committed record of 4 KiB at 64 bytes before the end. */
	atomic_store(rf_rec_type(c, head), 9);
	atomic_store(rf_rec_len(c, head), 4096);
	atomic_store(&h->tail, head + 4096);

	struct collect col = {0};
	int got = drain(c, &col, 20);
	for (int i = 0; i < col.n && i < 4096; i++)
		CHECK(col.types[i] != 9); /* the forged record never reaches the handler */
	(void)got;
	struct rf_ring_stats st;
	rf_ring_stats(c, &st);
	CHECK_EQ(st.capacity, CAP);
	CHECK(st.hdr_changed >= 1);
	CHECK_EQ(h->capacity, CAP); /* written back for later attachers */
	CHECK_EQ(h->max_record, RF_RING_MAX_RECORD(CAP));
	/* A later attacher validates again. */
	rf_ring *p2;
	CHECK_EQ(rf_ring_open(&p2, name, &(struct rf_ring_opts){0}), 0);
	rf_ring_close(p2);
	rf_test_close_pair(name, p, c);
}

/* head and tail in the segment: a forged unaligned head, or a tail far
 * beyond head + capacity, are put back; records flow again afterwards. */
static void test_forged_head_tail(void)
{
	char name[64];
	rf_ring *p, *c;
	rf_test_open_pair(name, "trust-ht", CAP, RF_RING_FULL_WAIT, &p, &c);
	put(p, 3, 100, 0x33);
	struct collect col = {0};
	CHECK_EQ(drain(c, &col, 10), 1);
	struct rf_ring_shm *h = c->shm;
	uint64_t head = atomic_load(&h->head);
	atomic_store(&h->head, head + 3);
	atomic_store(&h->tail, head + 1000 * (uint64_t)CAP);
	CHECK_EQ(drain(c, &col, 10), 0);
	CHECK_EQ(atomic_load(&h->head), head);
	CHECK_EQ(atomic_load(&h->tail), head);
	struct rf_ring_stats st;
	rf_ring_stats(c, &st);
	CHECK(st.hdr_changed >= 2);
	/* An unaligned tail is refused by the producer (a header there would
	 * straddle the end of the data area), then put back by the consumer. */
	atomic_store(&h->tail, head + 4);
	CHECK_EQ(rf_ring_write(p, 3, "x", 1), -EPROTO);
	CHECK_EQ(drain(c, &col, 10), 0);
	CHECK_EQ(atomic_load(&h->tail), head);
	put(p, 4, 50, 0x44);
	col.n = 0;
	CHECK_EQ(drain(c, &col, 10), 1);
	CHECK_EQ(col.types[0], 4);
	CHECK_EQ(col.first[0], 0x44);
	rf_test_close_pair(name, p, c);
}


/* A fresh ring (name[64], after tag) holding three records A, B, C from
 * head: A's position, and each one's size in sz. */
static uint64_t three(char *name, const char *tag, rf_ring **p, rf_ring **c, uint64_t sz[3])
{
	rf_test_open_pair(name, tag, CAP, RF_RING_FULL_WAIT, p, c);
	uint64_t head = atomic_load(&(*c)->shm->head);
	const size_t lens[3] = {200, 120, 40};
	for (int i = 0; i < 3; i++) {
		put(*p, 10 + i, lens[i], (uint8_t)(0xa0 + i));
		sz[i] = rf_align8(RF_RING_HDR_BYTES + lens[i]);
	}
	return head;
}

/* After damage to A of three(): B and C delivered whole, A alone lost and
 * counted (one corrupt record of A's size).  The stats, for more checks. */
static struct rf_ring_stats only_a_lost(rf_ring *c, const struct collect *col, const uint64_t sz[3])
{
	CHECK_EQ(col->n, 2);
	CHECK_EQ(col->types[0], 11);
	CHECK_EQ(col->first[0], 0xa1);
	CHECK_EQ(col->lens[0], 120);
	CHECK_EQ(col->types[1], 12);
	CHECK_EQ(col->first[1], 0xa2);
	struct rf_ring_stats st;
	rf_ring_stats(c, &st);
	CHECK_EQ(st.corrupt, 1);
	CHECK_EQ(st.corrupt_bytes, sz[0]);
	return st;
}

/* Item 3: a committed header with an impossible length at head.  The old
 * consumer returned -EPROTO on every call, forever (ringflowd logged 180,000
 * lines in 5 s), and the damage stayed for the next consumer.  Now the
 * records after it are found and delivered, the loss is counted once, and
 * a restarted consumer does not meet it again. */
static void test_corrupt_length(void)
{
	char name[64];
	rf_ring *p, *c;
	uint64_t sz[3], a = three(name, "trust-len", &p, &c, sz);
	atomic_store(rf_rec_len(c, a), 0x7ffffff0);
	struct collect col = {0};
	CHECK_EQ(drain(c, &col, 20), 2);
	struct rf_ring_stats st = only_a_lost(c, &col, sz);
	CHECK_EQ(st.head, st.tail);
	CHECK(strstr(rf_ring_errmsg(), "corrupt record header") != NULL);
	/* The same damage at the end of the ring's contents (nothing after it
	 * to resync to): skipped up to tail. */
	put(p, 20, 64, 0x55);
	atomic_store(rf_rec_len(c, st.tail), 3);
	col.n = 0;
	CHECK_EQ(drain(c, &col, 20), 0);
	rf_ring_stats(c, &st);
	CHECK_EQ(st.corrupt, 2);
	CHECK_EQ(st.head, st.tail);
	/* A restarted consumer starts clean. */
	rf_ring_close(c);
	struct rf_ring_opts o = {.flags = RF_RING_CONSUMER};
	CHECK_EQ(rf_ring_open(&c, name, &o), 0);
	put(p, 21, 10, 0x66);
	col.n = 0;
	CHECK_EQ(drain(c, &col, 20), 1);
	CHECK_EQ(col.types[0], 21);
	rf_ring_stats(c, &st);
	CHECK_EQ(st.corrupt, 2);
	rf_test_close_pair(name, p, c);
}

/* The same under a held consume (what ringflowd uses): the skipped bytes
 * are freed with the batch on release. */
static void test_corrupt_held(void)
{
	char name[64];
	rf_ring *p, *c;
	uint64_t sz[3], a = three(name, "trust-held", &p, &c, sz);
	atomic_store(rf_rec_len(c, a), -0x7ffffff0 + 1); /* a "claim" of 2 GiB */
	struct collect col = {0};
	/* A claimed header is waited for stall_check_ns (20 ms) first. */
	uint64_t t0 = rf_test_now_ns();
	int got = 0;
	while (got == 0 && rf_test_now_ns() - t0 < 5000000000ull) {
		got = rf_ring_consume_held(c, on_rec, &col, 1000);
		CHECK(got >= 0);
		if (got == 0)
			rf_ring_release(c);
		usleep(1000);
	}
	CHECK_EQ(got, 2);
	CHECK_EQ(rf_ring_release(c), 0);
	struct rf_ring_stats st = only_a_lost(c, &col, sz);
	CHECK_EQ(st.head, st.tail);
	CHECK_EQ(atomic_load(rf_rec_len(c, a)), 0); /* freed space is zero again */
	rf_test_close_pair(name, p, c);
}

/* A padding record laid over committed records: the old consumer skipped
 * B and C without a trace.  Now they are delivered and the padding counted. */
static void test_forged_padding(void)
{
	char name[64];
	rf_ring *p, *c;
	uint64_t sz[3], a = three(name, "trust-pad", &p, &c, sz);
	atomic_store(rf_rec_type(c, a), RF_RING_REC_PAD);
	atomic_store(rf_rec_len(c, a), (int32_t)(sz[0] + sz[1] + sz[2]));
	struct collect col = {0};
	CHECK_EQ(drain(c, &col, 20), 2);
	struct rf_ring_stats st = only_a_lost(c, &col, sz);
	/* Honest padding (an abort, a wrap) is not counted. */
	struct rf_ring_claim cl;
	CHECK_EQ(rf_ring_claim(p, 5, 300, &cl), 0);
	memset(cl.data, 0x77, 300);
	CHECK_EQ(rf_ring_abort(p, &cl), 0);
	col.n = 0;
	for (int k = 0; k < 10; k++) { /* several laps: wrap padding too */
		for (int i = 0; i < 10; i++)
			put(p, 6, 1000 + 8 * (size_t)k, (uint8_t)i);
		drain(c, &col, 200);
	}
	CHECK_EQ(col.n, 101 - 1); /* the aborted record is not delivered */
	rf_ring_stats(c, &st);
	CHECK_EQ(st.corrupt, 1);
	/* A reserved type with a plausible length: that record alone. */
	uint64_t b = st.tail;
	put(p, 8, 16, 0x88);
	put(p, 9, 16, 0x99);
	atomic_store(rf_rec_type(c, b), -7);
	col.n = 0;
	CHECK_EQ(drain(c, &col, 20), 1);
	CHECK_EQ(col.types[0], 9);
	rf_ring_stats(c, &st);
	CHECK_EQ(st.corrupt, 2);
	CHECK_EQ(st.corrupt_bytes, sz[0] + 24);
	rf_test_close_pair(name, p, c);
}

/* A forged consumer_pid (here pid 1, always alive) must not make producers
 * believe a sidecar serves the ring: the Inspect hook would never autostart
 * one (consumer_alive() in the Python module is rf_producer_consumer_alive).
 * The old check was kill(pid, 0). */
static void test_forged_consumer_pid(void)
{
	char name[64];
	rf_test_ring_name(name, sizeof name, "trust-pid");
	struct rf_producer_opts po = {.ring = name, .capacity = CAP};
	rf_producer *prod;
	CHECK_EQ(rf_producer_open(&prod, &po), 0);
	CHECK(!rf_producer_consumer_alive(prod));
	rf_ring *c;
	struct rf_ring_opts o = {.flags = RF_RING_CONSUMER};
	int orc = rf_ring_open(&c, name, &o);
	if (orc)
		fprintf(stderr, "consumer open: %s\n", rf_ring_errmsg());
	CHECK_EQ(orc, 0);
	CHECK(rf_producer_consumer_alive(prod));
	CHECK_EQ(rf_ring_consumer_alive(c), 1);
	/* A second consumer is still refused. */
	rf_ring *c2;
	CHECK_EQ(rf_ring_open(&c2, name, &o), -EBUSY);
	struct rf_ring_shm *h = c->shm;
	rf_ring_close(c);
	CHECK(!rf_producer_consumer_alive(prod));
	atomic_store(&h->consumer_pid, 1); /* through the producer's mapping below */
	rf_ring *p;
	CHECK_EQ(rf_ring_open(&p, name, &(struct rf_ring_opts){0}), 0);
	atomic_store(&p->shm->consumer_pid, 1);
	atomic_store(&p->shm->consumer_start, rf_thread_start_time(1, 1));
	CHECK(!rf_producer_consumer_alive(prod));
	CHECK_EQ(rf_ring_consumer_alive(p), 0);
	/* A consumer in another process (forked) is seen. */
	int pipefd[2];
	CHECK_EQ(pipe(pipefd), 0);
	pid_t kid = fork();
	if (kid == 0) {
		rf_ring *kc;
		char x = rf_ring_open(&kc, name, &o) == 0 ? 'y' : 'n';
		if (write(pipefd[1], &x, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char x;
	CHECK_EQ(read(pipefd[0], &x, 1), 1);
	CHECK_EQ(x, 'y');
	CHECK(rf_producer_consumer_alive(prod));
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	CHECK(!rf_producer_consumer_alive(prod));
	rf_ring_close(p);
	rf_producer_close(prod);
	rf_ring_unlink(name);
}

int main(void)
{
	test_forged_capacity();
	test_forged_head_tail();
	test_corrupt_length();
	test_corrupt_held();
	test_forged_padding();
	test_forged_consumer_pid();
	printf("test_ring_trust: ok\n");
	return RF_T_PASS;
}
