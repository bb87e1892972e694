/*
 * rf_redact.c - see rf_redact.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rf_redact.h"
#include "ringflow.h"

#define MAX_SECRETS 64

extern char **environ;

static char *secrets[MAX_SECRETS];
static size_t secret_len[MAX_SECRETS];
static int nsecrets;

void rf_redact_init(void)
{
	for (char **e = environ; e && *e && nsecrets < MAX_SECRETS; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq || strlen(eq + 1) < RF_SECRET_ENV_MIN ||
		    !rf_secret_env_name(*e, (size_t)(eq - *e))) /* the producers' rule */
			continue;
		secrets[nsecrets] = strdup(eq + 1);
		secret_len[nsecrets] = strlen(eq + 1);
		if (secrets[nsecrets])
			nsecrets++;
	}
}

static void rf_redact_add(const char *value)
{
	/* Short values would match everywhere: the producers' rule. */
	if (!value || strlen(value) < RF_SECRET_ENV_MIN || nsecrets >= MAX_SECRETS)
		return;
	for (int i = 0; i < nsecrets; i++)
		if (!strcmp(secrets[i], value))
			return;
	if ((secrets[nsecrets] = strdup(value))) {
		secret_len[nsecrets] = strlen(value);
		nsecrets++;
	}
}

void rf_redact_add_uri(const char *uri)
{
	const char *p = strstr(uri, "://");
	const char *auth = p ? p + 3 : uri;
	size_t alen = strcspn(auth, "/?#");
	const char *at = memrchr(auth, '@', alen);
	const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	const char *from = colon ? colon + 1 : auth;
	if (at && at > from) {
		char *v = strndup(from, (size_t)(at - from));
		rf_redact_add(v);
		free(v);
	}
}

void rf_redact_uri(const char *uri, char *out, size_t len)
{
	const char *p = strstr(uri, "://");
	const char *auth = p ? p + 3 : uri;
	size_t alen = strcspn(auth, "/?#");
	const char *at = memrchr(auth, '@', alen);
	if (!at) {
		snprintf(out, len, "%s", uri);
		return;
	}
	const char *colon = memchr(auth, ':', (size_t)(at - auth));
	const char *keep_to = colon ? colon + 1 : auth; /* user name shown, the rest masked */
	snprintf(out, len, "%.*s***%s", (int)(keep_to - uri), uri, at);
}

bool rf_redact_bytes_have_secret(const void *data, size_t len)
{
	for (int i = 0; i < nsecrets; i++)
		if (len >= secret_len[i] && memmem(data, len, secrets[i], secret_len[i]))
			return true;
	return false;
}

void rf_redact_scan(struct rf_redact_scan *s, const void *data, size_t n)
{
	size_t keep = 0;
	for (int i = 0; i < nsecrets; i++)
		if (secret_len[i] - 1 > keep)
			keep = secret_len[i] - 1;
	if (s->found || !n || !keep)
		return;
	if (rf_redact_bytes_have_secret(data, n)) {
		s->found = true;
		return;
	}
	/* Across the seam: the tail before, then up to keep bytes of this. */
	size_t head = n < keep ? n : keep;
	char *w = malloc(s->len + head);
	if (!w) { /* cannot tell: say found, so the raw bytes are withheld */
		s->found = true;
		return;
	}
	if (s->len)
		memcpy(w, s->tail, s->len);
	memcpy(w + s->len, data, head);
	s->found = rf_redact_bytes_have_secret(w, s->len + head);
	/* The new tail: the last keep bytes of everything seen (w holds all of
	 * this piece when it is shorter than keep). */
	size_t take = n >= keep ? keep : (s->len + head > keep ? keep : s->len + head);
	const char *from = n >= keep ? (const char *)data + n - keep : w + (s->len + head - take);
	char *t = realloc(s->tail, keep);
	if (t) {
		memcpy(t, from, take);
		s->tail = t;
		s->len = take;
	} else {
		s->found = true;
	}
	free(w);
}

void rf_redact_scan_end(struct rf_redact_scan *s)
{
	free(s->tail);
	s->tail = NULL;
	s->len = 0;
}

size_t rf_redact_text(char **buf, size_t *len)
{
	static const char mark[] = "[REDACTED]";
	const size_t ml = sizeof mark - 1;
	size_t hits = 0;
	for (int i = 0; i < nsecrets; i++) {
		size_t sl = secret_len[i], from = 0;
		char *at;
		while (*len - from >= sl && (at = memmem(*buf + from, *len - from, secrets[i], sl))) {
			size_t off = (size_t)(at - *buf);
			hits++;
			if (ml > sl) {
				char *nb = realloc(*buf, *len + (ml - sl) + 1);
				if (!nb) { /* cannot grow: blank it out in place */
					memset(at, '*', sl);
					from = off + sl;
					continue;
				}
				*buf = nb;
				at = nb + off;
			}
			memmove(at + ml, at + sl, *len - off - sl);
			memcpy(at, mark, ml);
			*len = *len - sl + ml;
			if (ml != sl)
				(*buf)[*len] = 0; /* grown (+1 allocated) or shrunk: in bounds */
			from = off + ml;
		}
	}
	return hits;
}

static bool string_is_secret(const char *s, size_t n)
{
	return (n >= 7 && !strncasecmp(s, "Bearer ", 7)) || (n >= 6 && !strncasecmp(s, "Basic ", 6)) ||
	       rf_redact_bytes_have_secret(s, n);
}

size_t rf_redact_json(json_t *j)
{
	size_t n = 0;
	if (json_is_object(j)) {
		const char *k;
		json_t *v;
		json_object_foreach(j, k, v) {
			if (rf_secret_key(k) && !json_is_null(v)) {
				json_object_set_new(j, k, json_string("[REDACTED]"));
				n++;
			} else if (json_is_string(v) &&
				   string_is_secret(json_string_value(v), json_string_length(v))) {
				json_object_set_new(j, k, json_string("[REDACTED]"));
				n++;
			} else {
				n += rf_redact_json(v);
			}
		}
	} else if (json_is_array(j)) {
		for (size_t i = 0; i < json_array_size(j); i++) {
			json_t *v = json_array_get(j, i);
			if (json_is_string(v) && string_is_secret(json_string_value(v), json_string_length(v))) {
				json_array_set_new(j, i, json_string("[REDACTED]"));
				n++;
			} else {
				n += rf_redact_json(v);
			}
		}
	}
	return n;
}
