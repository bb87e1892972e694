/*
 * rf_test_ring.h - a fresh ring for one test: its consumer and a producer
 * in this process, and everything removed after.
 */
#ifndef RF_TEST_RING_H
#define RF_TEST_RING_H

#include "rf_ring.h"
#include "rf_test.h"

/* name[64] gets a ring name unique to this process and `tag`; producers
 * wait up to 1 ms for room, then follow `policy`. */
static inline void rf_test_open_pair(char *name, const char *tag, size_t capacity, int policy,
				     rf_ring **prod, rf_ring **cons)
{
	rf_test_ring_name(name, 64, tag);
	struct rf_ring_opts o = {.capacity = capacity, .flags = RF_RING_CREATE | RF_RING_CONSUMER,
				 .full_policy = policy, .full_wait_ns = 1000000};
	CHECK_EQ(rf_ring_open(cons, name, &o), 0);
	o.flags = 0;
	CHECK_EQ(rf_ring_open(prod, name, &o), 0);
}

/* Only the consumer end (producers: other processes, or libringflow). */
static inline rf_ring *rf_test_open_consumer(char *name, const char *tag, size_t capacity)
{
	rf_test_ring_name(name, 64, tag);
	rf_ring *cons;
	struct rf_ring_opts o = {.capacity = capacity, .flags = RF_RING_CREATE | RF_RING_CONSUMER};
	CHECK_EQ(rf_ring_open(&cons, name, &o), 0);
	return cons;
}

static inline void rf_test_close_pair(const char *name, rf_ring *prod, rf_ring *cons)
{
	rf_ring_close(prod);
	rf_ring_close(cons);
	rf_ring_unlink(name);
}

#endif
