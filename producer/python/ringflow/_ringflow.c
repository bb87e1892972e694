/*
 * _ringflow.c - CPython extension over libringflow.
 *
 * Producer.emit(type, fields) walks a dict of plain Python values and encodes
 * it straight into ring space through the same record builder C callers use
 * (producer/rf_rec.c), so redaction and truncation apply identically.  It
 * never raises for ring conditions (full, no space, errors): it returns False
 * and the loss is counted (Producer.stats()).  Only misuse raises TypeError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <datetime.h>
#include <structmember.h>
#include <math.h>

#include "ringflow.h"
#include "rf_trace_int.h"

typedef struct {
	PyObject_HEAD
	rf_producer *p;
	unsigned long long py_errors; /* values that could not be encoded */
} ProducerObject;

static PyObject *str_timestamp; /* "timestamp" */

static int pack_value(rf_rec *r, const char *key, PyObject *v, int depth);

static bool dt_is_utc(PyObject *dt)
{
	return PyDateTime_DATE_GET_TZINFO(dt) == PyDateTime_TimeZone_UTC;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static double utc_epoch(PyObject *dt)
{
	long long days = days_from_civil(PyDateTime_GET_YEAR(dt), PyDateTime_GET_MONTH(dt),
					 PyDateTime_GET_DAY(dt));
	long long secs = days * 86400 + PyDateTime_DATE_GET_HOUR(dt) * 3600 +
			 PyDateTime_DATE_GET_MINUTE(dt) * 60 + PyDateTime_DATE_GET_SECOND(dt);
	return (double)secs + PyDateTime_DATE_GET_MICROSECOND(dt) / 1e6;
}

static int pack_dict(rf_rec *r, PyObject *d, int depth)
{
	PyObject *k, *v;
	Py_ssize_t pos = 0;
	while (PyDict_Next(d, &pos, &k, &v)) {
		const char *ks;
		PyObject *tmp = NULL;
		if (PyUnicode_Check(k)) {
			ks = PyUnicode_AsUTF8(k);
		} else {
			tmp = PyObject_Str(k);
			ks = tmp ? PyUnicode_AsUTF8(tmp) : NULL;
		}
		if (!ks) {
			Py_XDECREF(tmp);
			PyErr_Clear();
			continue;
		}
		int rc = pack_value(r, ks, v, depth + 1);
		Py_XDECREF(tmp);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Returns 0, or -1 with a Python exception set only for fatal errors. */
static int pack_value(rf_rec *r, const char *key, PyObject *v, int depth)
{
	if (depth > RF_REC_MAX_DEPTH - 2) {
		rf_rec_str(r, key, "[nested too deeply]");
		return 0;
	}
	if (v == Py_None) {
		rf_rec_nil(r, key);
	} else if (PyBool_Check(v)) {
		rf_rec_bool(r, key, v == Py_True);
	} else if (PyLong_Check(v)) {
		int overflow = 0;
		long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
		if (overflow) {
			PyObject *s = PyObject_Str(v);
			rf_rec_str(r, key, s ? PyUnicode_AsUTF8(s) : "[int]");
			Py_XDECREF(s);
		} else {
			rf_rec_int(r, key, x);
		}
	} else if (PyFloat_Check(v)) {
		rf_rec_double(r, key, PyFloat_AS_DOUBLE(v));
	} else if (PyUnicode_Check(v)) {
		Py_ssize_t n;
		const char *s = PyUnicode_AsUTF8AndSize(v, &n);
		if (!s) {
			PyErr_Clear(); /* lone surrogates: not UTF-8 encodable */
			rf_rec_str(r, key, "[undecodable text]");
		} else {
			rf_rec_strn(r, key, s, (size_t)n);
		}
	} else if (PyDict_Check(v)) {
		rf_rec_map_begin(r, key);
		if (pack_dict(r, v, depth) < 0)
			return -1;
		rf_rec_map_end(r);
	} else if (PyList_Check(v) || PyTuple_Check(v)) {
		PyObject *seq = PySequence_Fast(v, "sequence");
		if (!seq)
			return -1;
		rf_rec_array_begin(r, key);
		Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
		PyObject **items = PySequence_Fast_ITEMS(seq);
		for (Py_ssize_t i = 0; i < n; i++)
			if (pack_value(r, NULL, items[i], depth + 1) < 0) {
				Py_DECREF(seq);
				return -1;
			}
		rf_rec_array_end(r);
		Py_DECREF(seq);
	} else if (PyBytes_Check(v)) {
		rf_rec_bin(r, key, PyBytes_AS_STRING(v), (size_t)PyBytes_GET_SIZE(v));
	} else if (PyDateTime_Check(v) && dt_is_utc(v)) {
		/* Times are float seconds since the epoch (docs/EVENTS.md); Inspect's
		 * are aware UTC, converted here without a Python call. */
		rf_rec_double(r, key, utc_epoch(v));
	} else if (PyDateTime_Check(v)) {
		PyObject *ts = PyObject_CallMethodNoArgs(v, str_timestamp);
		if (ts && PyFloat_Check(ts))
			rf_rec_double(r, key, PyFloat_AS_DOUBLE(ts));
		else
			rf_rec_nil(r, key);
		Py_XDECREF(ts);
		PyErr_Clear();
	} else {
		PyObject *s = PyObject_Str(v);
		if (s) {
			Py_ssize_t n;
			const char *cs = PyUnicode_AsUTF8AndSize(s, &n);
			if (cs)
				rf_rec_strn(r, key, cs, (size_t)n);
			else
				rf_rec_nil(r, key);
			Py_DECREF(s);
		} else {
			rf_rec_nil(r, key);
		}
		PyErr_Clear();
	}
	return 0;
}

/* Values pack_value() writes without running Python code: exact containers
 * with str keys, str, bytes, in-range int, float, bool, None, UTC datetime. */
static bool is_plain(PyObject *v, int depth)
{
	if (depth > RF_REC_MAX_DEPTH - 2)
		return true; /* written as "[nested too deeply]" */
	if (v == Py_None || PyBool_Check(v) || PyFloat_Check(v) || PyUnicode_Check(v) ||
	    PyBytes_Check(v))
		return true;
	if (PyLong_Check(v)) {
		int overflow = 0;
		PyLong_AsLongLongAndOverflow(v, &overflow);
		return !overflow; /* str() of a huge int: prepared */
	}
	if (PyDateTime_Check(v))
		return dt_is_utc(v);
	if (PyDict_CheckExact(v)) {
		PyObject *k, *x;
		Py_ssize_t pos = 0;
		while (PyDict_Next(v, &pos, &k, &x))
			if (!PyUnicode_Check(k) || !is_plain(x, depth + 1))
				return false;
		return true;
	}
	if (PyList_CheckExact(v) || PyTuple_CheckExact(v)) {
		Py_ssize_t n = PySequence_Fast_GET_SIZE(v);
		for (Py_ssize_t i = 0; i < n; i++)
			if (!is_plain(PySequence_Fast_GET_ITEM(v, i), depth + 1))
				return false;
		return true;
	}
	return false;
}

static PyObject *prepare(PyObject *v, int depth);

/* A dict (subclass, non-str keys) as a plain dict, keys and values prepared. */
static PyObject *prepare_dict(PyObject *d, int depth)
{
	PyObject *out = PyDict_New(), *k, *x;
	Py_ssize_t pos = 0;
	while (out && PyDict_Next(d, &pos, &k, &x)) {
		Py_INCREF(k); /* __str__ below may change d: hold what we iterate */
		Py_INCREF(x);
		PyObject *ks = PyUnicode_Check(k) ? (Py_INCREF(k), k) : PyObject_Str(k);
		PyObject *xv = ks ? prepare(x, depth + 1) : NULL;
		if (!ks)
			PyErr_Clear(); /* as pack_dict: a key without str() is left out */
		if (ks && (!xv || PyDict_SetItem(out, ks, xv) < 0))
			Py_CLEAR(out);
		Py_XDECREF(ks);
		Py_XDECREF(xv);
		Py_DECREF(k);
		Py_DECREF(x);
	}
	return out;
}

/* v with everything pack_value() would convert by running Python code
 * (__str__, timestamp(), str() of a huge int, dict subclasses) converted
 * now, before a record claims ring space: a slow __str__ then stalls only
 * its caller, never the ring's consumer and every other producer behind the
 * claim.  New reference, or NULL with an exception (fatal, e.g. memory). */
static PyObject *prepare(PyObject *v, int depth)
{
	if (is_plain(v, depth))
		return Py_NewRef(v);
	if (PyLong_Check(v) || (!PyDict_Check(v) && !PyList_Check(v) && !PyTuple_Check(v) &&
				!PyDateTime_Check(v))) {
		PyObject *s = PyObject_Str(v); /* what pack_value() writes */
		if (!s)
			PyErr_Clear();
		return s ? s : Py_NewRef(Py_None);
	}
	if (PyDateTime_Check(v)) {
		PyObject *ts = PyObject_CallMethodNoArgs(v, str_timestamp);
		if (ts && PyFloat_Check(ts))
			return ts;
		Py_XDECREF(ts);
		PyErr_Clear();
		return Py_NewRef(Py_None);
	}
	if (PyDict_Check(v))
		return prepare_dict(v, depth);
	PyObject *seq = PySequence_Fast(v, "sequence");
	if (!seq)
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	PyObject *out = PyList_New(n);
	for (Py_ssize_t i = 0; out && i < n; i++) {
		PyObject *x = prepare(PySequence_Fast_GET_ITEM(seq, i), depth + 1);
		if (!x)
			Py_CLEAR(out);
		else
			PyList_SET_ITEM(out, i, x);
	}
	Py_DECREF(seq);
	return out;
}

/* ---- general tracing (ringflow.tracing): records 24-27 ----
 * The Python side keeps the span stack (contextvars) and the span objects;
 * these write one record each, with ids made here (rf_trace_rec.c). */

/* A record built from Python values: a failed encoding is counted and
 * reported as False, like emit(). */
static PyObject *finish(ProducerObject *self, rf_rec *r, int rc)
{
	if (rc < 0) {
		rf_rec_abort(r);
		PyErr_Clear();
		self->py_errors++;
		Py_RETURN_FALSE;
	}
	if (rf_rec_end(r))
		Py_RETURN_FALSE;
	Py_RETURN_TRUE;
}

/* The values of one tracing record, prepared (prepare()) before it claims
 * ring space; NULL entries are left out.  False: a conversion failed (the
 * record is not written, counted as a Python error). */
#define RF_PREP_MAX 3
struct prepped {
	PyObject *v[RF_PREP_MAX];
};

static bool prep(ProducerObject *self, struct prepped *p, PyObject *const *vals, int n)
{
	memset(p, 0, sizeof *p);
	for (int i = 0; i < n; i++) {
		if (!vals[i])
			continue;
		if (!(p->v[i] = prepare(vals[i], 0))) {
			PyErr_Clear();
			self->py_errors++;
			for (int j = 0; j < i; j++)
				Py_CLEAR(p->v[j]);
			return false;
		}
	}
	return true;
}

static void unprep(struct prepped *p)
{
	for (int i = 0; i < RF_PREP_MAX; i++)
		Py_CLEAR(p->v[i]);
}

/* A span: ids and what is kept until its end record.  ringflow.tracing's
 * LiveSpan subclasses it (methods in Python, state here), so starting and
 * ending a span are one C call each. */
typedef struct {
	PyObject_HEAD
	ProducerObject *prod;
	uint8_t tid[16];
	unsigned long long sid, psid;
	PyObject *name, *span_type, *inputs, *new_inputs, *outputs, *attrs, *status, *msg;
	char has_new_inputs, has_outputs, ended;
} SpanObject;

static PyTypeObject SpanType;

static int Span_traverse(SpanObject *s, visitproc visit, void *arg)
{
	Py_VISIT(s->prod);
	Py_VISIT(s->name);
	Py_VISIT(s->span_type);
	Py_VISIT(s->inputs);
	Py_VISIT(s->new_inputs);
	Py_VISIT(s->outputs);
	Py_VISIT(s->attrs);
	Py_VISIT(s->status);
	Py_VISIT(s->msg);
	return 0;
}

static int Span_clear(SpanObject *s)
{
	Py_CLEAR(s->prod);
	Py_CLEAR(s->name);
	Py_CLEAR(s->span_type);
	Py_CLEAR(s->inputs);
	Py_CLEAR(s->new_inputs);
	Py_CLEAR(s->outputs);
	Py_CLEAR(s->attrs);
	Py_CLEAR(s->status);
	Py_CLEAR(s->msg);
	return 0;
}

static void Span_dealloc(SpanObject *s)
{
	PyObject_GC_UnTrack(s);
	Span_clear(s);
	Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyObject *Span_get_tid(SpanObject *s, void *c)
{
	(void)c;
	return PyBytes_FromStringAndSize((const char *)s->tid, 16);
}

static bool opt_str(PyObject *o, const char **s)
{
	*s = NULL;
	if (!o || o == Py_None)
		return true;
	if (!PyUnicode_Check(o) || !(*s = PyUnicode_AsUTF8(o))) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "expected str or None");
		return false;
	}
	return true;
}

/* _finish(outputs, has_outputs[, end_ns]) -> bool: write the end record
 * (once); end_ns None or absent: now. */
static PyObject *Span_finish(SpanObject *s, PyObject *const *a, Py_ssize_t n)
{
	unsigned long long end_ns = 0;
	if (n != 2 && n != 3) {
		PyErr_SetString(PyExc_TypeError, "_finish(outputs, has_outputs[, end_ns])");
		return NULL;
	}
	if (n == 3 && a[2] != Py_None && (end_ns = PyLong_AsUnsignedLongLong(a[2]), PyErr_Occurred()))
		return NULL;
	if (s->ended)
		Py_RETURN_FALSE;
	s->ended = 1;
	const char *status, *msg;
	if (!opt_str(s->status, &status) || !opt_str(s->msg, &msg))
		return NULL;
	if (!s->prod || !s->prod->p)
		Py_RETURN_FALSE;
	PyObject *vals[RF_PREP_MAX] = {
		a[1] == Py_True ? a[0] : (s->has_outputs && s->outputs ? s->outputs : NULL),
		s->attrs && PyDict_Check(s->attrs) && PyDict_GET_SIZE(s->attrs) ? s->attrs : NULL,
		s->has_new_inputs && s->new_inputs ? s->new_inputs : NULL};
	struct prepped p; /* every Python call (__str__ ...) before the claim */
	if (!prep(s->prod, &p, vals, RF_PREP_MAX))
		Py_RETURN_FALSE;
	rf_rec r;
	if (rf_trace_begin_end(s->prod->p, &r, s->tid, s->sid, end_ns ? end_ns : rf_trace_now_ns(),
			       status, msg)) {
		unprep(&p);
		Py_RETURN_FALSE;
	}
	int rc = 0;
	if (p.v[0])
		rc = pack_value(&r, "outputs", p.v[0], 0);
	if (rc == 0 && p.v[1])
		rc = pack_value(&r, "attributes", p.v[1], 0);
	if (rc == 0 && p.v[2])
		rc = pack_value(&r, "inputs", p.v[2], 0);
	unprep(&p);
	return finish(s->prod, &r, rc);
}

/* _event(name, attributes|None, time_ns|None) -> bool */
static PyObject *Span_event(SpanObject *s, PyObject *const *a, Py_ssize_t n)
{
	if (n != 3) {
		PyErr_SetString(PyExc_TypeError, "_event(name, attributes, time_ns)");
		return NULL;
	}
	const char *name;
	unsigned long long t = 0;
	if (!opt_str(a[0], &name))
		return NULL;
	if (a[2] != Py_None && (t = PyLong_AsUnsignedLongLong(a[2]), PyErr_Occurred()))
		return NULL;
	if (!s->prod || !s->prod->p)
		Py_RETURN_FALSE;
	PyObject *vals[1] = {a[1] != Py_None && PyDict_Check(a[1]) ? a[1] : NULL};
	struct prepped p;
	if (!prep(s->prod, &p, vals, 1))
		Py_RETURN_FALSE;
	rf_rec r;
	if (rf_trace_begin_event(s->prod->p, &r, s->tid, s->sid, name, t ? t : rf_trace_now_ns())) {
		unprep(&p);
		Py_RETURN_FALSE;
	}
	int rc = 0;
	if (p.v[0])
		rc = pack_value(&r, "attributes", p.v[0], 0);
	unprep(&p);
	return finish(s->prod, &r, rc);
}

/* _update(tags|None, metadata|None) -> bool: a trace_update of this trace. */
static PyObject *Span_update(SpanObject *s, PyObject *const *a, Py_ssize_t n)
{
	if (n != 2) {
		PyErr_SetString(PyExc_TypeError, "_update(tags, metadata)");
		return NULL;
	}
	if (!s->prod || !s->prod->p)
		Py_RETURN_FALSE;
	PyObject *vals[2] = {a[0] != Py_None && PyDict_Check(a[0]) ? a[0] : NULL,
			     a[1] != Py_None && PyDict_Check(a[1]) ? a[1] : NULL};
	struct prepped p;
	if (!prep(s->prod, &p, vals, 2))
		Py_RETURN_FALSE;
	rf_rec r;
	if (rf_trace_begin_update(s->prod->p, &r, s->tid)) {
		unprep(&p);
		Py_RETURN_FALSE;
	}
	int rc = 0;
	if (p.v[0])
		rc = pack_value(&r, "tags", p.v[0], 0);
	if (rc == 0 && p.v[1])
		rc = pack_value(&r, "metadata", p.v[1], 0);
	unprep(&p);
	return finish(s->prod, &r, rc);
}

static PyMemberDef Span_members[] = {
	{"name", T_OBJECT, offsetof(SpanObject, name), 0, NULL},
	{"span_type", T_OBJECT, offsetof(SpanObject, span_type), 0, NULL},
	{"_inputs", T_OBJECT, offsetof(SpanObject, inputs), 0, NULL},
	{"_new_inputs", T_OBJECT, offsetof(SpanObject, new_inputs), 0, NULL},
	{"_outputs", T_OBJECT, offsetof(SpanObject, outputs), 0, NULL},
	{"_attrs", T_OBJECT, offsetof(SpanObject, attrs), 0, NULL},
	{"_status", T_OBJECT, offsetof(SpanObject, status), 0, NULL},
	{"_msg", T_OBJECT, offsetof(SpanObject, msg), 0, NULL},
	{"_has_new_inputs", T_BOOL, offsetof(SpanObject, has_new_inputs), 0, NULL},
	{"_has_outputs", T_BOOL, offsetof(SpanObject, has_outputs), 0, NULL},
	{"_ended", T_BOOL, offsetof(SpanObject, ended), READONLY, NULL},
	{"_sid", T_ULONGLONG, offsetof(SpanObject, sid), READONLY, NULL},
	{"_prod", T_OBJECT, offsetof(SpanObject, prod), READONLY, NULL},
	{"_psid", T_ULONGLONG, offsetof(SpanObject, psid), READONLY, NULL},
	{NULL, 0, 0, 0, NULL}};

static PyGetSetDef Span_getset[] = {{"_tid", (getter)Span_get_tid, NULL, "16-byte trace id", NULL},
				    {NULL, NULL, NULL, NULL, NULL}};

static PyMethodDef Span_methods[] = {
	{"_finish", (PyCFunction)(void (*)(void))Span_finish, METH_FASTCALL,
	 "_finish(outputs, has_outputs) -> bool: write the end record once"},
	{"_event", (PyCFunction)(void (*)(void))Span_event, METH_FASTCALL,
	 "_event(name, attributes, time_ns) -> bool"},
	{"_update", (PyCFunction)(void (*)(void))Span_update, METH_FASTCALL,
	 "_update(tags, metadata) -> bool (values already str)"},
	{NULL, NULL, 0, NULL}};

static PyTypeObject SpanType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ringflow._ringflow.SpanBase",
	.tp_basicsize = sizeof(SpanObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "The state of a span (made by Producer.span_start).",
	.tp_traverse = (traverseproc)Span_traverse,
	.tp_clear = (inquiry)Span_clear,
	.tp_dealloc = (destructor)Span_dealloc,
	.tp_members = Span_members,
	.tp_getset = Span_getset,
	.tp_methods = Span_methods,
};

/* span_start(cls, parent|None, name, span_type, inputs|None, attributes|None,
 *            experiment|None[, start_ns|None]) -> cls instance
 * Writes the trace_span_start record; the span comes back even if the
 * record could not be written (counted), so the caller goes on. */
static PyObject *Producer_span_start(ProducerObject *self, PyObject *const *a, Py_ssize_t n)
{
	if ((n != 7 && n != 8) || !PyType_Check(a[0]) ||
	    !PyType_IsSubtype((PyTypeObject *)a[0], &SpanType)) {
		PyErr_SetString(PyExc_TypeError, "span_start(cls, parent, name, span_type, inputs, "
						 "attributes, experiment[, start_ns])");
		return NULL;
	}
	unsigned long long start_ns = 0;
	if (n == 8 && a[7] != Py_None &&
	    (start_ns = PyLong_AsUnsignedLongLong(a[7]), PyErr_Occurred()))
		return NULL;
	SpanObject *parent = NULL;
	if (a[1] != Py_None) {
		if (!PyObject_TypeCheck(a[1], &SpanType)) {
			PyErr_SetString(PyExc_TypeError, "parent: a span or None");
			return NULL;
		}
		parent = (SpanObject *)a[1];
	}
	Py_ssize_t nl = 0, tl = 0;
	const char *name = PyUnicode_Check(a[2]) ? PyUnicode_AsUTF8AndSize(a[2], &nl) : NULL;
	const char *type = PyUnicode_Check(a[3]) ? PyUnicode_AsUTF8AndSize(a[3], &tl) : NULL;
	const char *exp;
	if (!name || !type) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "name and span_type: str");
		return NULL;
	}
	if (!opt_str(a[6], &exp))
		return NULL;
	PyTypeObject *cls = (PyTypeObject *)a[0];
	SpanObject *s = (SpanObject *)cls->tp_alloc(cls, 0);
	if (!s)
		return NULL;
	if (parent) {
		memcpy(s->tid, parent->tid, 16);
		s->psid = parent->sid;
	} else {
		rf_trace_new_trace_id(s->tid);
	}
	s->sid = rf_trace_new_span_id();
	Py_INCREF(self);
	s->prod = self;
	Py_INCREF(a[2]);
	s->name = a[2];
	Py_INCREF(a[3]);
	s->span_type = a[3];
	if (a[4] != Py_None) {
		Py_INCREF(a[4]);
		s->inputs = a[4];
	}
	PyObject *vals[2] = {a[4] != Py_None ? a[4] : NULL,
			     a[5] != Py_None && PyDict_Check(a[5]) && PyDict_GET_SIZE(a[5]) ? a[5]
											  : NULL};
	struct prepped p; /* every Python call (__str__ ...) before the claim */
	if (self->p && prep(self, &p, vals, 2)) {
		rf_rec r;
		if (rf_trace_begin_start(self->p, &r, s->tid, s->sid, s->psid, name, (size_t)nl, type,
					 (size_t)tl, start_ns ? start_ns : rf_trace_now_ns(),
					 parent ? NULL : exp) == 0) {
			int rc = 0;
			if (p.v[0])
				rc = pack_value(&r, "inputs", p.v[0], 0);
			if (rc == 0 && p.v[1])
				rc = pack_value(&r, "attributes", p.v[1], 0);
			Py_XDECREF(finish(self, &r, rc));
		}
		unprep(&p);
	}
	return (PyObject *)s;
}

