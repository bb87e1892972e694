/*
 * rf_dest.c - route each run's records to its destination's tracker and
 * trace uploader (rf_dest.h; docs/DESIGN.md "Destinations").
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "rf_hash.h"
#include "rf_decode.h"
#include "rf_dest.h"
#include "rf_err.h"
#include "rf_mlflow.h"
#include "ringflow.h"

/* One per distinct tracking URI: the MLflow client state. */
struct client {
	struct client *next;
	char uri[512];
	rf_mlflow *m;
};

struct dest {
	rf_dests *d;
	bool own;              /* the sidecar's own destination (not named in reports) */
	struct client *c;
	char exp[257];
	bool art;
	rf_track *track;
	rf_traces *traces;
};

struct rf_dests {
	rf_http *http;
	struct rf_dests_opts o;
	char uri[512], exp[257], state_dir[512];
	struct client *clients;
	struct dest *v[RF_DEST_MAX];
	size_t n;
	json_t *runs;  /* Inspect run_id -> destination index (-1: refused) */
	json_t *evals; /* eval_id -> [index, run_id] */
	struct rf_dests_stats st;
};

#define dest_err(d, ...) rf_err_report(&(d)->o.err, __VA_ARGS__)

/* A tracker's or uploader's report: say which destination it is about. */
static void dest_report(void *arg, const char *msg)
{
	struct dest *x = arg;
	if (x->own)
		rf_err_report(&x->d->o.err, "%s", msg);
	else
		rf_err_report(&x->d->o.err, "%.360s (to %.80s, experiment %.40s)", msg, x->c->uri,
			      x->exp);
}

/* ---- URIs ---- */

int rf_dest_uri_normalize(const char *uri, char *out, size_t cap, char *user, size_t ucap,
			  char *pass, size_t pcap)
{
	if (user && ucap)
		user[0] = 0;
	if (pass && pcap)
		pass[0] = 0;
	if (!uri || !*uri || strlen(uri) >= 500)
		return -EINVAL;
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *s = NULL, *us = NULL, *pw = NULL;
	int rc = -EINVAL;
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, uri, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") && strcasecmp(scheme, "https")) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
		goto out;
	if (user && curl_url_get(u, CURLUPART_USER, &us, CURLU_URLDECODE) == CURLUE_OK)
		snprintf(user, ucap, "%s", us);
	if (pass && curl_url_get(u, CURLUPART_PASSWORD, &pw, CURLU_URLDECODE) == CURLUE_OK)
		snprintf(pass, pcap, "%s", pw);
	/* Credentials never travel inside the URI we keep, log or compare. */
	curl_url_set(u, CURLUPART_USER, NULL, 0);
	curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
	curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
	if (curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK)
		goto out;
	size_t n = strlen(s);
	while (n && s[n - 1] == '/')
		s[--n] = 0;
	if (n >= cap)
		goto out;
	memcpy(out, s, n + 1);
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(s);
	curl_free(us);
	curl_free(pw);
	curl_url_cleanup(u);
	return rc;
}

