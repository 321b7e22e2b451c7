/* callmetrics._engine._speedups: MeasureHost, the state behind Analytics.measure() in C.
 * Part of one translation unit: included by speedups.c (so the hot path's helpers
 * inline across parts), never compiled on its own. */

/* ------------------------------------------------------------- MeasureHost */

/* In C, `analytics.measure(name)` is a method of Analytics made by measure_method():
   a method descriptor of the Analytics class itself, which the interpreter calls
   without binding anything (3.11+ specialise a method descriptor's call when the
   instance is exactly of the descriptor's class).  Its state is the instance's
   MeasureHost (its `_measure_host` attribute), remembered for the instance measured
   last, so that a program's one instance finds it with one comparison; Analytics
   stays a plain Python class, whose instances keep the interpreter's fast attribute
   layout.  Names resolved before (with the default event type) are found with one
   dict lookup; everything else goes to the pure-Python measure, which validates,
   resolves, and may add the name to `sites`. */
typedef struct {
    PyObject_HEAD
    PyObject *owner;      /* the Analytics: held, so it lives as long as this does */
    PyObject *sites;      /* dict: name -> Sink; only grows, never rebinds a name */
    PyObject *fallback;   /* the pure-Python measure(name, *, event_type=...) */
    MeasureObject *spare; /* the last block made, made again once only this holds it */
} HostObject;

static PyTypeObject Host_Type;
static PyObject *str_event_type;   /* "event_type" */
static PyObject *str_block;        /* "block": measure()'s default event type */
static PyObject *str_measure_host; /* "_measure_host": where an Analytics keeps its host */

/* The host found last (borrowed).  A host clears it when it goes, so it always points
   to a live host; and a live host holds its owner, so no other object can be at the
   owner's address: `last_host->owner == instance` identifies the instance's host. */
static HostObject *last_host = NULL;

/* Whether nobody but the host holds its spare block: the host and the block's bound
   __exit__ hold the block, and only the block holds that method (the garbage
   collector may have cleared it: then the block is not reused). */
static inline int
spare_idle(MeasureObject *block)
{
    return block->exit_method != NULL && Py_REFCNT(block) == 2
           && Py_REFCNT(block->exit_method) == 1;
}

/* Put `block` (a new reference, or NULL) in place of the spare, then let go of the
   old one, first breaking its cycle with its bound __exit__.  In that order, what
   letting go runs (a note's __del__ calling measure()) finds the new spare. */
static void
host_set_spare(HostObject *self, MeasureObject *block)
{
    MeasureObject *old = self->spare;
    self->spare = block;
    if (old != NULL) {
        Py_CLEAR(old->exit_method);
        Py_DECREF(old);
    }
}

/* A block of `sink`: the spare block again when nobody else holds it (the common
   `with analytics.measure("x"):` has let go of it at the end of its block), which
   saves an allocation and a garbage-collector registration per block.  Reused, it is
   reset to what measure_make makes; the references it held are released last, once
   the caller's reference is taken, so code they run (a note's __del__ calling
   measure() again) finds the spare in use and gets a new block. */
static PyObject *
host_block(HostObject *self, SinkObject *sink, PyObject *name)
{
    MeasureObject *block = self->spare;
    if (block == NULL || !spare_idle(block)) {
        block = measure_make(sink, name, self->fallback);
        if (block == NULL) {
            return NULL;
        }
        block->exit_method = PyCFunction_NewEx(&measure_exit_def, (PyObject *)block, NULL);
        if (block->exit_method == NULL) {
            Py_DECREF(block);
            return NULL;
        }
        host_set_spare(self, (MeasureObject *)Py_NewRef(block));
        return (PyObject *)block;
    }
    PyObject *old_sink = (PyObject *)block->sink;
    PyObject *old_name = block->name;
    PyObject *old_fallback = block->fallback;
    PyObject *old_delegate = block->delegate;
    PyObject *old_message = block->message;
    block->sink = (SinkObject *)Py_NewRef(sink);
    block->name = Py_NewRef(name);
    block->fallback = Py_NewRef(self->fallback);
    block->delegate = NULL;
    block->message = NULL;
    block->start = 0.0;
    block->at = -1;
    block->active = 0;
    Py_INCREF(block);
    Py_XDECREF(old_sink);
    Py_XDECREF(old_name);
    Py_XDECREF(old_fallback);
    Py_XDECREF(old_delegate);
    Py_XDECREF(old_message);
    return (PyObject *)block;
}

/* Whether measure()'s keywords ask for what no keyword asks for: none, or
   event_type="block" (a str equal to it).  -1: an error is set. */
static int
host_default_keywords(PyObject *const *values, PyObject *kwnames)
{
    if (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0) {
        return 1;
    }
    if (PyTuple_GET_SIZE(kwnames) != 1 || !PyUnicode_CheckExact(values[0])) {
        return 0;
    }
    PyObject *key = PyTuple_GET_ITEM(kwnames, 0);
    if (key != str_event_type && PyUnicode_Compare(key, str_event_type) != 0) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (values[0] == str_block) {
        return 1;
    }
    int equal = PyUnicode_Compare(values[0], str_block);
    return PyErr_Occurred() ? -1 : equal == 0;
}