static int Producer_init(ProducerObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"ring", "spool_dir", "max_text", "full_policy", "capacity", NULL};
	const char *ring = NULL, *spool = NULL;
	Py_ssize_t max_text = 0, capacity = 0;
	int policy = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|zznin", kwlist, &ring, &spool, &max_text,
					 &policy, &capacity))
		return -1;
	if (self->p) {
		rf_producer_close(self->p);
		self->p = NULL;
	}
	struct rf_producer_opts o = {.ring = ring, .spool_dir = spool, .max_text = (size_t)max_text,
				     .full_policy = policy, .capacity = (size_t)capacity};
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = rf_producer_open(&self->p, &o);
	Py_END_ALLOW_THREADS
	if (rc) {
		PyErr_Format(PyExc_OSError, "ringflow: %s", rf_errmsg());
		return -1;
	}
	return 0;
}

static void Producer_dealloc(ProducerObject *self)
{
	rf_producer_close(self->p);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Producer_emit(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	if (nargs != 2 || !PyLong_Check(args[0]) || !PyDict_Check(args[1])) {
		PyErr_SetString(PyExc_TypeError, "emit(type: int, fields: dict)");
		return NULL;
	}
	if (!self->p)
		Py_RETURN_FALSE;
	long type = PyLong_AsLong(args[0]);
	if (type < 1 || type > 0x3fffffff) {
		PyErr_SetString(PyExc_ValueError, "record type out of range");
		return NULL;
	}
	/* Every Python call (__str__ of a value, ...) before the claim. */
	PyObject *fields = prepare(args[1], 0);
	if (!fields) {
		PyErr_Clear();
		self->py_errors++;
		Py_RETURN_FALSE;
	}
	rf_rec r;
	if (rf_rec_begin(self->p, &r, (int)type, 0)) {
		Py_DECREF(fields);
		Py_RETURN_FALSE; /* counted by the library */
	}
	int rc = pack_dict(&r, fields, 0);
	Py_DECREF(fields);
	if (rc < 0) {
		rf_rec_abort(&r);
		PyErr_Clear();
		self->py_errors++;
		Py_RETURN_FALSE;
	}
	if (rf_rec_end(&r))
		Py_RETURN_FALSE;
	Py_RETURN_TRUE;
}

static PyObject *Producer_add_secret(ProducerObject *self, PyObject *arg)
{
	const char *s = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
	if (!s) {
		PyErr_SetString(PyExc_TypeError, "add_secret(str)");
		return NULL;
	}
	return PyBool_FromLong(self->p && rf_producer_add_secret(self->p, s) == 0);
}

static PyObject *Producer_consumer_alive(ProducerObject *self, PyObject *unused)
{
	(void)unused;
	return PyBool_FromLong(self->p && rf_producer_consumer_alive(self->p));
}

static PyObject *Producer_flush(ProducerObject *self, PyObject *unused)
{
	(void)unused;
	return PyBool_FromLong(self->p && rf_producer_flush(self->p) == 0);
}

static PyObject *Producer_stats(ProducerObject *self, PyObject *unused)
{
	(void)unused;
	struct rf_producer_stats st = {0};
	if (self->p)
		rf_producer_stats(self->p, &st);
	return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "records", st.records,
			     "errors", st.errors, "truncated", st.truncated, "redacted",
			     st.redacted, "encode_errors", self->py_errors, "ring_spilled",
			     st.ring_spilled, "ring_dropped", st.ring_dropped,
			     "ring_spill_failed", st.ring_spill_failed);
}

