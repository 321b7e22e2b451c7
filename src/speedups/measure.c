/* callmetrics._engine._speedups: the measure() block.
 * Part of one translation unit: included by speedups.c (so the hot path's helpers
 * inline across parts), never compiled on its own. */

/* ----------------------------------------------------------------- Measure */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;   /* enter (no argument) or exit (three): see MeasureSlot */
    SinkObject *sink;
    PyObject *name;
    PyObject *fallback;   /* (name) -> pure-Python measure, used while observers exist */
    PyObject *delegate;   /* that pure-Python measure, once entered with observers */
    PyObject *message;    /* the block's note (NULL: none), as the Python Measure's */
    PyObject *exit_method;  /* a host's spare block only: __exit__ bound once (MeasureSlot) */
    double start;
    int at;               /* where the block is on its thread's stack (-1: not on it) */
    int active;           /* entered and not yet exited: a second enter raises, a second
                             exit is ignored (as the Python Measure's) */
} MeasureObject;

static PyTypeObject Measure_Type;
static PyObject *Measure_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf,
                                    PyObject *kwnames);

static MeasureObject *
measure_make(SinkObject *sink, PyObject *name, PyObject *fallback)
{
    MeasureObject *self = PyObject_GC_New(MeasureObject, &Measure_Type);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = Measure_vectorcall;
    self->sink = (SinkObject *)Py_NewRef(sink);
    self->name = Py_NewRef(name);
    self->fallback = Py_NewRef(fallback);
    self->delegate = NULL;
    self->message = NULL;
    self->exit_method = NULL;
    self->start = 0.0;
    self->at = -1;
    self->active = 0;
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
    Py_VISIT(self->message);
    Py_VISIT(self->exit_method);
    return 0;
}

static int
Measure_clear(MeasureObject *self)
{
    Py_CLEAR(self->sink);
    Py_CLEAR(self->name);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->delegate);
    Py_CLEAR(self->message);
    Py_CLEAR(self->exit_method);
    return 0;
}

static void
Measure_dealloc(MeasureObject *self)
{
    PyObject_GC_UnTrack(self);
    Measure_clear(self);
    PyObject_GC_Del(self);
}

/* Start the block; `push`: put it on the thread's stack of tracked calls (a `with`
   block; an `async with` one is not: a coroutine's blocks interleave). */
