/* callmetrics._speedups: the MeasureFactory.
 * Part of one translation unit: included by speedups.c (so the hot path's helpers
 * inline across parts), never compiled on its own. */

/* ---------------------------------------------------------- MeasureFactory */

/* factory(name) -> Measure.  Names resolved before (with the default event type)
   are found with one dict lookup; everything else goes to the pure-Python measure,
   which validates, resolves, and may add the name to the dict. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *sites;      /* dict: name -> Sink; only grows, never rebinds a name */
    PyObject *fallback;   /* the pure-Python measure(name, *, event_type=...) */
    MeasureObject *spare; /* the last block made, made again once only this holds it */
} FactoryObject;

static PyTypeObject Factory_Type;

/* A block of `sink`: the spare block again when nobody else holds it (the common
   `with analytics.measure("x"):` has let go of it at the end of its block), which
   saves an allocation and a garbage-collector registration per block.  Reused, it is
   reset to what measure_make makes; the references it held are released last, once
   the caller's reference is taken, so code they run (a note's __del__ calling
   measure() again) finds the spare in use and gets a new block. */
static PyObject *
factory_block(FactoryObject *self, SinkObject *sink, PyObject *name)
{
    MeasureObject *block = self->spare;
    if (block == NULL || Py_REFCNT(block) != 1) {
        block = measure_make(sink, name, self->fallback);
        if (block != NULL) {
            Py_XSETREF(self->spare, (MeasureObject *)Py_NewRef(block));
        }
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

static PyObject *
Factory_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    FactoryObject *self = (FactoryObject *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (self->sites == NULL || self->fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "callmetrics: tracking state was cleared");
        return NULL;
    }
    if (nargs == 1 && kwnames == NULL && PyUnicode_CheckExact(args[0])) {
        MeasureObject *spare = self->spare;
        if (spare != NULL && spare->name == args[0] && Py_REFCNT(spare) == 1
            && spare->sink != NULL && spare->delegate == NULL && spare->message == NULL) {
            /* The same name object as the idle spare's (which holds it, so it is not
               a new object at a freed address): the same sink, since `sites` only
               grows and never rebinds a name.  No lookup, nothing to swap. */
            spare->start = 0.0;
            return Py_NewRef(spare);
        }
        PyObject *sink = PyDict_GetItemWithError(self->sites, args[0]);   /* borrowed */
        if (sink != NULL && Py_IS_TYPE(sink, &Sink_Type)) {
            return factory_block(self, (SinkObject *)sink, args[0]);
        }
        if (sink == NULL && PyErr_Occurred()) {
            return NULL;
        }
    }
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static PyObject *
Factory_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"sites", "fallback", NULL};
    PyObject *sites, *fallback;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O:MeasureFactory", kwlist,
                                     &PyDict_Type, &sites, &fallback)) {
        return NULL;
    }
    FactoryObject *self = (FactoryObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = Factory_vectorcall;
    self->sites = Py_NewRef(sites);
    self->fallback = Py_NewRef(fallback);
    self->spare = NULL;
    return (PyObject *)self;
}

static int
Factory_traverse(FactoryObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->sites);
    Py_VISIT(self->fallback);
    Py_VISIT(self->spare);
    return 0;
}

static int
Factory_clear(FactoryObject *self)
{
    Py_CLEAR(self->sites);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->spare);
    return 0;
}

static void
Factory_dealloc(FactoryObject *self)
{
    PyObject_GC_UnTrack(self);
    Factory_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject Factory_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._speedups.MeasureFactory",
    .tp_basicsize = sizeof(FactoryObject),
    .tp_dealloc = (destructor)Factory_dealloc,
    .tp_vectorcall_offset = offsetof(FactoryObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "MeasureFactory(sites, fallback): analytics.measure in C.",
    .tp_traverse = (traverseproc)Factory_traverse,
    .tp_clear = (inquiry)Factory_clear,
    .tp_new = Factory_new,
};