static PyObject *Producer_close(ProducerObject *self, PyObject *unused)
{
	(void)unused;
	rf_producer *p = self->p;
	self->p = NULL;
	if (p) {
		Py_BEGIN_ALLOW_THREADS
		rf_producer_close(p);
		Py_END_ALLOW_THREADS
	}
	Py_RETURN_NONE;
}

static PyMethodDef Producer_methods[] = {
	{"emit", (PyCFunction)(void (*)(void))Producer_emit, METH_FASTCALL,
	 "emit(type, fields) -> bool: write one record; False if it was not written."},
	{"add_secret", (PyCFunction)Producer_add_secret, METH_O,
	 "add_secret(value): strings containing value are written as [REDACTED]."},
	{"consumer_alive", (PyCFunction)Producer_consumer_alive, METH_NOARGS,
	 "Is a consumer (ringflowd) attached to the ring and alive?"},
	{"flush", (PyCFunction)Producer_flush, METH_NOARGS,
	 "flush() -> bool: seal spilled records into the ring's order now (False: still full)."},
	{"stats", (PyCFunction)Producer_stats, METH_NOARGS, "Counters of this producer and ring."},
	{"close", (PyCFunction)Producer_close, METH_NOARGS, "Detach from the ring."},
	{"span_start", (PyCFunction)(void (*)(void))Producer_span_start, METH_FASTCALL,
	 "span_start(cls, parent, name, span_type, inputs, attributes, experiment) -> span: "
	 "write a trace_span_start record (parent None: a new trace)."},
	{NULL, NULL, 0, NULL}};

