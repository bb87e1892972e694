/*
 * rf_trace_spool.c - what held traces weigh, and complete traces waiting
 * for MLflow kept on disk instead of in memory (RINGFLOW_TRACE_MEM_MB).
 *
 * Weight: the bytes a trace's structures and jansson values take, estimated
 * by walking them (jansson's object, array and string sizes plus malloc's
 * per-block overhead); a span already sent is not weighed (see
 * rf_trace_weigh).  A complete trace is weighed once, when it completes;
 * open traces are weighed again at most every OPEN_WEIGH_MS.
 *
 * Spool: when the traces held weigh more than half the budget, complete
 * traces nothing has been sent for yet (their StartTraceV3 not sent, no span
 * in flight) are written to an unnamed file in the spool directory (a JSON
 * document each, behind its 8-byte length) and freed; the oldest few stay,
 * they are sent next.  They come back, oldest first, a few at a time, when
 * few complete traces are left to send and the traces in memory weigh less
 * than three quarters of the budget; one read back is sent next and never
 * written out again.  (Open traces cannot wait on disk: with 100 samples at
 * once they alone can weigh half the budget, so reading back only below a
 * quarter, as before, left the server idle while traces waited on disk.)
 * The file is unlinked from the start (O_TMPFILE): a
 * killed sidecar leaves nothing behind, and the journal still holds every
 * record of the runs not yet closed, so a restart rebuilds these traces.
 * What cannot be spooled (open traces, traces partly sent) is what the
 * memory gate weighs (rf_gate.h): past the budget ringflowd takes no more
 * records from the ring until it drains.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rf_trace_table.h"

#define OPEN_WEIGH_MS 250
#define OPEN_WEIGH_RECS 1024
#define KEEP_READY 8      /* complete traces kept in memory: the next to send */
#define RELOAD_BELOW 16   /* reload when fewer complete traces wait in memory */
#define RELOAD_MAX 256    /* traces read back per pump */
#define BLOCK 16          /* malloc's overhead per block */
#define ID_SLOTS 65536    /* rf_trace_spool_may_hold: 256 KiB of counters */

static size_t id_slot(const uint8_t id[16])
{
	return (size_t)(rf_hash64(1, id, 16) % ID_SLOTS);
}

struct rf_tspool {
	int fd;
	uint64_t rd, wr;          /* read and write offsets */
	json_t *runs;             /* run key -> traces spooled for it */
	uint32_t ids[ID_SLOTS];   /* traces spooled per hash slot of their id */
};

/* ---- weight ---- */

static size_t jw(json_t *v)
{
	if (!v)
		return 0;
	size_t n;
	const char *k;
	json_t *c;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		/* json_object_t and its hashtable, then a pair per key */
		n = 96 + BLOCK + 16 * json_object_size(v);
		json_object_foreach(v, k, c)
			n += 48 + BLOCK + strlen(k) + jw(c);
		return n;
	case JSON_ARRAY:
		n = 40 + 2 * BLOCK + 8 * json_array_size(v);
		for (size_t i = 0; i < json_array_size(v); i++)
			n += jw(json_array_get(v, i));
		return n;
	case JSON_STRING:
		return 32 + 2 * BLOCK + json_string_length(v) + 1;
	default:
		return 24 + BLOCK;
	}
}

static size_t sw(const char *s)
{
	return s ? strlen(s) + 1 + BLOCK : 0;
}

size_t rf_trace_weigh(const struct xtrace *t)
{
	const struct rf_ttrace *tr = t->tr;
	size_t n = sizeof *t + sizeof *tr + 3 * BLOCK;
	n += jw(t->tags) + jw(t->metadata) + jw(t->assessments) + jw(t->info);
	n += t->enc ? t->enc_len + BLOCK : 0;
	for (size_t i = 0; i < tr->n; i++) {
		const struct rf_tspan *s = &tr->spans[i];
		/* A sent span keeps only its slot (~100 bytes, for its children's
		 * parent links), bounded by RF_TRACE_SPANS_MAX per trace and not
		 * weighed: sending cannot free it before its trace ends, and a
		 * weight that cannot drain would hold the memory gate shut. */
		if (s->sent)
			continue;
		n += sizeof *s + 2 * sizeof *tr->index + sw(s->name) + sw(s->type) + sw(s->status_msg) + jw(s->attrs) + jw(s->inputs) +
		     jw(s->outputs) + jw(s->events);
	}
	return n;
}

/* A complete trace: weighed once (it changes little after its end). */
void rf_trace_spool_account(rf_traces *x, struct xtrace *t)
{
	x->done_bytes -= t->weight;
	t->weight = rf_trace_weigh(t);
	x->done_bytes += t->weight;
}

