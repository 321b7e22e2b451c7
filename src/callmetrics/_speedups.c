/*
 * callmetrics._speedups: the optional C hot path.
 *
 * Three small types, no Python-level call on the common path and no allocation
 * per call once a buffer has grown to its working size:
 *
 *   Buffer   successful calls as (start, duration) doubles in one C array;
 *            the engine takes them out in bulk with take().
 *   Sink     where a call goes: a Buffer plus the engine's Python callbacks for
 *            what is rare (a failure, a full buffer, success logging, observers).
 *   Tracked  the sync wrapper: a vectorcall type that reads CLOCK_MONOTONIC
 *            around PyObject_Vectorcall and appends to its Sink's Buffer.
 *   Measure  the `with analytics.measure(name):` block, made by a MeasureFactory
 *            that caches what each name resolves to.
 *
 * Times are seconds of CLOCK_MONOTONIC, converted exactly as time.perf_counter()
 * converts them (an int64 of nanoseconds divided by 1e9), so starts and durations
 * from the C and the Python hot paths mix.
 *
 * Thread safety: every state change happens while holding the GIL, with no call
 * into Python between reading and updating a buffer.  The module does not declare
 * itself free-threading safe; callmetrics._accel does not load it on a
 * free-threaded build.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define INITIAL_CALLS 16

static PyObject *str_enter;   /* "__enter__" */
static PyObject *str_exit;    /* "__exit__" */
static PyObject *str_qualname;
static PyObject *str_enabled;

static inline double
monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
    return (double)ns / 1e9;
}

/* ------------------------------------------------------------------ Buffer */

typedef struct {
    PyObject *key;       /* strong reference: what the call is recorded under */
    double start;
    double duration;
} Entry;

typedef struct {
    PyObject_HEAD
    Entry *data;
    Py_ssize_t len;      /* calls held */
    Py_ssize_t cap;      /* calls allocated */
    Py_ssize_t limit;    /* calls at which the engine is asked to drain */
    Py_ssize_t lost;     /* calls dropped because memory ran out */
} BufferObject;

static PyTypeObject Buffer_Type;

static PyObject *
Buffer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"limit", NULL};
    Py_ssize_t limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n:Buffer", kwlist, &limit)) {
        return NULL;
    }
    if (limit < 1) {
        PyErr_SetString(PyExc_ValueError, "limit must be >= 1");
        return NULL;
    }
    BufferObject *self = (BufferObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->data = NULL;
    self->len = self->cap = self->lost = 0;
    self->limit = limit;
    return (PyObject *)self;
}

static int
Buffer_traverse(BufferObject *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < self->len; i++) {
        Py_VISIT(self->data[i].key);
    }
    return 0;
}

static int
Buffer_clear(BufferObject *self)
{
    Py_ssize_t n = self->len;
    self->len = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_CLEAR(self->data[i].key);
    }
    return 0;
}

