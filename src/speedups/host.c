/* callmetrics._speedups: MeasureHost, the C base of Analytics that answers measure().
 * Part of one translation unit: included by speedups.c (so the hot path's helpers
 * inline across parts), never compiled on its own. */

/* ------------------------------------------------------------- MeasureHost */

/* In C, `analytics.measure(name)` is a method of Analytics made by measure_method():
   a method descriptor of the Analytics class itself, which the interpreter calls
   without binding anything (3.11+ specialise a method descriptor's call when the
   instance is exactly of the descriptor's class).  Its state lives in the instance,
   at the fixed offset of this C base, so finding it costs nothing.  Names resolved
   before (with the default event type) are found with one dict lookup; everything
   else goes to the pure-Python measure, which validates, resolves, and may add the
   name to `sites`. */
typedef struct {
    PyObject_HEAD
    PyObject *sites;      /* dict: name -> Sink; only grows, never rebinds a name */
    PyObject *fallback;   /* the pure-Python measure(name, *, event_type=...) */
    MeasureObject *spare; /* the last block made, made again once only this holds it */
} HostObject;

static PyTypeObject Host_Type;
static PyObject *str_event_type;   /* "event_type" */
static PyObject *str_block;        /* "block": measure()'s default event type */

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

/* analytics.measure(name, *, event_type="block"): see the top of this part. */
static PyObject *
host_measure(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    HostObject *self = (HostObject *)op;
    if (self->sites == NULL || self->fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "callmetrics: measure() on an Analytics whose __init__ did not run");
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

static PyMethodDef host_measure_def = {
    "measure", (PyCFunction)(void (*)(void))host_measure, METH_FASTCALL | METH_KEYWORDS,
    "measure($self, name, *, event_type='block')\n--\n\n"
    "Time a block of code, recorded like a call of a function called ``name``.\n\n"
    "Usable as ``with`` and ``async with``; an exception leaving the block is a\n"
    "failure and propagates.  What ``name`` resolves to is cached: a fresh\n"
    "``measure(\"x\")`` per block costs about as much as a tracked call.",
};

/* measure_method(cls): analytics.measure for instances of cls, a subclass of
   MeasureHost (a descriptor of cls itself: see the top of this part). */
static PyObject *
speedups_measure_method(PyObject *Py_UNUSED(module), PyObject *cls)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &Host_Type)) {
        PyErr_SetString(PyExc_TypeError, "measure_method() takes a subclass of MeasureHost");
        return NULL;
    }
    return PyDescr_NewMethod((PyTypeObject *)cls, &host_measure_def);
}

/* measure_setup(host, sites, fallback): what host.measure() reads. */
static PyObject *
speedups_measure_setup(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyObject_TypeCheck(args[0], &Host_Type) || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "measure_setup(host, sites, fallback) takes a "
                                         "MeasureHost, a dict and a callable");
        return NULL;
    }
    HostObject *self = (HostObject *)args[0];
    Py_XSETREF(self->sites, Py_NewRef(args[1]));
    Py_XSETREF(self->fallback, Py_NewRef(args[2]));
    host_set_spare(self, NULL);
    Py_RETURN_NONE;
}

/* object.__new__'s work (not PyType_GenericNew's): it also gives a Python subclass's
   instance its inline attribute values, without which the instance's first attribute
   makes it a dict, and the interpreter specialises no method lookup on it. */
static PyObject *
Host_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    PyObject *none = PyTuple_New(0);
    if (none == NULL) {
        return NULL;
    }
    PyObject *self = PyBaseObject_Type.tp_new(type, none, NULL);
    Py_DECREF(none);
    return self;
}

static int
Host_traverse(HostObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->sites);
    Py_VISIT(self->fallback);
    Py_VISIT(self->spare);
    return 0;
}

static int
Host_clear(HostObject *self)
{
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
    .tp_name = "callmetrics._speedups.MeasureHost",
    .tp_basicsize = sizeof(HostObject),
    .tp_dealloc = (destructor)Host_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C base of Analytics: what its measure() method reads.",
    .tp_traverse = (traverseproc)Host_traverse,
    .tp_clear = (inquiry)Host_clear,
    .tp_new = Host_new,
};