static PyObject *
measure_enter(MeasureObject *self, int push)
{
    if (self->active) {
        PyErr_Format(PyExc_RuntimeError,
                     "measure(%R) block entered while already active; use a fresh "
                     "analytics.measure(...) for each block", self->name);
        return NULL;
    }
    self->active = 1;
    if (self->sink != NULL && sink_observed(self->sink)) {
        /* Observers want to see this block: the pure-Python measure does it all. */
        PyObject *delegate = PyObject_CallOneArg(self->fallback, self->name);
        if (delegate == NULL) {
            self->active = 0;
            return NULL;
        }
        Py_XSETREF(self->delegate, delegate);
        /* An `async with` block suspends: the Python one's own entry for it. */
        PyObject *entered = PyObject_CallMethodNoArgs(delegate, push ? str_enter
                                                                    : str_enter_suspending);
        if (entered == NULL) {
            self->active = 0;
        }
        return entered;
    }
    Py_CLEAR(self->delegate);
    self->at = (push && self->sink != NULL) ? frames_enter(frames_here(), self->sink->key) : -1;
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
    if (!self->active) {
        Py_RETURN_NONE;   /* exited already (or never entered): recorded once, at most */
    }
    self->active = 0;
    if (self->delegate != NULL) {
        PyObject *delegate = self->delegate;
        self->delegate = NULL;
        /* A note set on this object (not on what __enter__ returned) goes along. */
        if (self->message != NULL && self->message != Py_None
            && PyObject_SetAttrString(delegate, "message", self->message) < 0) {
            Py_DECREF(delegate);
            return NULL;
        }
        PyObject *argv[4] = {delegate, args[0], args[1], args[2]};
        PyObject *r = PyObject_VectorcallMethod(str_exit, argv, 4, NULL);
        Py_DECREF(delegate);
        return r;
    }
    int at = self->at;
    self->at = -1;
    Frames *fr = frames_here();
    if (self->sink == NULL) {
        frames_leave(fr, at);
        Py_RETURN_NONE;
    }
    if (!sink_ready(self->sink)) {
        frames_leave(fr, at);
        return NULL;
    }
    PyObject *exc = args[1];
    if (exc == Py_None && self->message != NULL && self->message != Py_None) {
        /* A noted success: the engine's Python records the note (rare path).  The
           sink and the note are held for the call: Python code (the note's __str__)
           may reassign block.message meanwhile. */
        SinkObject *sink = (SinkObject *)Py_NewRef(self->sink);
        PyObject *message = Py_NewRef(self->message);
        PyObject *start = PyFloat_FromDouble(self->start);
        PyObject *where = PyLong_FromLong(at);
        PyObject *r = NULL;
        if (start != NULL && where != NULL) {
            PyObject *argv[4] = {sink->key, start, message, where};
            r = PyObject_Vectorcall(sink->noted, argv, 4, NULL);
        }
        else {
            frames_leave(fr, at);
        }
        Py_XDECREF(start);
        Py_XDECREF(where);
        Py_DECREF(message);
        Py_DECREF(sink);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
        Py_RETURN_NONE;
    }
    if (exc == Py_None) {
        frames_leave(fr, at);
        SinkObject *sink = self->sink;
        PyObject *key = sink_key(sink, fr, at, end - self->start);
        if (key == NULL) {
            return NULL;
        }
        int failed = sink_success(sink, key, self->start, end);
        Py_DECREF(key);
        if (failed < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    /* Record the failure with the block's exception; let it propagate (return None). */
    PyObject *argv[4] = {self->sink->key, NULL, exc, NULL};
    argv[1] = PyFloat_FromDouble(self->start);
    argv[3] = PyLong_FromLong(at);
    if (argv[1] == NULL || argv[3] == NULL) {
        Py_XDECREF(argv[1]);
        Py_XDECREF(argv[3]);
        frames_leave(fr, at);
        return NULL;
    }
    PyObject *r = PyObject_Vectorcall(self->sink->failed, argv, 4, NULL);
    Py_DECREF(argv[1]);
    Py_DECREF(argv[3]);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_NONE;
}

/* How the block is entered and exited.  `with` looks __enter__ and __exit__ up on
   the block's type and binds them to the block; binding a method makes a new object
   each time, two per block.  Here both names are MeasureSlot descriptors instead:
   bound to a block they give the block itself, whose vectorcall enters when called
   with no argument and exits when called with three (exactly how `with`, `async
   with` aside, calls them).  Looked up on the class, a slot is a plain callable that
   takes the block first, as contextlib.ExitStack calls it.
   The one exception is the spare block a MeasureHost hands out again and again
   (host.c): it keeps its __exit__ bound once, in `exit_method`, and __exit__ gives
   that.  A builtin method is what the interpreter calls fastest (it specialises the
   call, where calling the block itself takes the generic path); the cycle it makes
   (block -> bound method -> block) is broken when the host lets go of the block. */
static PyObject *
measure_call(PyObject *op, int exits, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    if (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0) {
        if (!exits && nargs == 0) {
            return measure_enter((MeasureObject *)op, 1);
        }
        if (exits && nargs == 3) {
            return measure_exit((MeasureObject *)op, args, nargs);
        }
    }
    PyErr_SetString(PyExc_TypeError, exits ? "__exit__ takes 3 positional arguments"
                                           : "__enter__ takes no arguments");
    return NULL;
}

static PyObject *
Measure_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    return measure_call(op, nargs != 0, args, nargs, kwnames);
}

static PyObject *
measure_exit_method(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return measure_exit((MeasureObject *)self, args, nargs);
}

static PyMethodDef measure_exit_def = {
    "__exit__", (PyCFunction)(void (*)(void))measure_exit_method, METH_FASTCALL,
    "Record the block.",
};

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int exits;            /* 0: __enter__, 1: __exit__ */
} SlotObject;

