/* callmetrics._engine._speedups: the sync wrapper.
 * Part of one translation unit: included by speedups.c (so the hot path's helpers
 * inline across parts), never compiled on its own. */

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
    if (sink == NULL || self->func == NULL || self->observed == NULL || !sink_ready(sink)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "callmetrics: tracking state was cleared");
        }
        return NULL;
    }
    if (sink_observed(sink)) {
        return PyObject_Vectorcall(self->observed, args, nargsf, kwnames);
    }
    Frames *fr = frames_here();
    int at = frames_enter(fr, sink->key);
    double start = monotonic_seconds();
    PyObject *result = PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    if (result == NULL) {
        sink_failure(sink, start, at);
        return NULL;
    }
    double end = monotonic_seconds();
    frames_leave(fr, at);
    if (at <= 0) {   /* called from untracked code (or not pushed): under its function */
        if (sink_success(sink, sink->key, start, end) < 0) {
            Py_DECREF(result);
            return NULL;
        }
        return result;
    }
    PyObject *key = sink_key(sink, fr, at, end - start);
    if (key == NULL || sink_success(sink, key, start, end) < 0) {
        Py_XDECREF(key);
        Py_DECREF(result);
        return NULL;
    }
    Py_DECREF(key);
    return result;
}

/* track(func, sink, observed): the C wrapper of a sync callable.  It binds like a
   function; _wrap.wrap() puts a staticmethod around it for callables that do not
   bind (partials, builtins, callable objects, classes). */
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
    TrackedObject *self = (TrackedObject *)Tracked_Type.tp_alloc(&Tracked_Type, 0);
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

/* Bind like a function: a bound method on an instance, itself on the class. */
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
    .tp_name = "callmetrics._engine._speedups.Tracked",
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