static void
Buffer_dealloc(BufferObject *self)
{
    PyObject_GC_UnTrack(self);
    Buffer_clear(self);
    PyMem_Free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Room for one more call; -1 (no exception set) when memory ran out.  The array
   grows geometrically up to `limit` calls, so a rarely called function costs
   little and a busy one stops allocating once it reaches its working size. */
static int
buffer_reserve(BufferObject *self)
{
    if (self->len < self->cap) {
        return 0;
    }
    Py_ssize_t cap = self->cap ? self->cap * 2 : INITIAL_CALLS;
    if (self->cap < self->limit && cap > self->limit) {
        cap = self->limit;
    }
    if ((size_t)cap > PY_SSIZE_T_MAX / sizeof(Entry)) {
        return -1;
    }
    Entry *grown = PyMem_Realloc(self->data, (size_t)cap * sizeof(Entry));
    if (grown == NULL) {
        return -1;
    }
    self->data = grown;
    self->cap = cap;
    return 0;
}

static inline void
buffer_push(BufferObject *self, PyObject *key, double start, double duration)
{
    if (self->len == self->cap && buffer_reserve(self) < 0) {
        self->lost++;
        return;
    }
    Entry *slot = self->data + self->len;
    slot->key = Py_NewRef(key);
    slot->start = start;
    slot->duration = duration;
    self->len++;
}

static PyObject *
Buffer_take(BufferObject *self, PyObject *Py_UNUSED(ignored))
{
    /* Move the calls out and empty the buffer before allocating anything: building
       the lists may run the garbage collector, whose finalizers may call tracked
       functions that append again. */
    Py_ssize_t n = self->len;
    Entry *taken = NULL;
    if (n) {
        taken = PyMem_Malloc((size_t)n * sizeof(Entry));
        if (taken == NULL) {
            return PyErr_NoMemory();
        }
        memcpy(taken, self->data, (size_t)n * sizeof(Entry));
    }
    self->len = 0;
    PyObject *keys = PyList_New(n);
    PyObject *starts = PyList_New(n);
    PyObject *durations = PyList_New(n);
    PyObject *out = NULL;
    if (keys == NULL || starts == NULL || durations == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyList_SET_ITEM(keys, i, taken[i].key);   /* the reference moves to the list */
        taken[i].key = NULL;
        PyObject *start = PyFloat_FromDouble(taken[i].start);
        if (start == NULL) {
            goto done;
        }
        PyList_SET_ITEM(starts, i, start);
        PyObject *duration = PyFloat_FromDouble(taken[i].duration);
        if (duration == NULL) {
            goto done;
        }
        PyList_SET_ITEM(durations, i, duration);
    }
    out = PyTuple_Pack(3, keys, starts, durations);
done:
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(taken[i].key);   /* only those not yet moved (after an error) */
    }
    PyMem_Free(taken);
    Py_XDECREF(keys);
    Py_XDECREF(starts);
    Py_XDECREF(durations);
    return out;
}

static PyObject *
Buffer_push_py(BufferObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "push(key, start, duration) takes 3 arguments");
        return NULL;
    }
    double start = PyFloat_AsDouble(args[1]);
    if (start == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    double duration = PyFloat_AsDouble(args[2]);
    if (duration == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    buffer_push(self, args[0], start, duration);
    return PyLong_FromSsize_t(self->len);
}

static Py_ssize_t
Buffer_length(BufferObject *self)
{
    return self->len;
}

static PyObject *
Buffer_get_limit(BufferObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->limit);
}

static int
Buffer_set_limit(BufferObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete limit");
        return -1;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(value);
    if (limit == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (limit < 1) {
        PyErr_SetString(PyExc_ValueError, "limit must be >= 1");
        return -1;
    }
    self->limit = limit;
    return 0;
}

static PyObject *
Buffer_get_capacity(BufferObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->cap);
}

static PyObject *
Buffer_get_lost(BufferObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->lost);
}

