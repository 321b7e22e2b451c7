/* callmetrics._engine._speedups: the types of the coroutine, generator and async
 * generator proxies (their code is steps.c and asteps.c), Stepping, the callable
 * replacing a tracked coroutine, generator or async generator function (its calls
 * return one of those proxies), and the init of them all.
 * Part of one translation unit: included by speedups.c (after steps.c and asteps.c),
 * never compiled on its own. */

/* ------------------------------------------------------- the Steps types */

static PyMethodDef Steps_methods[] = {
    {"send", (PyCFunction)Steps_send, METH_O, "send(value): resume, one timed step."},
    {"throw", (PyCFunction)Steps_throw, METH_VARARGS,
     "throw(exc): raise exc where it is suspended, one timed step."},
    {"close", (PyCFunction)Steps_close, METH_NOARGS, "close(): end it (a success if started)."},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods CoroSteps_async = {
    .am_await = Steps_await,
    .am_send = Steps_am_send,
};

static PyAsyncMethods GenSteps_async = {
    .am_send = Steps_am_send,
};

static PyTypeObject CoroSteps_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._engine._speedups.CoroSteps",
    .tp_basicsize = sizeof(StepsObject),
    .tp_dealloc = Steps_dealloc,
    .tp_as_async = &CoroSteps_async,
    .tp_repr = (reprfunc)Steps_repr,
    .tp_getattro = Steps_getattro,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A tracked coroutine: each step timed (see callmetrics._engine.steps).",
    .tp_traverse = (traverseproc)Steps_traverse,
    .tp_clear = (inquiry)Steps_clear,
    .tp_iternext = Steps_iternext,   /* what `await` drives (__await__ returns the proxy) */
    .tp_methods = Steps_methods,
    .tp_finalize = Steps_finalize,
};

static PyTypeObject GenSteps_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._engine._speedups.GenSteps",
    .tp_basicsize = sizeof(StepsObject),
    .tp_dealloc = Steps_dealloc,
    .tp_as_async = &GenSteps_async,
    .tp_repr = (reprfunc)Steps_repr,
    .tp_getattro = Steps_getattro,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A tracked generator: each step timed (see callmetrics._engine.steps).",
    .tp_traverse = (traverseproc)Steps_traverse,
    .tp_clear = (inquiry)Steps_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = Steps_iternext,
    .tp_methods = Steps_methods,
    .tp_finalize = Steps_finalize,
};

/* ------------------------------------------------- the async-generator types */

static PyMethodDef AsyncStep_methods[] = {
    {"send", (PyCFunction)AsyncStep_send, METH_O, "send(value): resume, one timed step."},
    {"throw", (PyCFunction)AsyncStep_throw, METH_VARARGS,
     "throw(exc): raise exc where the generator is suspended, one timed step."},
    {"close", (PyCFunction)AsyncStep_close, METH_NOARGS, "close(): close the awaitable."},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef AGen_methods[] = {
    {"asend", (PyCFunction)AGen_asend, METH_O, "asend(value): an awaitable resuming it."},
    {"athrow", (PyCFunction)AGen_athrow, METH_VARARGS,
     "athrow(exc): an awaitable raising exc where it is suspended."},
    {"aclose", (PyCFunction)AGen_aclose, METH_NOARGS,
     "aclose(): an awaitable ending it (a success if started)."},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods AsyncStep_async = {
    .am_await = Steps_await,
    .am_send = AsyncStep_am_send,
};

static PyAsyncMethods AGen_async = {
    .am_aiter = PyObject_SelfIter,
    .am_anext = AGen_anext,
};

static PyTypeObject AsyncStep_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._engine._speedups.AsyncStep",
    .tp_basicsize = sizeof(AStepObject),
    .tp_dealloc = AsyncStep_dealloc,
    .tp_as_async = &AsyncStep_async,
    .tp_repr = (reprfunc)AsyncStep_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An awaitable of a tracked async generator: each step timed.",
    .tp_traverse = (traverseproc)AsyncStep_traverse,
    .tp_clear = (inquiry)AsyncStep_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = AsyncStep_iternext,
    .tp_methods = AsyncStep_methods,
};

static PyTypeObject AsyncGenSteps_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._engine._speedups.AsyncGenSteps",
    .tp_basicsize = sizeof(StepsObject),
    .tp_dealloc = Steps_dealloc,
    .tp_as_async = &AGen_async,
    .tp_repr = (reprfunc)Steps_repr,
    .tp_getattro = Steps_getattro,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A tracked async generator: each step timed (see callmetrics._engine.steps).",
    .tp_traverse = (traverseproc)Steps_traverse,
    .tp_clear = (inquiry)Steps_clear,
    .tp_methods = AGen_methods,
    .tp_finalize = AGen_finalize,
};

