/*
 * rf_idmap.c - the persisted Inspect -> MLflow run id map (rf_idmap.h).
 *
 * One JSON line per created run ({"key","id","artifact_uri"}), appended with
 * one write() each and fdatasync'd, in the state directory: a restarted
 * sidecar (or a replayed journal) reuses its runs instead of creating them
 * again, since runs/create is not idempotent.  A torn last line is skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rf_err.h"
#include "rf_idmap.h"
#include "rf_ring.h"
#include "rf_safefile.h"

int rf_idmap_load(struct rf_idmap *im, const char *path)
{
	snprintf(im->path, sizeof im->path, "%s", path ? path : "");
	im->map = json_object();
	if (!im->map)
		return rf_err_set(ENOMEM, "run id map: out of memory");
	if (!im->path[0])
		return 0;
	/* Only our own file: in group mode a planted map could point this
	 * sidecar's uploads at runs of someone's choosing. */
	int fd = rf_safe_open(im->path, O_RDONLY, 0, rf_ring_group_requested());
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (!f) {
		if (fd >= 0) {
			close(fd);
			return rf_err_set_sys(errno, "run id map not read: %s", im->path);
		}
		return fd == -ENOENT ? 0 : rf_err_wrap("run id map not read");
	}
	char line[1024];
	while (fgets(line, sizeof line, f)) {
		json_t *j = json_loads(line, 0, NULL); /* a torn last line just fails */
		const char *k = json_string_value(json_object_get(j, "key"));
		const char *id = json_string_value(json_object_get(j, "id"));
		const char *uri = json_string_value(json_object_get(j, "artifact_uri"));
		if (k && id)
			json_object_set_new(im->map, k, json_pack("[s,s]", id, uri ? uri : ""));
		json_decref(j);
	}
	fclose(f);
	return 0;
}

const char *rf_idmap_get(const struct rf_idmap *im, const char *key, const char **artifact_uri)
{
	json_t *known = json_object_get(im->map, key);
	const char *id = json_string_value(json_array_get(known, 0));
	if (id && artifact_uri)
		*artifact_uri = json_string_value(json_array_get(known, 1));
	return id;
}

void rf_idmap_free(struct rf_idmap *im)
{
	json_decref(im->map);
	im->map = NULL;
}

int rf_idmap_add(struct rf_idmap *im, const char *key, const char *id, const char *artifact_uri)
{
	json_object_set_new(im->map, key, json_pack("[s,s]", id, artifact_uri));
	if (!im->path[0])
		return 0;
	json_t *j = json_pack("{s:s,s:s,s:s}", "key", key, "id", id, "artifact_uri", artifact_uri);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	int rc = 0;
	bool group = rf_ring_group_requested();
	int fd = rf_safe_open(im->path, O_WRONLY | O_CREAT | O_APPEND, group ? 0660 : 0600, group);
	if (fd >= 0 && s) {
		size_t n = strlen(s);
		s[n] = '\n'; /* one write() per line: whole lines or nothing */
		if (write(fd, s, n + 1) != (ssize_t)(n + 1))
			rc = rf_err_set_sys(errno ? errno : EIO, "%s: write", im->path);
		fdatasync(fd);
	} else if (fd >= 0) {
		rc = rf_err_set(ENOMEM, "%s: out of memory", im->path);
	} else {
		rc = fd; /* rf_safe_open() said why */
	}
	if (fd >= 0)
		close(fd);
	free(s);
	return rc;
}
