/*
 * rf_idmap.c - the persisted Inspect -> MLflow run id map of rf_track.
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
#include "rf_ring.h"
#include "rf_safefile.h"
#include "rf_track_int.h"

void rf_idmap_load(rf_track *t)
{
	t->idmap = json_object();
	if (!t->idmap_path[0])
		return;
	/* Only our own file: in group mode a planted map could point this
	 * sidecar's uploads at runs of someone's choosing. */
	int fd = rf_safe_open(t->idmap_path, O_RDONLY, 0, rf_ring_group_requested());
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (!f) {
		if (fd != -ENOENT)
			snprintf(t->st.last_error, sizeof t->st.last_error,
				 "run id map not read: %s", rf_ring_errmsg());
		if (fd >= 0)
			close(fd);
		return;
	}
	char line[1024];
	while (fgets(line, sizeof line, f)) {
		json_t *j = json_loads(line, 0, NULL); /* a torn last line just fails */
		const char *k = json_string_value(json_object_get(j, "key"));
		const char *id = json_string_value(json_object_get(j, "id"));
		const char *uri = json_string_value(json_object_get(j, "artifact_uri"));
		if (k && id)
			json_object_set_new(t->idmap, k, json_pack("[s,s]", id, uri ? uri : ""));
		json_decref(j);
	}
	fclose(f);
}

int rf_idmap_add(rf_track *t, struct mrun *r)
{
	json_object_set_new(t->idmap, r->key, json_pack("[s,s]", r->id, r->artifact_uri));
	if (!t->idmap_path[0])
		return 0;
	json_t *j = json_pack("{s:s,s:s,s:s}", "key", r->key, "id", r->id, "artifact_uri",
			      r->artifact_uri);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	int rc = 0;
	bool group = rf_ring_group_requested();
	int fd = rf_safe_open(t->idmap_path, O_WRONLY | O_CREAT | O_APPEND, group ? 0660 : 0600,
			      group);
	if (fd >= 0 && s) {
		size_t n = strlen(s);
		s[n] = '\n'; /* one write() per line: whole lines or nothing */
		if (write(fd, s, n + 1) != (ssize_t)(n + 1)) {
			rc = rf_err_set_sys(errno ? errno : EIO, "%s: write", t->idmap_path);
		}
		fdatasync(fd);
	} else {
		rc = fd < 0 ? fd : -ENOMEM; /* rf_safe_open() said why */
		if (fd >= 0)
			rf_err_set(ENOMEM, "%s", t->idmap_path);
	}
	if (fd >= 0)
		close(fd);
	free(s);
	return rc;
}