static PyMethodDef Buffer_methods[] = {
    {"take", (PyCFunction)Buffer_take, METH_NOARGS,
     "Return the buffered calls as (keys, starts, durations) lists and empty the buffer."},
    {"push", (PyCFunction)(void (*)(void))Buffer_push_py, METH_FASTCALL,
     "push(key, start, duration): append one call; return how many calls are held."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Buffer_getset[] = {
    {"limit", (getter)Buffer_get_limit, (setter)Buffer_set_limit,
     "Calls held at which the engine is asked to drain.", NULL},
    {"capacity", (getter)Buffer_get_capacity, NULL, "Calls the memory allocated holds.", NULL},
    {"lost", (getter)Buffer_get_lost, NULL, "Calls dropped because memory ran out.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Buffer_as_sequence = {
    .sq_length = (lenfunc)Buffer_length,
};

static PyTypeObject Buffer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._speedups.Buffer",
    .tp_basicsize = sizeof(BufferObject),
    .tp_dealloc = (destructor)Buffer_dealloc,
    .tp_as_sequence = &Buffer_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Buffer(limit): successful calls as (key, start, duration) in one C array.",
    .tp_traverse = (traverseproc)Buffer_traverse,
    .tp_clear = (inquiry)Buffer_clear,
    .tp_methods = Buffer_methods,
    .tp_getset = Buffer_getset,
    .tp_new = Buffer_new,
};

/* -------------------------------------------------------------------- Sink */

typedef struct {
    PyObject_HEAD
    BufferObject *buffer;
    PyObject *key;         /* what successful calls are recorded under in the buffer */
    PyObject *observers;   /* list: non-empty means take the observed (Python) path */
    PyObject *cache;       /* dict holding the cached success-logging limit */
    PyObject *cache_key;   /* its key */
    PyObject *refresh;     /* () -> int: recompute the limit after a cache clear */
    PyObject *on_success;  /* (duration) -> None: log a successful call */
    PyObject *on_failure;  /* (start, exc) -> object: record and log a failed call */
    PyObject *on_full;     /* () -> None: drain soon */
} SinkObject;

static PyTypeObject Sink_Type;

static PyObject *
Sink_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"buffer", "key", "observers", "cache", "cache_key", "refresh",
                             "on_success", "on_failure", "on_full", NULL};
    PyObject *buffer, *key, *observers, *cache, *cache_key, *refresh, *on_success,
        *on_failure, *on_full;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OO!O!OOOOO:Sink", kwlist,
                                     &Buffer_Type, &buffer, &key, &PyList_Type, &observers,
                                     &PyDict_Type, &cache, &cache_key, &refresh, &on_success,
                                     &on_failure, &on_full)) {
        return NULL;
    }
    SinkObject *self = (SinkObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->buffer = (BufferObject *)Py_NewRef(buffer);
    self->observers = Py_NewRef(observers);
    self->cache = Py_NewRef(cache);
    self->key = Py_NewRef(key);
    self->cache_key = Py_NewRef(cache_key);
    self->refresh = Py_NewRef(refresh);
    self->on_success = Py_NewRef(on_success);
    self->on_failure = Py_NewRef(on_failure);
    self->on_full = Py_NewRef(on_full);
    return (PyObject *)self;
}

static int
Sink_traverse(SinkObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->buffer);
    Py_VISIT(self->observers);
    Py_VISIT(self->cache);
    Py_VISIT(self->key);
    Py_VISIT(self->cache_key);
    Py_VISIT(self->refresh);
    Py_VISIT(self->on_success);
    Py_VISIT(self->on_failure);
    Py_VISIT(self->on_full);
    return 0;
}

static int
Sink_clear(SinkObject *self)
{
    Py_CLEAR(self->buffer);
    Py_CLEAR(self->observers);
    Py_CLEAR(self->cache);
    Py_CLEAR(self->key);
    Py_CLEAR(self->cache_key);
    Py_CLEAR(self->refresh);
    Py_CLEAR(self->on_success);
    Py_CLEAR(self->on_failure);
    Py_CLEAR(self->on_full);
    return 0;
}