void rf_trace_spool_forget(rf_traces *x, struct xtrace *t)
{
	x->done_bytes -= t->weight;
	t->weight = 0;
}

/* Open traces, weighed again at most every OPEN_WEIGH_MS (pump) or every
 * OPEN_WEIGH_RECS trace records (a spill file: no pump between them). */
static void weigh_open(rf_traces *x, uint64_t now, bool force)
{
	if (!force && now - x->open_weighed_at < OPEN_WEIGH_MS && x->open_weighed_at)
		return;
	x->open_weighed_at = now;
	x->recs_unweighed = 0;
	uint64_t n = 0;
	for (struct xtrace *t = x->list; t; t = t->next)
		if (!t->complete)
			n += rf_trace_weigh(t);
	x->open_bytes = n;
}

uint64_t rf_trace_spool_mem(rf_traces *x)
{
	return x->done_bytes + x->open_bytes;
}

/* ---- the file ---- */

static int spool_open(rf_traces *x)
{
	if (x->sp)
		return x->sp->fd >= 0 ? 0 : -EIO;
	struct rf_tspool *sp = calloc(1, sizeof *sp);
	if (!sp)
		return -ENOMEM;
	sp->fd = -1;
	sp->runs = json_object();
	x->sp = sp;
	const char *dir = x->o.spool_dir && *x->o.spool_dir ? x->o.spool_dir : "/tmp";
	sp->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (sp->fd < 0) {
		/* No O_TMPFILE on this file system: a named file, unlinked at once. */
		char path[600];
		snprintf(path, sizeof path, "%s/traces-XXXXXX", dir);
		sp->fd = mkostemp(path, O_CLOEXEC);
		if (sp->fd >= 0)
			unlink(path);
	}
	if (sp->fd < 0) {
		int e = errno;
		rf_traces_err(x, "trace spool in %s: %s (complete traces stay in memory; the memory "
			      "gate bounds them)", dir, strerror(e));
		return -e;
	}
	return 0;
}

