/*
 * rf_tlsbuf.h - a per-thread scratch buffer that only grows and is freed when
 * its thread exits (the producer's overflow buffer for a record outgrowing
 * its claim, the ring's spill buffer).
 *
 *     static __thread struct rf_tlsbuf buf;
 *     static struct rf_tlsbuf_key buf_key = RF_TLSBUF_KEY_INIT;
 *     uint8_t *p = rf_tlsbuf_grow(&buf, &buf_key, want);
 */
#ifndef RF_TLSBUF_H
#define RF_TLSBUF_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rf_tlsbuf {
	uint8_t *p;
	size_t cap;
};

/* One per kind of buffer (process-wide): frees each thread's at its exit. */
struct rf_tlsbuf_key {
	pthread_key_t key;
	bool made;
};
#define RF_TLSBUF_KEY_INIT {.made = false}

/* b->p with at least `want` bytes (its contents kept), or NULL (ENOMEM; b
 * unchanged).  The slow path (growing) takes a process-wide lock once per
 * kind to create its key. */
uint8_t *rf_tlsbuf_grow(struct rf_tlsbuf *b, struct rf_tlsbuf_key *k, size_t want);

#endif