static void
Sink_dealloc(SinkObject *self)
{
    PyObject_GC_UnTrack(self);
    Sink_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static inline int
sink_observed(SinkObject *sink)
{
    return sink->observers != NULL && PyList_GET_SIZE(sink->observers) > 0;
}

/* Record a successful call; -1 with an exception set if a callback raised. */
static int
sink_success(SinkObject *sink, double start, double duration)
{
    if (sink->buffer == NULL || sink->key == NULL) {   /* cleared by the collector */
        return 0;
    }
    BufferObject *buf = sink->buffer;
    buffer_push(buf, sink->key, start, duration);
    long limit;
    PyObject *cached;
    if (PyDict_CheckExact(sink->cache)) {
        cached = PyDict_GetItemWithError(sink->cache, sink->cache_key);   /* borrowed */
        if (cached == NULL && PyErr_Occurred()) {
            return -1;
        }
        Py_XINCREF(cached);
    }
    else {   /* a dict subclass may refuse lookups (no level cache): ask it */
        cached = PyObject_GetItem(sink->cache, sink->cache_key);
        if (cached == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                return -1;
            }
            PyErr_Clear();
        }
    }
    if (cached == NULL) {   /* logging changed a level and cleared its caches */
        cached = PyObject_CallNoArgs(sink->refresh);
        if (cached == NULL) {
            return -1;
        }
    }
    limit = PyLong_AsLong(cached);
    Py_DECREF(cached);
    if (limit == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (buf->len >= buf->limit) {
        PyObject *r = PyObject_CallNoArgs(sink->on_full);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
    }
    if (limit == 0) {
        PyObject *d = PyFloat_FromDouble(duration);
        if (d == NULL) {
            return -1;
        }
        PyObject *r = PyObject_CallOneArg(sink->on_success, d);
        Py_DECREF(d);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
    }
    return 0;
}

/* Record the failed call whose exception is set; leaves an exception set. */
static void
sink_failure(SinkObject *sink, double start)
{
    if (sink->on_failure == NULL) {
        return;
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (tb != NULL && exc != NULL) {
        PyException_SetTraceback(exc, tb);
    }
#endif
    PyObject *t0 = PyFloat_FromDouble(start);
    PyObject *r = NULL;
    if (t0 != NULL && exc != NULL) {
        PyObject *argv[2] = {t0, exc};
        r = PyObject_Vectorcall(sink->on_failure, argv, 2, NULL);
    }
    Py_XDECREF(t0);
    if (r != NULL) {
        Py_DECREF(r);
#if PY_VERSION_HEX >= 0x030C0000
        PyErr_SetRaisedException(exc);
#else
        PyErr_Restore(type, exc, tb);
#endif
        return;
    }
    /* The bookkeeping itself raised: like an exception raised in an `except`
       block, the new one propagates with the call's exception as its context. */
    if (PyErr_Occurred()) {
#if PY_VERSION_HEX >= 0x030C0000
        PyObject *raised = PyErr_GetRaisedException();
        if (exc != NULL) {
            PyException_SetContext(raised, exc);   /* steals exc */
        }
        PyErr_SetRaisedException(raised);
#else
        PyObject *rtype, *raised, *rtb;
        PyErr_Fetch(&rtype, &raised, &rtb);
        PyErr_NormalizeException(&rtype, &raised, &rtb);
        if (rtb != NULL) {
            PyException_SetTraceback(raised, rtb);
        }
        if (exc != NULL) {
            PyException_SetContext(raised, exc);   /* steals exc */
        }
        Py_XDECREF(type);
        Py_XDECREF(tb);
        PyErr_Restore(rtype, raised, rtb);
#endif
        return;
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(type, exc, tb);
#endif
}

static PyObject *
Sink_get_buffer(SinkObject *self, void *Py_UNUSED(closure))
{
    if (self->buffer == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(self->buffer);
}

static PyGetSetDef Sink_getset[] = {
    {"buffer", (getter)Sink_get_buffer, NULL, "The Buffer successful calls go to.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Sink_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._speedups.Sink",
    .tp_basicsize = sizeof(SinkObject),
    .tp_dealloc = (destructor)Sink_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Sink(buffer, key, observers, cache, cache_key, refresh, on_success, "
              "on_failure, on_full)",
    .tp_traverse = (traverseproc)Sink_traverse,
    .tp_clear = (inquiry)Sink_clear,
    .tp_getset = Sink_getset,
    .tp_new = Sink_new,
};

/* ----------------------------------------------------------------- Tracked */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *func;       /* the wrapped callable */
    SinkObject *sink;
    PyObject *observed;   /* the pure-Python wrapper, used while observers exist */
    PyObject *dict;
    PyObject *weakreflist;
} TrackedObject;

static PyTypeObject Tracked_Type;

static PyObject *
Tracked_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    TrackedObject *self = (TrackedObject *)op;
    SinkObject *sink = self->sink;
    if (sink == NULL || self->func == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "callmetrics wrapper used after being cleared");
        return NULL;
    }
    if (sink_observed(sink)) {
        return PyObject_Vectorcall(self->observed, args, nargsf, kwnames);
    }
    double start = monotonic_seconds();
    PyObject *result = PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    double duration = monotonic_seconds() - start;
    if (result == NULL) {
        sink_failure(sink, start);
        return NULL;
    }
    if (sink_success(sink, start, duration) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static PyTypeObject Unbound_Type;

/* track(func, sink, observed): a Tracked (binds like a function) when func has
   __get__, an UnboundTracked (never binds) otherwise. */
static PyObject *
speedups_track(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"func", "sink", "observed", NULL};
    PyObject *func, *sink, *observed;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!O:track", kwlist, &func, &Sink_Type,
                                     &sink, &observed)) {
        return NULL;
    }
    if (!PyCallable_Check(func) || !PyCallable_Check(observed)) {
        PyErr_SetString(PyExc_TypeError, "func and observed must be callable");
        return NULL;
    }
    PyTypeObject *type = Py_TYPE(func)->tp_descr_get != NULL ? &Tracked_Type : &Unbound_Type;
    TrackedObject *self = (TrackedObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = Tracked_vectorcall;
    self->func = Py_NewRef(func);
    self->sink = (SinkObject *)Py_NewRef(sink);
    self->observed = Py_NewRef(observed);
    self->dict = NULL;
    self->weakreflist = NULL;
    return (PyObject *)self;
}

static int
Tracked_traverse(TrackedObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->func);
    Py_VISIT(self->sink);
    Py_VISIT(self->observed);
    Py_VISIT(self->dict);
    return 0;
}

static int
Tracked_clear(TrackedObject *self)
{
    Py_CLEAR(self->func);
    Py_CLEAR(self->sink);
    Py_CLEAR(self->observed);
    Py_CLEAR(self->dict);
    return 0;
}

static void
Tracked_dealloc(TrackedObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    Tracked_clear(self);
    tp->tp_free((PyObject *)self);
}

/* Bind as the wrapped object binds: like a function when it has __get__
   (functions, method descriptors); UnboundTracked, for partials, builtins and
   callable instances, has no __get__, so a tracked attribute behaves as the
   untracked one. */
static PyObject *
Tracked_descr_get(PyObject *self, PyObject *obj, PyObject *Py_UNUSED(type))
{
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(self);
    }
    return PyMethod_New(self, obj);
}

static PyObject *
Tracked_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    /* Pickled by reference, as a function is: module + qualified name. */
    return PyObject_GetAttr(self, str_qualname);
}

