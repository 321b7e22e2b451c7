/* callmetrics._engine._speedups: the Sink.
 * Part of one translation unit: included by speedups.c (so the hot path's helpers
 * inline across parts), never compiled on its own. */

/* -------------------------------------------------------------------- Sink */

typedef struct {
    PyObject_HEAD
    PyObject *buffer;      /* CallBuffer: the instance's buffered calls */
    PyObject *key;         /* what successful calls are recorded under (FunctionStats) */
    PyObject *observers;   /* list: non-empty means take the observed (Python) path */
    PyObject *cache;       /* dict holding the cached limit (see docs/engine.md) */
    PyObject *cache_key;   /* its key */
    PyObject *refresh;     /* () -> int: recompute the limit after a cache clear */
    PyObject *after;       /* (stats, duration, limit) -> None: drain soon, log a success */
    PyObject *failed;      /* (stats, start, exc) -> float: record, log a failed call */
    PyObject *noted;       /* (stats, start, message, at) -> float: record a noted success */
    PyObject *edges;       /* dict caller -> Edge: the function's outer calls, by caller */
    PyObject *nested;      /* dict caller -> Edge: its nested calls, by caller */
    PyObject *key_for;     /* (stats, caller, outer, duration) -> Edge: a new edge */
} SinkObject;

static PyTypeObject Sink_Type;

static PyObject *
Sink_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"buffer", "key", "observers", "cache", "cache_key", "refresh",
                             "after", "failed", "noted", "edges", "nested", "key_for", NULL};
    PyObject *buffer, *key, *observers, *cache, *cache_key, *refresh, *after, *failed, *noted;
    PyObject *edges, *nested, *key_for;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OO!O!OOOOOO!O!O:Sink", kwlist,
                                     &Buffer_Type, &buffer, &key, &PyList_Type, &observers,
                                     &PyDict_Type, &cache, &cache_key, &refresh, &after,
                                     &failed, &noted, &PyDict_Type, &edges, &PyDict_Type,
                                     &nested, &key_for)) {
        return NULL;
    }
    SinkObject *self = (SinkObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->buffer = Py_NewRef(buffer);
    self->key = Py_NewRef(key);
    self->observers = Py_NewRef(observers);
    self->cache = Py_NewRef(cache);
    self->cache_key = Py_NewRef(cache_key);
    self->refresh = Py_NewRef(refresh);
    self->after = Py_NewRef(after);
    self->failed = Py_NewRef(failed);
    self->noted = Py_NewRef(noted);
    self->edges = Py_NewRef(edges);
    self->nested = Py_NewRef(nested);
    self->key_for = Py_NewRef(key_for);
    return (PyObject *)self;
}

static int
Sink_traverse(SinkObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->buffer);
    Py_VISIT(self->key);
    Py_VISIT(self->observers);
    Py_VISIT(self->cache);
    Py_VISIT(self->cache_key);
    Py_VISIT(self->refresh);
    Py_VISIT(self->after);
    Py_VISIT(self->failed);
    Py_VISIT(self->noted);
    Py_VISIT(self->edges);
    Py_VISIT(self->nested);
    Py_VISIT(self->key_for);
    return 0;
}

