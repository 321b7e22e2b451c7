/* callmetrics._engine._speedups: Stepping, the callable replacing a tracked coroutine or
 * generator function (its calls return a Steps proxy: steps.c), and the init of both.
 * Part of one translation unit: included by speedups.c (after steps.c), never compiled
 * on its own. */

/* ---------------------------------------------------------------- Stepping */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *func;       /* the original coroutine or generator function */
    SinkObject *sink;
    IdleObject *idle;     /* its function's */
    PyObject *observed;   /* the pure-Python stepping callable, used while observers exist */
    PyTypeObject *steps;  /* CoroSteps_Type or GenSteps_Type (static) */
    PyObject *dict;
    PyObject *weakreflist;
} SteppingObject;

static PyTypeObject Stepping_Type;

static PyObject *
Stepping_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    SteppingObject *self = (SteppingObject *)op;
    SinkObject *sink = self->sink;
    if (sink == NULL || self->func == NULL || self->observed == NULL || self->idle == NULL
        || !sink_ready(sink)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "callmetrics: tracking state was cleared");
        }
        return NULL;
    }
    if (sink_observed(sink)) {
        return PyObject_Vectorcall(self->observed, args, nargsf, kwnames);
    }
    PyObject *inner = PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    if (inner == NULL) {
        return NULL;
    }
    StepsObject *steps = PyObject_GC_New(StepsObject, self->steps);
    if (steps == NULL) {
        Py_DECREF(inner);
        return NULL;
    }
    steps->inner = inner;   /* the new reference made above */
    steps->sink = (SinkObject *)Py_NewRef(sink);
    steps->idle = (IdleObject *)Py_NewRef(self->idle);
    steps->start = 0.0;
    steps->active = 0.0;
    steps->state = STEPS_NEW;
    steps->running = 0;
    PyObject_GC_Track(steps);
    return (PyObject *)steps;
}

/* The vectorcall of a stepping callable that stopped tracking (pruned, or its
   instrumentation undone): it returns the original's own coroutine or generator, no
   proxy.  Swapping the pointer (Stepping_set_tracking) costs tracked calls nothing. */
static PyObject *
Stepping_passthrough(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *func = ((SteppingObject *)op)->func;
    if (func == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "callmetrics: tracking state was cleared");
        return NULL;
    }
    return PyObject_Vectorcall(func, args, nargsf, kwnames);
}

/* stepping(func, sink, idle, observed, generator): the C wrapper of a coroutine
   (generator false) or generator function.  It binds like a function. */
static PyObject *
speedups_stepping(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"func", "sink", "idle", "observed", "generator", NULL};
    PyObject *func, *sink, *idle, *observed;
    int generator;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!O!Op:stepping", kwlist, &func,
                                     &Sink_Type, &sink, &Idle_Type, &idle, &observed,
                                     &generator)) {
        return NULL;
    }
    if (!PyCallable_Check(func) || !PyCallable_Check(observed)) {
        PyErr_SetString(PyExc_TypeError, "func and observed must be callable");
        return NULL;
    }
    SteppingObject *self = (SteppingObject *)Stepping_Type.tp_alloc(&Stepping_Type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = Stepping_vectorcall;
    self->func = Py_NewRef(func);
    self->sink = (SinkObject *)Py_NewRef(sink);
    self->idle = (IdleObject *)Py_NewRef(idle);
    self->observed = Py_NewRef(observed);
    self->steps = generator ? &GenSteps_Type : &CoroSteps_Type;
    self->dict = NULL;
    self->weakreflist = NULL;
    return (PyObject *)self;
}

static int
Stepping_traverse(SteppingObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->func);
    Py_VISIT(self->sink);
    Py_VISIT(self->idle);
    Py_VISIT(self->observed);
    Py_VISIT(self->dict);
    return 0;
}

static int
Stepping_clear(SteppingObject *self)
{
    Py_CLEAR(self->func);
    Py_CLEAR(self->sink);
    Py_CLEAR(self->idle);
    Py_CLEAR(self->observed);
    Py_CLEAR(self->dict);
    return 0;
}

static void
Stepping_dealloc(SteppingObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    Stepping_clear(self);
    tp->tp_free((PyObject *)self);
}

static PyObject *
Stepping_repr(SteppingObject *self)
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
Stepping_get_func(SteppingObject *self, void *Py_UNUSED(closure))
{
    if (self->func == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(self->func);
}

/* Whether calls are tracked; False turns the callable into a pass-through in place
   (as Tracked's), so every reference to it keeps working. */
static PyObject *
Stepping_get_tracking(SteppingObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->vectorcall == Stepping_vectorcall);
}

static int
Stepping_set_tracking(SteppingObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_callmetrics_tracking cannot be deleted");
        return -1;
    }
    int on = PyObject_IsTrue(value);
    if (on < 0) {
        return -1;
    }
    self->vectorcall = on ? Stepping_vectorcall : Stepping_passthrough;
    return 0;
}

static PyMethodDef Stepping_methods[] = {
    {"__reduce__", (PyCFunction)Tracked_reduce, METH_NOARGS,
     "Pickle by reference (module and qualified name), as functions are."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Stepping_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {"_callmetrics_func", (getter)Stepping_get_func, NULL, "The wrapped function.", NULL},
    {"_callmetrics_tracking", (getter)Stepping_get_tracking, (setter)Stepping_set_tracking,
     "Whether calls are tracked (False: a pass-through returning the original's object).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Stepping_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._engine._speedups.Stepping",
    .tp_basicsize = sizeof(SteppingObject),
    .tp_dealloc = (destructor)Stepping_dealloc,
    .tp_vectorcall_offset = offsetof(SteppingObject, vectorcall),
    .tp_repr = (reprfunc)Stepping_repr,
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "A tracked coroutine or generator function: its calls return a Steps proxy.",
    .tp_traverse = (traverseproc)Stepping_traverse,
    .tp_clear = (inquiry)Stepping_clear,
    .tp_weaklistoffset = offsetof(SteppingObject, weakreflist),
    .tp_methods = Stepping_methods,
    .tp_getset = Stepping_getset,
    .tp_descr_get = Tracked_descr_get,
    .tp_dictoffset = offsetof(SteppingObject, dict),
};

static PyMethodDef steps_functions[] = {
    {"stepping", (PyCFunction)(void (*)(void))speedups_stepping, METH_VARARGS | METH_KEYWORDS,
     "stepping(func, sink, idle, observed, generator): the C wrapper of a coroutine or\n"
     "generator function, whose calls return a proxy timing each step."},
    {NULL, NULL, 0, NULL},
};

/* Ready the types, intern the names, add everything to the module. */
static int
steps_init(PyObject *module)
{
    PyTypeObject *types[] = {&Idle_Type, &CoroSteps_Type, &GenSteps_Type, &Stepping_Type};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyType_Ready(types[i]) < 0) {
            return -1;
        }
    }
    str_idle = PyUnicode_InternFromString("idle");
    str_throw = PyUnicode_InternFromString("throw");
    str_close = PyUnicode_InternFromString("close");
    if (str_idle == NULL || str_throw == NULL || str_close == NULL) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "Idle", (PyObject *)&Idle_Type) < 0
        || PyModule_AddObjectRef(module, "CoroSteps", (PyObject *)&CoroSteps_Type) < 0
        || PyModule_AddObjectRef(module, "GenSteps", (PyObject *)&GenSteps_Type) < 0
        || PyModule_AddObjectRef(module, "Stepping", (PyObject *)&Stepping_Type) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, steps_functions);
}