/* All of n bytes at off, written (wr) or read: 0 or -errno. */
static int io_all(int fd, void *p, size_t n, uint64_t off, bool wr)
{
	char *c = p;
	while (n) {
		ssize_t k = wr ? pwrite(fd, c, n, (off_t)off) : pread(fd, c, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		c += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* ---- a trace as JSON and back ---- */

static json_t *jor(json_t *v)
{
	return v ? json_incref(v) : json_null();
}

static json_t *span_json(const struct rf_tspan *s)
{
	return json_pack("{s:I,s:I,s:s?,s:s?,s:I,s:I,s:i,s:s?,s:o,s:o,s:o,s:o}", "id", (json_int_t)s->id,
			 "parent", (json_int_t)s->parent, "name", s->name, "type", s->type, "start",
			 (json_int_t)s->start_ns, "end", (json_int_t)s->end_ns, "status", s->status,
			 "msg", s->status_msg, "attrs", jor(s->attrs), "in", jor(s->inputs), "out",
			 jor(s->outputs), "ev", jor(s->events));
}

static json_t *trace_json(const struct xtrace *t)
{
	char id[33];
	for (int i = 0; i < 16; i++)
		snprintf(id + 2 * i, 3, "%02x", t->tr->id[i]);
	json_t *spans = json_array();
	for (size_t i = 0; i < t->tr->n; i++)
		json_array_append_new(spans, span_json(&t->tr->spans[i]));
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:I,s:b,s:I,s:I,s:I,s:o}", "id", id,
			 "exp_name", t->exp_name, "exp_id", t->exp_id, "run_key", t->run_key,
			 "inspect_run", t->inspect_run, "eval_id", t->eval_id, "tags", jor(t->tags),
			 "metadata", jor(t->metadata), "assessments", jor(t->assessments), "info",
			 jor(t->info), "root", (json_int_t)t->tr->root, "progressive", t->progressive,
			 "done_ms", (json_int_t)t->done_ms, "capped", (json_int_t)t->tr->capped,
			 "capped_seen", (json_int_t)t->capped_seen, "spans", spans);
}

static json_t *take(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return v && !json_is_null(v) ? json_incref(v) : NULL;
}

static void set_str(char *dst, size_t cap, json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	snprintf(dst, cap, "%s", s ? s : "");
}

static uint64_t geti(json_t *o, const char *k)
{
	return (uint64_t)json_integer_value(json_object_get(o, k));
}

/* Back into the table: 0, or -EAGAIN (no room now: try later), or -EINVAL
 * (not a trace of ours: counted as failed by the caller). */
static bool id_of(json_t *j, uint8_t id[16])
{
	const char *hex = json_string_value(json_object_get(j, "id"));
	if (!hex || strlen(hex) != 32)
		return false;
	for (int i = 0; i < 16; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return false;
		id[i] = (uint8_t)v;
	}
	return true;
}

static int trace_back(rf_traces *x, json_t *j)
{
	uint8_t id[16];
	if (!id_of(j, id))
		return -EINVAL;
	if (x->ntraces >= RF_TRACES_HELD_MAX)
		return -EAGAIN;
	uint64_t traces = x->st.traces, late = x->st.late;
	struct xtrace *t = rf_traces_get(x, id, true);
	x->st.traces = traces; /* counted when it began */
	if (!t) {
		x->st.late = late;
		return rf_traces_recent(x, id) ? 0 : -EAGAIN; /* already uploaded: nothing to do */
	}
	t->reloaded = true;
	set_str(t->exp_name, sizeof t->exp_name, j, "exp_name");
	set_str(t->exp_id, sizeof t->exp_id, j, "exp_id");
	set_str(t->run_key, sizeof t->run_key, j, "run_key");
	set_str(t->inspect_run, sizeof t->inspect_run, j, "inspect_run");
	set_str(t->eval_id, sizeof t->eval_id, j, "eval_id");
	json_t *v;
	if ((v = take(j, "tags"))) {
		json_decref(t->tags);
		t->tags = v;
	}
	if ((v = take(j, "metadata"))) {
		json_decref(t->metadata);
		t->metadata = v;
	}
	if ((v = take(j, "assessments"))) {
		json_decref(t->assessments);
		t->assessments = v;
	}
	json_decref(t->info);
	t->info = take(j, "info");
	t->progressive = json_is_true(json_object_get(j, "progressive"));
	t->tr->root = geti(j, "root");
	t->tr->capped = geti(j, "capped");
	t->capped_seen = geti(j, "capped_seen");
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(j, "spans"), i, o)
	{
		struct rf_tspan *s = rf_ttrace_span(t->tr, geti(o, "id"), true);
		if (!s)
			continue; /* counted in capped */
		bool was_unsent = s->end_ns && !s->sent;
		s->parent = geti(o, "parent");
		rf_tspan_set_name(s, json_string_value(json_object_get(o, "name")),
				 json_string_value(json_object_get(o, "type")));
		s->start_ns = (int64_t)geti(o, "start");
		s->end_ns = (int64_t)geti(o, "end");
		s->status = (int)geti(o, "status");
		free(s->status_msg);
		const char *msg = json_string_value(json_object_get(o, "msg"));
		s->status_msg = msg ? strdup(msg) : NULL;
		json_decref(s->attrs);
		s->attrs = take(o, "attrs");
		if (!s->attrs)
			s->attrs = json_object();
		json_decref(s->inputs);
		s->inputs = take(o, "in");
		json_decref(s->outputs);
		s->outputs = take(o, "out");
		json_decref(s->events);
		s->events = take(o, "ev");
		s->sent = false;
		if (s->end_ns && !was_unsent)
			t->tr->unsent_ended++;
	}
	t->complete = true;
	t->done_ms = geti(j, "done_ms");
	rf_trace_spool_account(x, t);
	return 0;
}

static bool spoolable(const struct xtrace *t)
{
	return t->complete && t->info_state == 0 && !t->spans_inflight;
}

static int spool_one(rf_traces *x, struct xtrace *t)
{
	json_t *j = trace_json(t);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s)
		return -ENOMEM;
	uint64_t len = strlen(s);
	struct rf_tspool *sp = x->sp;
	int rc = io_all(sp->fd, &len, sizeof len, sp->wr, true);
	if (!rc)
		rc = io_all(sp->fd, s, len, sp->wr + sizeof len, true);
	free(s);
	if (rc) {
		rf_traces_err(x, "trace spool: write: %s (complete traces stay in memory; the memory "
			      "gate bounds them)", strerror(-rc));
		return rc;
	}
	sp->wr += sizeof len + len;
	sp->ids[id_slot(t->tr->id)]++;
	json_t *c = json_object_get(sp->runs, t->run_key);
	json_object_set_new(sp->runs, t->run_key, json_integer(json_integer_value(c) + 1));
	x->st.spooled++;
	x->st.spooled_total++;
	rf_trace_spool_forget(x, t);
	rf_traces_unlink(x, t);
	rf_traces_free_one(t);
	return 0;
}

/* Over half the budget: the newest spoolable complete traces go to disk
 * (not the oldest KEEP_READY: they are sent next). */
