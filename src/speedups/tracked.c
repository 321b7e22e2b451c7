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

/* The head the two wrapper types share (Tracked here, Stepping in stepping.c): their
   vectorcall slot and the wrapped callable, first in both, so that one pass-through
   and one tracking switch serve both. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *func;
} WrapperHead;
_Static_assert(offsetof(TrackedObject, vectorcall) == offsetof(WrapperHead, vectorcall)
               && offsetof(TrackedObject, func) == offsetof(WrapperHead, func),
               "TrackedObject must begin with WrapperHead's fields");

/* The vectorcall of a wrapper that stopped tracking (pruned, or its instrumentation
   undone): it calls the function and nothing else (for a stepping callable, that
   returns the original's own coroutine or generator, no proxy).  Swapping the
   vectorcall pointer (wrapper_set_tracking) costs the tracked path nothing: no flag
   is read per call. */
static PyObject *
Wrapper_passthrough(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *func = ((WrapperHead *)op)->func;
    if (func == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "callmetrics: tracking state was cleared");
        return NULL;
    }
    return PyObject_Vectorcall(func, args, nargsf, kwnames);
}

/* Set a wrapper's `_callmetrics_tracking`: True puts back `tracked` (its type's
   recording vectorcall), False the pass-through. */
static int
wrapper_set_tracking(PyObject *op, PyObject *value, vectorcallfunc tracked)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_callmetrics_tracking cannot be deleted");
        return -1;
    }
    int on = PyObject_IsTrue(value);
    if (on < 0) {
        return -1;
    }
    ((WrapperHead *)op)->vectorcall = on ? tracked : Wrapper_passthrough;
    return 0;
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

/* Whether calls are recorded; False turns the wrapper into a pass-through in place,
   so every reference to it (dict keys, lists, other modules' names) keeps working. */
static PyObject *
Tracked_get_tracking(TrackedObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->vectorcall == Tracked_vectorcall);
}

static int
Tracked_set_tracking(TrackedObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    return wrapper_set_tracking((PyObject *)self, value, Tracked_vectorcall);
}

/* Whether the wrapper stands for a Python function (directly, or through another
   tracked wrapper of one): then it answers that function's attributes. */
static int
Tracked_of_function(TrackedObject *self)
{
    PyObject *func = self->func;
    while (func != NULL && Py_IS_TYPE(func, &Tracked_Type)) {
        func = ((TrackedObject *)func)->func;
    }
    return func != NULL && PyFunction_Check(func);
}

/* The wrapped function's own attributes, read and written through (a Python
   function only: for other callables they live in the wrapper's __dict__, as
   functools.update_wrapper put them).  Writing __defaults__ on the wrapper thus
   changes what the function computes, exactly as writing it on the function does.
   `closure` is the attribute's name, a C string. */
static PyObject *
Tracked_get_forwarded(TrackedObject *self, void *closure)
{
    const char *name = (const char *)closure;
    if (Tracked_of_function(self)) {
        return PyObject_GetAttrString(self->func, name);
    }
    PyObject *value = self->dict == NULL ? NULL : PyDict_GetItemString(self->dict, name);
    if (value == NULL) {   /* borrowed, or absent */
        PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%s'",
                     Py_TYPE(self)->tp_name, name);
        return NULL;
    }
    return Py_NewRef(value);
}

static int
Tracked_set_forwarded(TrackedObject *self, PyObject *value, void *closure)
{
    const char *name = (const char *)closure;
    if (Tracked_of_function(self)) {
        return PyObject_SetAttrString(self->func, name, value);   /* NULL value: delete */
    }
    if (self->dict == NULL) {
        self->dict = PyDict_New();
        if (self->dict == NULL) {
            return -1;
        }
    }
    if (value != NULL) {
        return PyDict_SetItemString(self->dict, name, value);
    }
    if (PyDict_DelItemString(self->dict, name) < 0) {
        if (PyErr_ExceptionMatches(PyExc_KeyError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_AttributeError, name);
        }
        return -1;
    }
    return 0;
}

/* A wrapper of a Python function answers __class__ as `function`, so that
   isinstance(f, types.FunctionType), inspect.isfunction() and inspect.getfile()
   answer as for the function (type(f) is still Tracked). */
static PyObject *
Tracked_get_class(TrackedObject *self, void *Py_UNUSED(closure))
{
    if (Tracked_of_function(self)) {
        return Py_NewRef((PyObject *)&PyFunction_Type);
    }
    return Py_NewRef((PyObject *)Py_TYPE(self));
}

#define FORWARDED(NAME) \
    {NAME, (getter)Tracked_get_forwarded, (setter)Tracked_set_forwarded, \
     "The wrapped function's " NAME ".", (void *)NAME}

static PyMethodDef Tracked_methods[] = {
    {"__reduce__", (PyCFunction)Tracked_reduce, METH_NOARGS,
     "Pickle by reference (module and qualified name), as functions are."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Tracked_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {"_callmetrics_sink", (getter)Tracked_get_sink, NULL, "Where calls are recorded.", NULL},
    {"_callmetrics_func", (getter)Tracked_get_func, NULL, "The wrapped callable.", NULL},
    {"_callmetrics_tracking", (getter)Tracked_get_tracking, (setter)Tracked_set_tracking,
     "Whether calls are recorded (False: a pass-through).", NULL},
    {"__class__", (getter)Tracked_get_class, NULL, "function, for a Python function's wrapper.",
     NULL},
    FORWARDED("__code__"),
    FORWARDED("__defaults__"),
    FORWARDED("__kwdefaults__"),
    FORWARDED("__globals__"),
    FORWARDED("__builtins__"),
    FORWARDED("__closure__"),
    FORWARDED("__annotations__"),
    FORWARDED("__module__"),
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
