/* callmetrics._engine._speedups: Ready, an awaitable that is already done.
 *
 * What the C measure() block's __aenter__ and __aexit__ return: awaiting it yields
 * nothing and returns its value at once (`async with analytics.measure("x"):`).
 * Included by speedups.c before measure.c.
 */

/* An awaitable that is already done: what __aenter__ and __aexit__ return. */
typedef struct {
    PyObject_HEAD
    PyObject *value;
} ReadyObject;

static PyTypeObject Ready_Type;

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
    .tp_name = "callmetrics._engine._speedups.Ready",
    .tp_basicsize = sizeof(ReadyObject),
    .tp_dealloc = (destructor)Ready_dealloc,
    .tp_as_async = &Ready_as_async,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Ready_traverse,
    .tp_clear = (inquiry)Ready_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)Ready_iternext,
};
