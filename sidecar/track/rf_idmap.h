/*
 * rf_idmap.h - the persisted Inspect -> MLflow run id map of one
 * destination (rf_runs): a restarted sidecar, or a replayed journal, reuses
 * its runs instead of creating them again (runs/create is not idempotent).
 */
#ifndef RF_IDMAP_H
#define RF_IDMAP_H

#include <jansson.h>
#include <stdbool.h>

struct rf_idmap {
	json_t *map;       /* key -> [run id, artifact uri] */
	char path[600];    /* "" : kept in memory only */
};

/* Read the file at `path` (NULL or "": none).  0, or -errno with rf_err
 * set when it exists but cannot be read (the map starts empty then). */
int rf_idmap_load(struct rf_idmap *im, const char *path);
/* Remember a created run and append it to the file: 0, or -errno with
 * rf_err set when the line could not be written (still known in memory). */
int rf_idmap_add(struct rf_idmap *im, const char *key, const char *id, const char *artifact_uri);
/* The run id (and artifact URI) of `key`, NULL when not known. */
const char *rf_idmap_get(const struct rf_idmap *im, const char *key, const char **artifact_uri);
void rf_idmap_free(struct rf_idmap *im);

#endif