static PyTypeObject ProducerType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ringflow._ringflow.Producer",
	.tp_basicsize = sizeof(ProducerObject),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "Producer(ring=None, spool_dir=None, max_text=0, full_policy=0, capacity=0)",
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)Producer_init,
	.tp_dealloc = (destructor)Producer_dealloc,
	.tp_methods = Producer_methods,
};

static PyObject *mod_event_name(PyObject *m, PyObject *arg)
{
	(void)m;
	const char *n = rf_event_name((int)PyLong_AsLong(arg));
	if (PyErr_Occurred())
		return NULL;
	if (!n)
		Py_RETURN_NONE;
	return PyUnicode_FromString(n);
}

static PyMethodDef mod_methods[] = {
	{"event_name", mod_event_name, METH_O, "event_name(type) -> str | None"},
	{NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_ringflow",
				    "libringflow for Python", -1, mod_methods};

PyMODINIT_FUNC PyInit__ringflow(void)
{
	PyDateTime_IMPORT;
	if (!PyDateTimeAPI || PyType_Ready(&ProducerType) < 0 || PyType_Ready(&SpanType) < 0)
		return NULL;
	str_timestamp = PyUnicode_InternFromString("timestamp");
	PyObject *m = PyModule_Create(&moddef);
	if (!m)
		return NULL;
	Py_INCREF(&ProducerType);
	PyModule_AddObject(m, "Producer", (PyObject *)&ProducerType);
	Py_INCREF(&SpanType);
	PyModule_AddObject(m, "SpanBase", (PyObject *)&SpanType);
	/* The record types, from the C header: one source of truth. */
	for (int t = 1; t <= RF_EV_MAX_BUILTIN; t++) {
		char name[64];
		const char *n = rf_event_name(t);
		snprintf(name, sizeof name, "EV_%s", n);
		for (char *c = name + 3; *c; c++)
			*c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
		PyModule_AddIntConstant(m, name, t);
	}
	PyModule_AddIntConstant(m, "SCHEMA_VERSION", RF_SCHEMA_VERSION);
	return m;
}