/* scheme, host and port of an http(s) URL ("" when unusable). */
static void origin(const char *uri, char *out, size_t cap)
{
	out[0] = 0;
	CURLU *u = uri ? curl_url() : NULL;
	char *scheme = NULL, *host = NULL, *port = NULL;
	if (u && curl_url_set(u, CURLUPART_URL, uri, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
		snprintf(out, cap, "%s://%s:%s", scheme, host, port);
		for (char *p = out; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

bool rf_dest_same_origin(const char *a, const char *b)
{
	char oa[600], ob[600];
	origin(a, oa, sizeof oa);
	origin(b, ob, sizeof ob);
	return oa[0] && !strcmp(oa, ob);
}

/* ---- destinations ---- */

/* The client of this URI, created on first use; NULL with rf_err set. */
static struct client *client_of(rf_dests *d, const char *uri)
{
	for (struct client *c = d->clients; c; c = c->next)
		if (!strcmp(c->uri, uri))
			return c;
	struct client *c = calloc(1, sizeof *c);
	if (!c) {
		rf_err_set(ENOMEM, "MLflow client for %s: out of memory", uri);
		return NULL;
	}
	rf_err_clear();
	int rc = rf_mlflow_new(&c->m, d->http, uri);
	if (rc) {
		if (rf_err_code())
			rf_err_wrap("MLflow client for %s", uri);
		else
			rf_err_set_sys(rc, "MLflow client for %s", uri);
		free(c);
		return NULL;
	}
	snprintf(c->uri, sizeof c->uri, "%s", uri);
	/* The sidecar's credentials (and TLS settings) are for its own server. */
	rf_mlflow_set_foreign(c->m, !d->o.creds_everywhere && !rf_dest_same_origin(uri, d->uri));
	/* On a credential ring they go to every destination's own server,
	 * still never to another origin one of them names (rf_http). */
	if (d->o.creds_everywhere && (rc = rf_http_allow_origin(d->http, uri))) {
		rf_err_set_sys(rc, "credentials for %s", uri);
		rf_mlflow_free(c->m);
		free(c);
		return NULL;
	}
	c->next = d->clients;
	d->clients = c;
	return c;
}

/* Index of the destination, created on first use; -1 with rf_err set when
 * it cannot be. */
static int dest_of(rf_dests *d, const char *uri, const char *exp, bool art)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->v[i]->c->uri, uri) && !strcmp(d->v[i]->exp, exp) && d->v[i]->art == art)
			return (int)i;
	if (d->n == RF_DEST_MAX) {
		rf_err_set(ENOSPC, "more than %d destinations: runs to %s (experiment %s) refused",
			   RF_DEST_MAX, uri, exp);
		return -1;
	}
	struct client *c = client_of(d, uri);
	if (!c)
		return -1;
	struct dest *x = calloc(1, sizeof *x);
	if (!x) {
		rf_err_set(ENOMEM, "destination %s (experiment %s): out of memory", uri, exp);
		return -1;
	}
	x->d = d;
	x->own = d->n == 0;
	x->c = c;
	snprintf(x->exp, sizeof x->exp, "%s", exp);
	x->art = art;
	/* The id map is per (server, experiment): a restart reuses the runs of
	 * this destination, never another server's with the same names. */
	char idmap_id[16];
	snprintf(idmap_id, sizeof idmap_id, "%08x", (uint32_t)rf_hash_str(uri));
	struct rf_track_opts to = {.experiment = exp, .state_dir = d->o.state_dir,
				   .idmap_id = idmap_id, .metrics_ms = d->o.metrics_ms,
				   .max_batch = d->o.max_batch, .log_artifacts = art,
				   .err = {dest_report, x}};
	if (rf_track_new(&x->track, c->m, &to)) {
		rf_err_wrap("tracker for %s (experiment %s)", uri, exp);
		free(x);
		return -1;
	}
	struct rf_traces_opts xo = d->o.traces;
	xo.err = (struct rf_err_sink){dest_report, x};
	if (rf_traces_new(&x->traces, c->m, d->http, x->track, &xo)) {
		rf_err_wrap("trace uploader for %s (experiment %s)", uri, exp);
		rf_track_free(x->track);
		free(x);
		return -1;
	}
	d->v[d->n] = x;
	d->st.destinations++;
	return (int)d->n++;
}

int rf_dests_new(rf_dests **out, rf_http *http, const struct rf_dests_opts *o)
{
	rf_dests *d = calloc(1, sizeof *d);
	if (!d)
		return rf_err_set(ENOMEM, "destinations: out of memory");
	d->http = http;
	d->o = *o;
	snprintf(d->uri, sizeof d->uri, "%s", o->uri ? o->uri : "");
	snprintf(d->exp, sizeof d->exp, "%s", o->experiment && *o->experiment ? o->experiment : "inspect_ai");
	snprintf(d->state_dir, sizeof d->state_dir, "%s", o->state_dir ? o->state_dir : "");
	d->o.uri = d->uri;
	d->o.experiment = d->exp;
	d->o.state_dir = o->state_dir ? d->state_dir : NULL;
	d->runs = json_object();
	d->evals = json_object();
	if (!d->runs || !d->evals) {
		rf_dests_free(d);
		return rf_err_set(ENOMEM, "destinations: out of memory");
	}
	/* The sidecar's own destination is index 0: the default. */
	if (dest_of(d, d->uri, d->exp, o->log_artifacts) != 0) {
		int rc = rf_err_code();
		rf_dests_free(d);
		return -(rc ? rc : ENOMEM);
	}
	*out = d;
	return 0;
}

void rf_dests_free(rf_dests *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		rf_traces_free(d->v[i]->traces);
		rf_track_free(d->v[i]->track);
		free(d->v[i]);
	}
	while (d->clients) {
		struct client *c = d->clients;
		d->clients = c->next;
		rf_mlflow_free(c->m);
		free(c);
	}
	json_decref(d->runs);
	json_decref(d->evals);
	free(d);
}