static PyTypeObject Slot_Type;

static PyObject *
Slot_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    SlotObject *self = (SlotObject *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1 || !Py_IS_TYPE(args[0], &Measure_Type)) {
        PyErr_Format(PyExc_TypeError, "Measure.%s needs a Measure as its first argument",
                     self->exits ? "__exit__" : "__enter__");
        return NULL;
    }
    return measure_call(args[0], self->exits, args + 1, nargs - 1, kwnames);
}

static PyObject *
Slot_descr_get(PyObject *self, PyObject *obj, PyObject *Py_UNUSED(type))
{
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(self);
    }
    if (!Py_IS_TYPE(obj, &Measure_Type)) {   /* Measure is final: cannot happen */
        PyErr_SetString(PyExc_TypeError, "a Measure slot bound to another type");
        return NULL;
    }
    PyObject *bound = ((MeasureObject *)obj)->exit_method;
    if (((SlotObject *)self)->exits && bound != NULL) {
        return Py_NewRef(bound);
    }
    return Py_NewRef(obj);
}

static PyObject *
Slot_repr(SlotObject *self)
{
    return PyUnicode_FromFormat("<slot '%s' of 'Measure' objects>",
                                self->exits ? "__exit__" : "__enter__");
}

static PyTypeObject Slot_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._engine._speedups.MeasureSlot",
    .tp_basicsize = sizeof(SlotObject),
    .tp_dealloc = (destructor)PyObject_Del,
    .tp_repr = (reprfunc)Slot_repr,
    .tp_vectorcall_offset = offsetof(SlotObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Measure.__enter__ / Measure.__exit__: bound to a block, the block itself.",
    .tp_descr_get = Slot_descr_get,
};

/* Put the two slots in Measure's dict (after PyType_Ready). */
static int
measure_add_slots(void)
{
    PyObject *dict = Measure_Type.tp_dict;
    for (int exits = 0; exits < 2; exits++) {
        SlotObject *slot = PyObject_New(SlotObject, &Slot_Type);
        if (slot == NULL) {
            return -1;
        }
        slot->vectorcall = Slot_vectorcall;
        slot->exits = exits;
        int failed = PyDict_SetItem(dict, exits ? str_exit : str_enter, (PyObject *)slot);
        Py_DECREF(slot);
        if (failed < 0) {
            return -1;
        }
    }
    PyType_Modified(&Measure_Type);
    return 0;
}

static PyObject *
Measure_aenter(MeasureObject *self, PyObject *Py_UNUSED(ignored))
{
    return ready_make(measure_enter(self, 0));
}

static PyObject *
Measure_aexit(MeasureObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return ready_make(measure_exit(self, args, nargs));
}

static PyMethodDef Measure_methods[] = {
    {"__aenter__", (PyCFunction)Measure_aenter, METH_NOARGS, "Start timing the block."},
    {"__aexit__", (PyCFunction)(void (*)(void))Measure_aexit, METH_FASTCALL,
     "Record the block, as __exit__ does."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Measure_members[] = {
    {"message", T_OBJECT, offsetof(MeasureObject, message), 0,
     "A one-line note kept on the block's event when it ends normally (None: none)."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject Measure_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._engine._speedups.Measure",
    .tp_basicsize = sizeof(MeasureObject),
    .tp_dealloc = (destructor)Measure_dealloc,
    .tp_vectorcall_offset = offsetof(MeasureObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Measure(sink, name, fallback): times one `with` block.",
    .tp_traverse = (traverseproc)Measure_traverse,
    .tp_clear = (inquiry)Measure_clear,
    .tp_methods = Measure_methods,
    .tp_members = Measure_members,
    .tp_new = Measure_new,
};