/* ---------------------------------------------------------------- Stepping */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *func;       /* the original coroutine, generator or async generator function */
    SinkObject *sink;
    IdleObject *idle;     /* its function's */
    PyObject *observed;   /* the pure-Python stepping callable, used while observers exist */
    PyTypeObject *steps;  /* CoroSteps_Type, GenSteps_Type or AsyncGenSteps_Type (static) */
    PyObject *dict;
    PyObject *weakreflist;
} SteppingObject;
_Static_assert(offsetof(SteppingObject, vectorcall) == offsetof(WrapperHead, vectorcall)
               && offsetof(SteppingObject, func) == offsetof(WrapperHead, func),
               "SteppingObject must begin with WrapperHead's fields");

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
    steps->flying = 0;
    PyObject_GC_Track(steps);
    return (PyObject *)steps;
}

/* stepping(func, sink, idle, observed, kind): the C wrapper of a coroutine (kind
   "async"), generator ("gen") or async generator ("agen") function.  It binds like a
   function. */
static PyObject *
speedups_stepping(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"func", "sink", "idle", "observed", "kind", NULL};
    PyObject *func, *sink, *idle, *observed;
    const char *kind;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!O!Os:stepping", kwlist, &func,
                                     &Sink_Type, &sink, &Idle_Type, &idle, &observed,
                                     &kind)) {
        return NULL;
    }
    if (!PyCallable_Check(func) || !PyCallable_Check(observed)) {
        PyErr_SetString(PyExc_TypeError, "func and observed must be callable");
        return NULL;
    }
    PyTypeObject *steps_type = strcmp(kind, "async") == 0 ? &CoroSteps_Type
                               : strcmp(kind, "gen") == 0 ? &GenSteps_Type
                               : strcmp(kind, "agen") == 0 ? &AsyncGenSteps_Type : NULL;
    if (steps_type == NULL) {
        PyErr_Format(PyExc_ValueError, "kind must be 'async', 'gen' or 'agen', not '%s'",
                     kind);
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
    self->steps = steps_type;
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
    return wrapper_set_tracking((PyObject *)self, value, Stepping_vectorcall);
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
    .tp_doc = "A tracked coroutine, generator or async generator function: its calls\n"
              "return a Steps proxy.",
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
     "stepping(func, sink, idle, observed, kind): the C wrapper of a coroutine ('async'),\n"
     "generator ('gen') or async generator ('agen') function, whose calls return a proxy\n"
     "timing each step."},
    {NULL, NULL, 0, NULL},
};

/* Ready the async-generator types, intern their names (from steps_init). */
static int
asteps_init(PyObject *module)
{
    if (PyType_Ready(&AsyncStep_Type) < 0 || PyType_Ready(&AsyncGenSteps_Type) < 0) {
        return -1;
    }
    str_asend = PyUnicode_InternFromString("asend");
    str_athrow = PyUnicode_InternFromString("athrow");
    str_aclose = PyUnicode_InternFromString("aclose");
    str_anext = PyUnicode_InternFromString("__anext__");
    str_ag_frame = PyUnicode_InternFromString("ag_frame");
    str_ag_running = PyUnicode_InternFromString("ag_running");
    if (str_asend == NULL || str_athrow == NULL || str_aclose == NULL || str_anext == NULL
        || str_ag_frame == NULL || str_ag_running == NULL) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "AsyncStep", (PyObject *)&AsyncStep_Type) < 0
        || PyModule_AddObjectRef(module, "AsyncGenSteps", (PyObject *)&AsyncGenSteps_Type) < 0) {
        return -1;
    }
    return 0;
}

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
    if (asteps_init(module) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, steps_functions);
}