static PyObject *
Tracked_repr(TrackedObject *self)
{
    PyObject *qualname = PyObject_GetAttr((PyObject *)self, str_qualname);
    if (qualname == NULL) {
        PyErr_Clear();
        return PyUnicode_FromFormat("<tracked function at %p>", self);
    }
    PyObject *out = PyUnicode_FromFormat("<tracked function %S at %p>", qualname, self);
    Py_DECREF(qualname);
    return out;
}

static PyObject *
Tracked_get_sink(TrackedObject *self, void *Py_UNUSED(closure))
{
    if (self->sink == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(self->sink);
}

static PyObject *
Tracked_get_func(TrackedObject *self, void *Py_UNUSED(closure))
{
    if (self->func == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(self->func);
}

static PyMethodDef Tracked_methods[] = {
    {"__reduce__", (PyCFunction)Tracked_reduce, METH_NOARGS,
     "Pickle by reference (module and qualified name), as functions are."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Tracked_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {"_callmetrics_sink", (getter)Tracked_get_sink, NULL, "Where calls are recorded.", NULL},
    {"_callmetrics_func", (getter)Tracked_get_func, NULL, "The wrapped callable.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Tracked_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._speedups.Tracked",
    .tp_basicsize = sizeof(TrackedObject),
    .tp_dealloc = (destructor)Tracked_dealloc,
    .tp_vectorcall_offset = offsetof(TrackedObject, vectorcall),
    .tp_repr = (reprfunc)Tracked_repr,
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "A tracked sync callable that binds as a method, as a function does.",
    .tp_traverse = (traverseproc)Tracked_traverse,
    .tp_clear = (inquiry)Tracked_clear,
    .tp_weaklistoffset = offsetof(TrackedObject, weakreflist),
    .tp_methods = Tracked_methods,
    .tp_getset = Tracked_getset,
    .tp_descr_get = Tracked_descr_get,
    .tp_dictoffset = offsetof(TrackedObject, dict),
};

static PyTypeObject Unbound_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._speedups.UnboundTracked",
    .tp_basicsize = sizeof(TrackedObject),
    .tp_dealloc = (destructor)Tracked_dealloc,
    .tp_vectorcall_offset = offsetof(TrackedObject, vectorcall),
    .tp_repr = (reprfunc)Tracked_repr,
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "A tracked sync callable that, like what it wraps, does not bind as a method.",
    .tp_traverse = (traverseproc)Tracked_traverse,
    .tp_clear = (inquiry)Tracked_clear,
    .tp_weaklistoffset = offsetof(TrackedObject, weakreflist),
    .tp_methods = Tracked_methods,
    .tp_getset = Tracked_getset,
    .tp_dictoffset = offsetof(TrackedObject, dict),
};

/* ----------------------------------------------------------------- Measure */

typedef struct {
    PyObject_HEAD
    SinkObject *sink;
    PyObject *name;
    PyObject *fallback;   /* (name) -> pure-Python measure, used while observers exist */
    PyObject *delegate;   /* that pure-Python measure, once entered with observers */
    double start;
} MeasureObject;

static PyTypeObject Measure_Type;
static PyTypeObject Ready_Type;

static MeasureObject *
measure_make(SinkObject *sink, PyObject *name, PyObject *fallback)
{
    MeasureObject *self = PyObject_GC_New(MeasureObject, &Measure_Type);
    if (self == NULL) {
        return NULL;
    }
    self->sink = (SinkObject *)Py_NewRef(sink);
    self->name = Py_NewRef(name);
    self->fallback = Py_NewRef(fallback);
    self->delegate = NULL;
    self->start = 0.0;
    PyObject_GC_Track(self);
    return self;
}

static PyObject *
Measure_new(PyTypeObject *Py_UNUSED(type), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"sink", "name", "fallback", NULL};
    PyObject *sink, *name, *fallback;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OO:Measure", kwlist, &Sink_Type, &sink,
                                     &name, &fallback)) {
        return NULL;
    }
    return (PyObject *)measure_make((SinkObject *)sink, name, fallback);
}

