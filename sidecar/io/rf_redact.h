/*
 * rf_redact.h - keep secrets out of what the sidecar copies from Inspect's
 * own log (the conversation, the log header, the raw file), which the hook
 * never saw.  The same rules as the producer's encoder: values under
 * secret-looking keys, "Bearer"/"Basic" strings, and any string containing
 * the value of a secret environment variable (ringflowd started by the hook
 * inherits the eval's environment, so it knows the same values).
 */
#ifndef RF_REDACT_H
#define RF_REDACT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Learn the secret values of this process's environment (names containing
 * KEY, TOKEN, SECRET, PASSWORD, PASSWD or CREDENTIAL; values >= 8 bytes). */
void rf_redact_init(void);
/* Learn the password (or the token-like user) inside a URI's userinfo. */
void rf_redact_add_uri(const char *uri);
/* uri with the password of its userinfo (or a userinfo without one, which
 * may be a token) replaced by "***": "http://u:pw@h/x" -> "http://u:***@h/x".
 * For every place a URI is shown (log lines, stats file, status). */
void rf_redact_uri(const char *uri, char *out, size_t len);
/* Do these bytes contain a known secret value? */
bool rf_redact_bytes_have_secret(const void *data, size_t len);
/* The same over a stream read in pieces (a log copied chunk by chunk): a
 * value split between two pieces is found too.  Zero-initialise, feed every
 * piece in order, read .found, then rf_redact_scan_end() (frees). */
struct rf_redact_scan {
	char *tail; /* the last (longest secret - 1) bytes seen */
	size_t len;
	bool found;
};
void rf_redact_scan(struct rf_redact_scan *s, const void *data, size_t n);
void rf_redact_scan_end(struct rf_redact_scan *s);
/* Replace every known secret value inside text (a request body, JSON with
 * the value unescaped inside strings) with "[REDACTED]"; *buf (malloc'ed,
 * kept NUL-terminated when its length changes) may be reallocated.
 * The last line of defence for everything the sidecar sends: a producer
 * whose own environment did not know a value (or the sidecar's own
 * MLFLOW_TRACKING_TOKEN/PASSWORD) cannot get it uploaded.  Returns hits. */
size_t rf_redact_text(char **buf, size_t *len);
/* Replace, in place, every secret in a JSON tree with "[REDACTED]".
 * Returns how many values were replaced. */
size_t rf_redact_json(json_t *j);

#endif