/* measure() for `host`, which the caller holds. */
static PyObject *
host_answer(HostObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (self->sites == NULL || self->fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "callmetrics: measure() state was cleared");
        return NULL;
    }
    if (nargs == 1 && PyUnicode_CheckExact(args[0])) {
        int plain = host_default_keywords(args + 1, kwnames);
        if (plain < 0) {
            return NULL;
        }
        if (plain) {
            MeasureObject *spare = self->spare;
            if (spare != NULL && spare->name == args[0] && spare_idle(spare)
                && spare->sink != NULL && spare->delegate == NULL && spare->message == NULL) {
                /* The same name object as the idle spare's (which holds it, so it is
                   not a new object at a freed address): the same sink, since `sites`
                   only grows and never rebinds a name.  No lookup, nothing to swap. */
                spare->start = 0.0;
                spare->active = 0;
                return Py_NewRef(spare);
            }
            PyObject *sink = PyDict_GetItemWithError(self->sites, args[0]);   /* borrowed */
            if (sink != NULL && Py_IS_TYPE(sink, &Sink_Type)) {
                return host_block(self, (SinkObject *)sink, args[0]);
            }
            if (sink == NULL && PyErr_Occurred()) {
                return NULL;
            }
        }
    }
    return PyObject_Vectorcall(self->fallback, args, nargs, kwnames);
}

/* The host of `owner` (a new reference), from its `_measure_host` attribute. */
static HostObject *
host_find(PyObject *owner)
{
    PyObject *found = PyObject_GetAttr(owner, str_measure_host);
    if (found == NULL) {
        return NULL;
    }
    if (!Py_IS_TYPE(found, &Host_Type) || ((HostObject *)found)->owner != owner) {
        PyErr_Format(PyExc_RuntimeError, "callmetrics: %.100s._measure_host is not the "
                     "instance's own measure() state", Py_TYPE(owner)->tp_name);
        Py_DECREF(found);
        return NULL;
    }
    last_host = (HostObject *)found;
    return (HostObject *)found;
}

/* analytics.measure(name, *, event_type="block"): see the top of this part.  The host
   is held for the call: what it runs (a note's __del__) may drop the instance's. */
static PyObject *
host_measure(PyObject *owner, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    HostObject *host = last_host;
    if (host != NULL && host->owner == owner) {
        Py_INCREF(host);
    }
    else if ((host = host_find(owner)) == NULL) {
        return NULL;
    }
    PyObject *r = host_answer(host, args, nargs, kwnames);
    Py_DECREF(host);
    return r;
}

static PyMethodDef host_measure_def = {
    "measure", (PyCFunction)(void (*)(void))host_measure, METH_FASTCALL | METH_KEYWORDS,
    "measure($self, name, *, event_type='block', expected=())\n--\n\n"
    "Time a block of code, recorded like a call of a function called ``name``.\n\n"
    "Usable as ``with`` and ``async with``; an exception leaving the block is a\n"
    "failure and propagates, unless it is one of ``expected`` (as for ``track``):\n"
    "then the block is a success noted ``expected KeyError``.  What ``name``\n"
    "resolves to is cached: a fresh ``measure(\"x\")`` per block costs about as much\n"
    "as a tracked call.",
};

/* measure_method(cls): analytics.measure for instances of cls, each of which keeps a
   MeasureHost of its own as `_measure_host` (see the top of this part). */
static PyObject *
speedups_measure_method(PyObject *Py_UNUSED(module), PyObject *cls)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "measure_method() takes a class");
        return NULL;
    }
    return PyDescr_NewMethod((PyTypeObject *)cls, &host_measure_def);
}

static PyObject *
Host_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"owner", "sites", "fallback", NULL};
    PyObject *owner, *sites, *fallback;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!O:MeasureHost", kwlist, &owner,
                                     &PyDict_Type, &sites, &fallback)) {
        return NULL;
    }
    HostObject *self = (HostObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->owner = Py_NewRef(owner);
    self->sites = Py_NewRef(sites);
    self->fallback = Py_NewRef(fallback);
    self->spare = NULL;
    return (PyObject *)self;
}

static int
Host_traverse(HostObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->owner);
    Py_VISIT(self->sites);
    Py_VISIT(self->fallback);
    Py_VISIT(self->spare);
    return 0;
}

static int
Host_clear(HostObject *self)
{
    if (last_host == self) {
        last_host = NULL;
    }
    Py_CLEAR(self->owner);
    Py_CLEAR(self->sites);
    Py_CLEAR(self->fallback);
    host_set_spare(self, NULL);
    return 0;
}

static void
Host_dealloc(HostObject *self)
{
    PyObject_GC_UnTrack(self);
    Host_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject Host_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._engine._speedups.MeasureHost",
    .tp_basicsize = sizeof(HostObject),
    .tp_dealloc = (destructor)Host_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "MeasureHost(owner, sites, fallback): what owner.measure() reads in C.",
    .tp_traverse = (traverseproc)Host_traverse,
    .tp_clear = (inquiry)Host_clear,
    .tp_new = Host_new,
};