static int
Sink_clear(SinkObject *self)
{
    Py_CLEAR(self->buffer);
    Py_CLEAR(self->key);
    Py_CLEAR(self->observers);
    Py_CLEAR(self->cache);
    Py_CLEAR(self->cache_key);
    Py_CLEAR(self->refresh);
    Py_CLEAR(self->after);
    Py_CLEAR(self->failed);
    Py_CLEAR(self->noted);
    Py_CLEAR(self->edges);
    Py_CLEAR(self->nested);
    Py_CLEAR(self->key_for);
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
sink_ready(SinkObject *sink)
{
    if (sink->buffer == NULL || sink->failed == NULL || sink->noted == NULL
        || sink->key_for == NULL) {   /* cleared */
        PyErr_SetString(PyExc_RuntimeError, "callmetrics: tracking state was cleared");
        return 0;
    }
    return 1;
}

static inline int
sink_observed(SinkObject *sink)
{
    return sink->observers != NULL && PyList_GET_SIZE(sink->observers) > 0;
}

/* The key a call of the sink's function that left the stack at `at` (-1: it was
   not pushed) is buffered under: its function, or the Edge of its nearest tracked
   caller (one dict lookup; a new edge is made by the engine's Python).  A new
   reference; NULL with an exception set. */
static PyObject *
sink_key(SinkObject *sink, Frames *fr, int at, double duration)
{
    PyObject *stats = sink->key;
    int outer = 1;
    PyObject *caller = at < 0 ? NULL : frames_caller(fr, stats, &outer);
    if (caller == NULL) {
        return Py_NewRef(stats);
    }
    PyObject *edge = PyDict_GetItemWithError(outer ? sink->edges : sink->nested, caller);
    if (edge != NULL) {
        return Py_NewRef(edge);
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    PyObject *took = PyFloat_FromDouble(duration);
    if (took == NULL) {
        return NULL;
    }
    Py_INCREF(caller);   /* Python code runs: hold what the stack lends */
    Py_INCREF(stats);
    PyObject *argv[4] = {stats, caller, outer ? Py_True : Py_False, took};
    edge = PyObject_Vectorcall(sink->key_for, argv, 4, NULL);
    Py_DECREF(stats);
    Py_DECREF(caller);
    Py_DECREF(took);
    return edge;
}

/* Append one successful call under `key`; -1 with an exception set if that or a
   callback failed.  The common case allocates nothing: three stores into the
   buffer's arrays, one dict lookup for the cached limit, one comparison. */
static int
sink_success(SinkObject *sink, PyObject *key, double start, double end)
{
    BufferObject *buf = (BufferObject *)sink->buffer;
    double duration = end - start;
    if (buffer_push(buf, key, start, duration) < 0) {
        return -1;
    }
    PyObject *limit;
    if (PyDict_CheckExact(sink->cache)) {
        limit = PyDict_GetItemWithError(sink->cache, sink->cache_key);   /* borrowed */
        if (limit == NULL && PyErr_Occurred()) {
            return -1;
        }
        if (limit != NULL) {
            Py_ssize_t bound = PyLong_AsSsize_t(limit);
            if (bound == -1 && PyErr_Occurred()) {
                return -1;
            }
            if (buffer_items(buf) < bound) {
                return 0;
            }
        }
        Py_XINCREF(limit);
    }
    else {   /* a dict subclass may refuse lookups (no level cache): ask it */
        limit = PyObject_GetItem(sink->cache, sink->cache_key);
        if (limit == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                return -1;
            }
            PyErr_Clear();
        }
        else {
            Py_ssize_t bound = PyLong_AsSsize_t(limit);
            if (bound == -1 && PyErr_Occurred()) {
                Py_DECREF(limit);
                return -1;
            }
            if (buffer_items(buf) < bound) {
                Py_DECREF(limit);
                return 0;
            }
        }
    }
    if (limit == NULL) {   /* logging changed a level and cleared its caches */
        limit = PyObject_CallNoArgs(sink->refresh);
        if (limit == NULL) {
            return -1;
        }
    }
    /* The buffer is full or successes are logged: the engine's Python takes over. */
    PyObject *t1 = PyFloat_FromDouble(duration);
    if (t1 == NULL) {
        Py_DECREF(limit);
        return -1;
    }
    PyObject *argv[3] = {sink->key, t1, limit};
    PyObject *r = PyObject_Vectorcall(sink->after, argv, 3, NULL);
    Py_DECREF(limit);
    Py_DECREF(t1);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* Record the failed call whose exception is set, pushed on the stack at `at` (the
   engine's Python takes it off); leaves an exception set: the call's own, or (like
   an exception raised in an `except` block) one raised by the bookkeeping, with the
   call's as its context. */
static void
sink_failure(SinkObject *sink, double start, int at)
{
    PyObject *exc = PyErr_GetRaisedException_compat();
    PyObject *t0 = PyFloat_FromDouble(start);
    PyObject *where = PyLong_FromLong(at);
    PyObject *r = NULL;
    if (t0 != NULL && where != NULL && exc != NULL) {
        PyObject *argv[4] = {sink->key, t0, exc, where};
        r = PyObject_Vectorcall(sink->failed, argv, 4, NULL);
    }
    else {
        frames_leave(frames_here(), at);
    }
    Py_XDECREF(t0);
    Py_XDECREF(where);
    if (r != NULL) {
        Py_DECREF(r);
        PyErr_SetRaisedException_compat(exc);
        return;
    }
    PyObject *raised = PyErr_GetRaisedException_compat();
    if (raised == NULL) {
        PyErr_SetRaisedException_compat(exc);
        return;
    }
    if (exc != NULL) {
        PyException_SetContext(raised, exc);   /* steals exc */
    }
    PyErr_SetRaisedException_compat(raised);
}

static PyObject *
Sink_get_buffer(SinkObject *self, void *Py_UNUSED(closure))
{
    if (self->buffer == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(self->buffer);
}

/* sink.ok(start): record a successful call that started at `start` (a perf_counter
   reading) and ends now: the Python async wrapper's end, done as the C wrapper's. */
static PyObject *
Sink_ok(SinkObject *self, PyObject *start)
{
    double began = PyFloat_AsDouble(start);
    if (began == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    double end = monotonic_seconds();
    if (!sink_ready(self) || sink_success(self, self->key, began, end) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef Sink_methods[] = {
    {"ok", (PyCFunction)Sink_ok, METH_O,
     "ok(start): record a successful call that started at `start` and ends now."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Sink_getset[] = {
    {"buffer", (getter)Sink_get_buffer, NULL, "The CallBuffer calls are appended to.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Sink_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._engine._speedups.Sink",
    .tp_basicsize = sizeof(SinkObject),
    .tp_dealloc = (destructor)Sink_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Sink(buffer, key, observers, cache, cache_key, refresh, after, failed, noted,\n"
              "edges, nested, key_for)",
    .tp_traverse = (traverseproc)Sink_traverse,
    .tp_clear = (inquiry)Sink_clear,
    .tp_getset = Sink_getset,
    .tp_methods = Sink_methods,
    .tp_new = Sink_new,
};