/* ---- routing ---- */

static bool field(const msgpack_object *r, const char *k, char *out, size_t cap)
{
	const char *s;
	size_t n;
	bool trunc;
	if (!rf_obj_text(rf_obj_get(r, k), &s, &n, &trunc) || !n || n >= cap)
		return false;
	memcpy(out, s, n);
	out[n] = 0;
	return true;
}

/* The destination a run_start names: 0 (the sidecar's) when it names none;
 * -1 when what it names cannot be served. */
static int named(rf_dests *d, const msgpack_object *r, const char *run_id)
{
	const msgpack_object *u = rf_obj_get(r, "tracking_uri");
	if (!u || u->type == MSGPACK_OBJECT_NIL)
		return 0;
	const char *s;
	size_t n;
	char raw[512], uri[512], exp[257];
	if (!rf_obj_str(u, &s, &n) || n >= sizeof raw) {
		dest_err(d, "run %s: tracking_uri is not a usable string: its records are dropped",
			 run_id);
		return -1;
	}
	memcpy(raw, s, n);
	raw[n] = 0;
	/* A URI with userinfo is served without it: credentials never come
	 * through the ring (the hook strips them). */
	if (rf_dest_uri_normalize(raw, uri, sizeof uri, NULL, 0, NULL, 0)) {
		dest_err(d, "run %s: tracking_uri is not an http(s) URL: its records are dropped",
			 run_id);
		return -1;
	}
	if (!field(r, "experiment_name", exp, sizeof exp))
		snprintf(exp, sizeof exp, "%s", d->exp);
	bool art = d->o.log_artifacts, b;
	if (rf_obj_bool(rf_obj_get(r, "log_artifacts"), &b))
		art = b;
	int i = dest_of(d, uri, exp, art);
	if (i < 0) /* counted in refused_runs by the caller */
		dest_err(d, "run %s: %s: its records are dropped", run_id, rf_err_msg());
	return i;
}

static int route(rf_dests *d, int type, const msgpack_object *r)
{
	char run_id[128] = "", eval_id[128] = "";
	bool has_run = field(r, "run_id", run_id, sizeof run_id);
	bool has_eval = field(r, "eval_id", eval_id, sizeof eval_id);
	json_t *k;
	if (type == RF_EV_RUN_START && has_run && !json_object_get(d->runs, run_id)) {
		int i = named(d, r, run_id);
		if (i < 0)
			d->st.refused_runs++;
		json_object_set_new(d->runs, run_id, json_integer(i));
	}
	if (has_run && (k = json_object_get(d->runs, run_id))) {
		int i = (int)json_integer_value(k);
		if (type == RF_EV_TASK_START && has_eval && !json_object_get(d->evals, eval_id))
			json_object_set_new(d->evals, eval_id, json_pack("[i,s]", i, run_id));
		return i;
	}
	if (has_eval && (k = json_object_get(d->evals, eval_id)))
		return (int)json_integer_value(json_array_get(k, 0));
	return 0;
}