void rf_trace_spool_evict(rf_traces *x)
{
	uint64_t half = x->o.mem_max / 2;
	if (!x->o.mem_max || rf_trace_spool_mem(x) <= half || x->spool_failed)
		return;
	if (spool_open(x)) {
		x->spool_failed = true;
		return;
	}
	size_t keep = 0;
	for (struct xtrace *t = x->list, *n; t && rf_trace_spool_mem(x) > half; t = n) {
		n = t->next;
		if (!spoolable(t) || t->reloaded || keep++ < KEEP_READY)
			continue;
		if (spool_one(x, t)) {
			x->spool_failed = true;
			return;
		}
	}
}

void rf_trace_spool_record(rf_traces *x)
{
	if (x->o.mem_max && ++x->recs_unweighed >= OPEN_WEIGH_RECS)
		weigh_open(x, rf_traces_now_ms(), true);
	rf_trace_spool_evict(x);
}

/* In the pump: weigh open traces, spool what is over, read back what fits. */
void rf_trace_spool_pump(rf_traces *x, uint64_t now)
{
	weigh_open(x, now, false);
	rf_trace_spool_evict(x);
	struct rf_tspool *sp = x->sp;
	if (!sp || sp->rd == sp->wr)
		return;
	size_t ready = 0;
	for (struct xtrace *t = x->list; t; t = t->next)
		ready += spoolable(t);
	for (int k = 0; k < RELOAD_MAX && sp->rd < sp->wr && ready < RELOAD_BELOW &&
			rf_trace_spool_mem(x) < x->o.mem_max / 4 * 3;
	     k++) {
		uint64_t len = 0;
		char *buf = NULL;
		int rc = io_all(sp->fd, &len, sizeof len, sp->rd, false);
		if (!rc && (len > sp->wr - sp->rd - sizeof len || !(buf = malloc(len ? len : 1))))
			rc = -EIO;
		if (!rc)
			rc = io_all(sp->fd, buf, len, sp->rd + sizeof len, false);
		if (rc) {
			/* Our own unnamed file: nothing after this can be found. */
			x->st.traces_failed += x->st.spooled;
			rf_traces_err(x, "trace spool: read at %llu failed (%s): %llu traces lost, counted "
				      "in traces_failed", (unsigned long long)sp->rd, strerror(-rc),
				      (unsigned long long)x->st.spooled);
			free(buf);
			sp->rd = sp->wr;
			break;
		}
		json_t *j = json_loadb(buf, len, 0, NULL);
		free(buf);
		rc = j ? trace_back(x, j) : -EINVAL;
		if (rc == -EAGAIN) {
			json_decref(j);
			break; /* no room in the table now: read it again later */
		}
		sp->rd += sizeof len + len;
		x->st.spooled--;
		uint8_t id[16];
		if (j && id_of(j, id) && sp->ids[id_slot(id)])
			sp->ids[id_slot(id)]--;
		ready++;
		if (rc) {
			x->st.traces_failed++;
			rf_traces_err(x, "trace spool: a trace read back is not one (lost, counted in "
				      "traces_failed)");
		}
		const char *rk = j ? json_string_value(json_object_get(j, "run_key")) : NULL;
		json_t *c = rk ? json_object_get(sp->runs, rk) : NULL;
		if (c && json_integer_value(c) > 1)
			json_object_set_new(sp->runs, rk, json_integer(json_integer_value(c) - 1));
		else if (c)
			json_object_del(sp->runs, rk);
		json_decref(j);
	}
	if (sp->rd >= sp->wr) {
		sp->rd = sp->wr = 0;
		json_object_clear(sp->runs);
		memset(sp->ids, 0, sizeof sp->ids);
		x->st.spooled = 0;
		if (ftruncate(sp->fd, 0))
			rf_traces_err(x, "trace spool: truncate: %s", strerror(errno));
	}
}

bool rf_trace_spool_holds(rf_traces *x, const char *run_key)
{
	return x->sp && json_object_get(x->sp->runs, run_key);
}

bool rf_trace_spool_may_hold(rf_traces *x, const uint8_t id[16])
{
	return x->sp && x->sp->rd != x->sp->wr && x->sp->ids[id_slot(id)];
}

uint64_t rf_trace_spool_bytes(rf_traces *x)
{
	return x->sp ? x->sp->wr - x->sp->rd : 0;
}

void rf_trace_spool_close(rf_traces *x)
{
	if (!x->sp)
		return;
	if (x->sp->fd >= 0)
		close(x->sp->fd);
	json_decref(x->sp->runs);
	free(x->sp);
	x->sp = NULL;
}
