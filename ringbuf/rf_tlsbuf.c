/*
 * rf_tlsbuf.c - per-thread scratch buffers (see rf_tlsbuf.h).
 */
#include <stdlib.h>

#include "rf_tlsbuf.h"

static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;

uint8_t *rf_tlsbuf_grow(struct rf_tlsbuf *b, struct rf_tlsbuf_key *k, size_t want)
{
	if (b->cap >= want)
		return b->p;
	uint8_t *p = realloc(b->p, want);
	if (!p)
		return NULL;
	b->p = p;
	b->cap = want;
	pthread_mutex_lock(&keys_lock);
	if (!k->made)
		k->made = pthread_key_create(&k->key, free) == 0;
	bool made = k->made;
	pthread_mutex_unlock(&keys_lock);
	if (made) /* key and made are written once, under the lock */
		pthread_setspecific(k->key, p);
	return p;
}