/* A run is over: forget its routes (the journal keeps its run_start only
 * while the run is open, so nothing later can need them). */
static void forget(rf_dests *d, const msgpack_object *r)
{
	char run_id[128];
	if (!field(r, "run_id", run_id, sizeof run_id))
		return;
	json_object_del(d->runs, run_id);
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(d->evals, tmp, k, v) {
		if (!strcmp(json_string_value(json_array_get(v, 1)), run_id))
			json_object_del(d->evals, k);
	}
}

void rf_dests_record(rf_dests *d, int type, const msgpack_object *root)
{
	int i = route(d, type, root);
	if (i < 0 || (size_t)i >= d->n) {
		d->st.refused_records++;
	} else {
		rf_track_record(d->v[i]->track, type, root);
		rf_traces_record(d->v[i]->traces, type, root);
	}
	if (type == RF_EV_RUN_END)
		forget(d, root);
}

/* ---- pump and state ---- */

void rf_dests_pump(rf_dests *d, bool flush_now)
{
	for (size_t i = 0; i < d->n; i++) {
		rf_track_pump(d->v[i]->track, flush_now);
		rf_traces_pump(d->v[i]->traces, flush_now);
	}
}

bool rf_dests_idle(rf_dests *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (!rf_track_idle(d->v[i]->track) || !rf_traces_idle(d->v[i]->traces))
			return false;
	return true;
}

bool rf_dests_drained(rf_dests *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (!rf_track_drained(d->v[i]->track) || !rf_traces_idle(d->v[i]->traces))
			return false;
	return true;
}

bool rf_dests_empty(rf_dests *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (!rf_track_empty(d->v[i]->track) || !rf_traces_empty(d->v[i]->traces))
			return false;
	return true;
}

#define ADD(f) (st->f += x.f)

void rf_dests_track_stats(rf_dests *d, struct rf_track_stats *st)
{
	memset(st, 0, sizeof *st);
	for (size_t i = 0; i < d->n; i++) {
		struct rf_track_stats x;
		rf_track_stats(d->v[i]->track, &x);
		ADD(records), ADD(ignored), ADD(invalid), ADD(bad_fields), ADD(runs_created);
		ADD(runs_reused), ADD(runs_ended), ADD(metrics), ADD(params), ADD(tags);
		ADD(batches), ADD(rejected), ADD(artifacts), ADD(artifacts_failed);
		ADD(runs_failed), ADD(keys_capped);
		ADD(ends_held), ADD(end_hold_expired), ADD(pending), ADD(artifact_jobs);
	}
}

void rf_dests_traces_stats(rf_dests *d, struct rf_traces_stats *st)
{
	memset(st, 0, sizeof *st);
	for (size_t i = 0; i < d->n; i++) {
		struct rf_traces_stats x;
		rf_traces_stats(d->v[i]->traces, &x);
		ADD(traces), ADD(traces_done), ADD(traces_failed), ADD(spans), ADD(spans_sent);
		ADD(spans_failed), ADD(spans_forced), ADD(assessments), ADD(late);
		ADD(otlp_requests), ADD(info_requests), ADD(export_spans), ADD(export_failed);
		ADD(held), ADD(spans_capped), ADD(waiting), ADD(behind), ADD(spans_unsent);
		ADD(mem_bytes), ADD(spooled), ADD(spooled_total), ADD(spool_bytes);
		if (x.lag_ms > st->lag_ms) /* the oldest wait anywhere */
			st->lag_ms = x.lag_ms;
	}
}

uint64_t rf_dests_trace_mem(rf_dests *d)
{
	uint64_t n = 0;
	for (size_t i = 0; i < d->n; i++)
		n += rf_traces_mem(d->v[i]->traces);
	return n;
}

void rf_dests_pressure(rf_dests *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (rf_traces_idle(d->v[i]->traces))
			rf_traces_pressure(d->v[i]->traces);
}

void rf_dests_stats(rf_dests *d, struct rf_dests_stats *st)
{
	*st = d->st;
}
