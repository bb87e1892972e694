/*
 * rf_zone.c - per-thread reused msgpack zones (see rf_zone.h).
 */
#include <pthread.h>
#include <stdlib.h>

#include "rf_zone.h"

struct zones {
	msgpack_zone *z[RF_ZONE_USES];
};

static __thread struct zones *tls_zones;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key; /* frees a thread's zones at its exit */

static void free_zones(void *p)
{
	struct zones *zs = p;
	for (int i = 0; i < RF_ZONE_USES; i++)
		if (zs->z[i])
			msgpack_zone_free(zs->z[i]);
	free(zs);
}

static void key_init(void)
{
	pthread_key_create(&key, free_zones);
}

msgpack_zone *rf_zone_get(enum rf_zone_use use, size_t chunk)
{
	if (!tls_zones) {
		if (!(tls_zones = calloc(1, sizeof *tls_zones)))
			return NULL;
		pthread_once(&key_once, key_init);
		pthread_setspecific(key, tls_zones);
	}
	msgpack_zone **z = &tls_zones->z[use];
	if (!*z)
		return *z = msgpack_zone_new(chunk);
	msgpack_zone_clear(*z);
	return *z;
}
