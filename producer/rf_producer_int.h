/* rf_producer_int.h - private: the producer handle. */
#ifndef RF_PRODUCER_INT_H
#define RF_PRODUCER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "rf_ring.h"
#include "ringflow.h"

#define RF_MAX_SECRETS 64

struct rf_producer {
	rf_ring *ring;
	size_t max_text;
	size_t max_record;
	_Atomic uint64_t records, errors, truncated, redacted;
	/* Claim size per record type: a decaying high-water mark of encoded
	 * sizes, so claims fit without reserving far more ring than used. */
	_Atomic uint32_t type_hint[RF_EV_MAX_BUILTIN + 1];
	pthread_mutex_t secrets_lock; /* writers only; readers see a published count */
	_Atomic int nsecrets;
	char *secrets[RF_MAX_SECRETS];
	size_t secret_len[RF_MAX_SECRETS];
};

bool rf_producer_value_is_secret(rf_producer *p, const char *s, size_t n);

#endif