static int
Measure_traverse(MeasureObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->sink);
    Py_VISIT(self->name);
    Py_VISIT(self->fallback);
    Py_VISIT(self->delegate);
    return 0;
}

static int
Measure_clear(MeasureObject *self)
{
    Py_CLEAR(self->sink);
    Py_CLEAR(self->name);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->delegate);
    return 0;
}

static void
Measure_dealloc(MeasureObject *self)
{
    PyObject_GC_UnTrack(self);
    Measure_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *
measure_enter(MeasureObject *self)
{
    if (self->sink != NULL && sink_observed(self->sink)) {
        /* Observers want to see this block: the pure-Python measure does it all. */
        PyObject *delegate = PyObject_CallOneArg(self->fallback, self->name);
        if (delegate == NULL) {
            return NULL;
        }
        Py_XSETREF(self->delegate, delegate);
        return PyObject_CallMethodNoArgs(delegate, str_enter);
    }
    Py_CLEAR(self->delegate);
    self->start = monotonic_seconds();
    return Py_NewRef(self);
}

static PyObject *
measure_exit(MeasureObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "__exit__ takes 3 arguments");
        return NULL;
    }
    double end = monotonic_seconds();
    if (self->delegate != NULL) {
        PyObject *delegate = self->delegate;
        self->delegate = NULL;
        PyObject *argv[4] = {delegate, args[0], args[1], args[2]};
        PyObject *r = PyObject_VectorcallMethod(str_exit, argv, 4, NULL);
        Py_DECREF(delegate);
        return r;
    }
    if (self->sink == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *exc = args[1];
    if (exc == Py_None) {
        if (sink_success(self->sink, self->start, end - self->start) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    /* Record the failure with the block's exception; let it propagate (return None). */
    PyObject *argv[2] = {NULL, exc};
    argv[0] = PyFloat_FromDouble(self->start);
    if (argv[0] == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_Vectorcall(self->sink->on_failure, argv, 2, NULL);
    Py_DECREF(argv[0]);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyObject *
Measure_enter(MeasureObject *self, PyObject *Py_UNUSED(ignored))
{
    return measure_enter(self);
}

static PyObject *
Measure_exit(MeasureObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return measure_exit(self, args, nargs);
}

/* An awaitable that is already done: what __aenter__ and __aexit__ return. */
typedef struct {
    PyObject_HEAD
    PyObject *value;
} ReadyObject;

static PyObject *
ready_make(PyObject *value)
{
    if (value == NULL) {
        return NULL;
    }
    ReadyObject *self = PyObject_GC_New(ReadyObject, &Ready_Type);
    if (self == NULL) {
        Py_DECREF(value);
        return NULL;
    }
    self->value = value;   /* steals */
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int
Ready_traverse(ReadyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->value);
    return 0;
}

static int
Ready_clear(ReadyObject *self)
{
    Py_CLEAR(self->value);
    return 0;
}

static void
Ready_dealloc(ReadyObject *self)
{
    PyObject_GC_UnTrack(self);
    Ready_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *
Ready_iternext(ReadyObject *self)
{
    PyObject *value = self->value ? self->value : Py_None;
    PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, value);
    if (stop != NULL) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    Py_CLEAR(self->value);
    return NULL;
}

static PyAsyncMethods Ready_as_async = {
    .am_await = PyObject_SelfIter,
};

static PyTypeObject Ready_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._speedups.Ready",
    .tp_basicsize = sizeof(ReadyObject),
    .tp_dealloc = (destructor)Ready_dealloc,
    .tp_as_async = &Ready_as_async,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Ready_traverse,
    .tp_clear = (inquiry)Ready_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)Ready_iternext,
};

static PyObject *
Measure_aenter(MeasureObject *self, PyObject *Py_UNUSED(ignored))
{
    return ready_make(measure_enter(self));
}

static PyObject *
Measure_aexit(MeasureObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return ready_make(measure_exit(self, args, nargs));
}

static PyMethodDef Measure_methods[] = {
    {"__enter__", (PyCFunction)Measure_enter, METH_NOARGS, "Start timing the block."},
    {"__exit__", (PyCFunction)(void (*)(void))Measure_exit, METH_FASTCALL,
     "Record the block: a failure if an exception is leaving it (which propagates)."},
    {"__aenter__", (PyCFunction)Measure_aenter, METH_NOARGS, "Start timing the block."},
    {"__aexit__", (PyCFunction)(void (*)(void))Measure_aexit, METH_FASTCALL,
     "Record the block, as __exit__ does."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Measure_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._speedups.Measure",
    .tp_basicsize = sizeof(MeasureObject),
    .tp_dealloc = (destructor)Measure_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Measure(sink, name, fallback): times one `with` block.",
    .tp_traverse = (traverseproc)Measure_traverse,
    .tp_clear = (inquiry)Measure_clear,
    .tp_methods = Measure_methods,
    .tp_new = Measure_new,
};

/* ---------------------------------------------------------- MeasureFactory */

/* factory(name) -> Measure.  Names seen before (and only with the default event
   type) resolve through a dict; everything else goes to the pure-Python measure,
   which decides, validates and may add the name to the dict. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *owner;      /* object whose `enabled` attribute is checked per call */
    PyObject *sites;      /* dict: name -> Sink */
    PyObject *fallback;   /* the pure-Python measure(name, *, event_type=...) */
} FactoryObject;

static PyTypeObject Factory_Type;

static PyObject *
Factory_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    FactoryObject *self = (FactoryObject *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (self->sites == NULL || self->fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "callmetrics measure factory used after clearing");
        return NULL;
    }
    if (nargs == 1 && kwnames == NULL && PyUnicode_CheckExact(args[0])) {
        PyObject *sink = PyDict_GetItemWithError(self->sites, args[0]);   /* borrowed */
        if (sink != NULL && Py_IS_TYPE(sink, &Sink_Type)) {
            PyObject *enabled = PyObject_GetAttr(self->owner, str_enabled);
            if (enabled == NULL) {
                return NULL;
            }
            int on = PyObject_IsTrue(enabled);
            Py_DECREF(enabled);
            if (on < 0) {
                return NULL;
            }
            if (on) {
                return (PyObject *)measure_make((SinkObject *)sink, args[0], self->fallback);
            }
        }
        else if (PyErr_Occurred()) {
            return NULL;
        }
    }
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static PyObject *
Factory_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"owner", "sites", "fallback", NULL};
    PyObject *owner, *sites, *fallback;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!O:MeasureFactory", kwlist, &owner,
                                     &PyDict_Type, &sites, &fallback)) {
        return NULL;
    }
    FactoryObject *self = (FactoryObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = Factory_vectorcall;
    self->owner = Py_NewRef(owner);
    self->sites = Py_NewRef(sites);
    self->fallback = Py_NewRef(fallback);
    return (PyObject *)self;
}

