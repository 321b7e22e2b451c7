/* callmetrics._engine._speedups: the Monitor type of zero-code tracking (3.12+): its
 * methods (attach, detach, sink, sweep, depth), the type and the module's init.
 * Part of one translation unit: included by speedups.c right after monitor.c (the
 * callbacks), monpending.c and monsteps.c (their generators' steps), never compiled on
 * its own.
 */

#if PY_VERSION_HEX >= 0x030C0000

static PyObject *
Monitor_attach(MonitorObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyCode_Check(args[0]) || !PyObject_TypeCheck(args[1], &Sink_Type)) {
        PyErr_SetString(PyExc_TypeError, "attach(code, sink) takes a code object and a Sink");
        return NULL;
    }
    void *extra = NULL;
    if (PyUnstable_Code_GetExtra(args[0], mon_extra, &extra) < 0) {
        return NULL;
    }
    if (extra != NULL) {
        Py_RETURN_FALSE;
    }
    if (PyUnstable_Code_SetExtra(args[0], mon_extra, Py_NewRef(args[1])) < 0) {
        Py_DECREF(args[1]);
        return NULL;
    }
    Py_RETURN_TRUE;
}

/* detach(code): calls of `code` are no longer recorded (those under way still are). */
static PyObject *
Monitor_detach(MonitorObject *Py_UNUSED(self), PyObject *code)
{
    if (!PyCode_Check(code)) {
        PyErr_SetString(PyExc_TypeError, "detach(code) takes a code object");
        return NULL;
    }
    /* The slot's free function drops the Sink reference it held. */
    if (PyUnstable_Code_SetExtra(code, mon_extra, NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Monitor_sink(MonitorObject *Py_UNUSED(self), PyObject *code)
{
    if (!PyCode_Check(code)) {
        PyErr_SetString(PyExc_TypeError, "sink(code) takes a code object");
        return NULL;
    }
    SinkObject *sink = mon_sink_of(code);
    if (sink == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(sink);
}

static PyObject *
Monitor_sweep(MonitorObject *self, PyObject *all)
{
    if (self->pending == NULL) {
        return PyLong_FromLong(0);
    }
    Py_ssize_t n = mon_sweep(self, PyObject_IsTrue(all) == 1);
    return n < 0 ? NULL : PyLong_FromSsize_t(n);
}

static PyObject *
Monitor_depth(MonitorObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    MonStack *st = mon_stack();
    return PyLong_FromSsize_t(st == NULL ? 0 : st->depth);
}

static PyMethodDef Monitor_methods[] = {
    {"py_start", (PyCFunction)(void (*)(void))Monitor_start, METH_FASTCALL,
     "PY_START callback."},
    {"py_return", (PyCFunction)(void (*)(void))Monitor_return, METH_FASTCALL,
     "PY_RETURN callback."},
    {"py_unwind", (PyCFunction)(void (*)(void))Monitor_unwind, METH_FASTCALL,
     "PY_UNWIND callback."},
    {"py_yield", (PyCFunction)(void (*)(void))Monitor_yield, METH_FASTCALL,
     "PY_YIELD callback."},
    {"py_resume", (PyCFunction)(void (*)(void))Monitor_resume, METH_FASTCALL,
     "PY_RESUME callback."},
    {"py_throw", (PyCFunction)(void (*)(void))Monitor_throw, METH_FASTCALL,
     "PY_THROW callback."},
    {"attach", (PyCFunction)(void (*)(void))Monitor_attach, METH_FASTCALL,
     "attach(code, sink) -> bool: record the calls of code into sink."},
    {"detach", (PyCFunction)Monitor_detach, METH_O,
     "detach(code): stop recording the calls of code."},
    {"sink", (PyCFunction)Monitor_sink, METH_O, "sink(code): where code's calls go, or None."},
    {"sweep", (PyCFunction)Monitor_sweep, METH_O,
     "sweep(all) -> int: record generator calls closed unseen (all: every pending one)."},
    {"depth", (PyCFunction)Monitor_depth, METH_NOARGS,
     "Tracked calls under way on this thread (tests)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Monitor_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._engine._speedups.Monitor",
    .tp_basicsize = sizeof(MonitorObject),
    .tp_dealloc = (destructor)Monitor_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Monitor(report, disable): sys.monitoring callbacks recording into Sinks.",
    .tp_traverse = (traverseproc)Monitor_traverse,
    .tp_clear = (inquiry)Monitor_clear,
    .tp_methods = Monitor_methods,
    .tp_new = Monitor_new,
};

/* Called by PyInit__speedups: the types and the code extra slot; adds Monitor. */
static int
monitor_init(PyObject *module)
{
    if (PyType_Ready(&Pending_Type) < 0 || PyType_Ready(&Monitor_Type) < 0) {
        return -1;
    }
    mon_extra = PyUnstable_Eval_RequestCodeExtraIndex(mon_free_sink);
    if (mon_extra < 0) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "Monitor", (PyObject *)&Monitor_Type);
}

#else

static int
monitor_init(PyObject *Py_UNUSED(module))
{
    return 0;   /* no sys.monitoring before 3.12: zero-code tracking wraps */
}

#endif