static int
Factory_traverse(FactoryObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->owner);
    Py_VISIT(self->sites);
    Py_VISIT(self->fallback);
    return 0;
}

static int
Factory_clear(FactoryObject *self)
{
    Py_CLEAR(self->owner);
    Py_CLEAR(self->sites);
    Py_CLEAR(self->fallback);
    return 0;
}

static void
Factory_dealloc(FactoryObject *self)
{
    PyObject_GC_UnTrack(self);
    Factory_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject Factory_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._speedups.MeasureFactory",
    .tp_basicsize = sizeof(FactoryObject),
    .tp_dealloc = (destructor)Factory_dealloc,
    .tp_vectorcall_offset = offsetof(FactoryObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "MeasureFactory(owner, sites, fallback): analytics.measure in C.",
    .tp_traverse = (traverseproc)Factory_traverse,
    .tp_clear = (inquiry)Factory_clear,
    .tp_new = Factory_new,
};

/* ------------------------------------------------------------------ module */

static PyObject *
speedups_now(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(monotonic_seconds());
}

static PyMethodDef module_methods[] = {
    {"track", (PyCFunction)(void (*)(void))speedups_track, METH_VARARGS | METH_KEYWORDS,
     "track(func, sink, observed): the C wrapper of a sync callable."},
    {"now", speedups_now, METH_NOARGS,
     "The clock the C hot path reads (same scale as time.perf_counter())."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "callmetrics._speedups",
    .m_doc = "The optional C hot path of callmetrics (see callmetrics._accel).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyTypeObject *types[] = {&Buffer_Type, &Sink_Type, &Tracked_Type, &Unbound_Type,
                             &Measure_Type, &Ready_Type, &Factory_Type};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyType_Ready(types[i]) < 0) {
            return NULL;
        }
    }
    str_enter = PyUnicode_InternFromString("__enter__");
    str_exit = PyUnicode_InternFromString("__exit__");
    str_qualname = PyUnicode_InternFromString("__qualname__");
    str_enabled = PyUnicode_InternFromString("enabled");
    if (!str_enter || !str_exit || !str_qualname || !str_enabled) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Buffer", (PyObject *)&Buffer_Type) < 0
        || PyModule_AddObjectRef(module, "Sink", (PyObject *)&Sink_Type) < 0
        || PyModule_AddObjectRef(module, "Tracked", (PyObject *)&Tracked_Type) < 0
        || PyModule_AddObjectRef(module, "UnboundTracked", (PyObject *)&Unbound_Type) < 0
        || PyModule_AddObjectRef(module, "Measure", (PyObject *)&Measure_Type) < 0
        || PyModule_AddObjectRef(module, "MeasureFactory", (PyObject *)&Factory_Type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
