/* callmetrics._engine._speedups: the CallBuffer.
 * Part of one translation unit: included by speedups.c (so the hot path's helpers
 * inline across parts), never compiled on its own. */

/* -------------------------------------------------------------- CallBuffer */

/* The instance's call buffer when the accelerator is built: the calls not yet
   drained, oldest first, as three parallel C arrays (no Python object per call).
   It speaks the flat protocol of the list it replaces (callmetrics._recorder):
   len() counts 3 items per call and extend((key, start, duration, ...)) appends
   whole calls; take(n) hands the oldest n // 3 calls to a drain as a list of keys
   and two array('d') of starts and durations, so no float object is ever made
   for a call.  Keys are owned references.

   Live calls are [head, tail).  Appends go to the tail and never run Python code
   (PyMem_Realloc runs none), so under the GIL no other thread sees half a call;
   takes advance the head. */
typedef struct {
    PyObject_HEAD
    PyObject **keys;
    double *starts;
    double *durations;
    Py_ssize_t head;
    Py_ssize_t tail;
    Py_ssize_t capacity;
} BufferObject;

static PyTypeObject Buffer_Type;

#define BUFFER_FIRST_CAPACITY 64

/* Make room for one more call at the tail: slide the live calls to the front when
   that frees at least half the arrays, else grow them.  Runs no Python code. */
static int
buffer_make_room(BufferObject *b)
{
    Py_ssize_t live = b->tail - b->head;
    if (b->head > 0 && live <= b->capacity / 2) {
        memmove(b->keys, b->keys + b->head, (size_t)live * sizeof(PyObject *));
        memmove(b->starts, b->starts + b->head, (size_t)live * sizeof(double));
        memmove(b->durations, b->durations + b->head, (size_t)live * sizeof(double));
        b->head = 0;
        b->tail = live;
        return 0;
    }
    Py_ssize_t capacity = b->capacity ? b->capacity * 2 : BUFFER_FIRST_CAPACITY;
    if (capacity > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(double) / 3) {
        PyErr_NoMemory();
        return -1;
    }
    /* Each array is replaced only once its new copy exists: a failure leaves the
       buffer as it was (the arrays already grown are merely larger). */
    PyObject **keys = PyMem_Realloc(b->keys, (size_t)capacity * sizeof(PyObject *));
    if (keys == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->keys = keys;
    double *starts = PyMem_Realloc(b->starts, (size_t)capacity * sizeof(double));
    if (starts == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->starts = starts;
    double *durations = PyMem_Realloc(b->durations, (size_t)capacity * sizeof(double));
    if (durations == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->durations = durations;
    b->capacity = capacity;
    return 0;
}

/* Append one call (a new reference to key is taken); -1 with MemoryError set. */
static inline int
buffer_push(BufferObject *b, PyObject *key, double start, double duration)
{
    if (b->tail == b->capacity && buffer_make_room(b) < 0) {
        return -1;
    }
    Py_ssize_t at = b->tail;
    b->keys[at] = Py_NewRef(key);
    b->starts[at] = start;
    b->durations[at] = duration;
    b->tail = at + 1;
    return 0;
}

static inline Py_ssize_t
buffer_items(BufferObject *b)
{
    return 3 * (b->tail - b->head);
}

static PyObject *
Buffer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "CallBuffer() takes no arguments");
        return NULL;
    }
    BufferObject *self = (BufferObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->keys = NULL;
    self->starts = NULL;
    self->durations = NULL;
    self->head = self->tail = self->capacity = 0;
    return (PyObject *)self;
}

static int
Buffer_traverse(BufferObject *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = self->head; i < self->tail; i++) {
        Py_VISIT(self->keys[i]);
    }
    return 0;
}

/* Drop every call.  The keys are released only once the buffer is empty, so the
   deallocations they trigger (which may run Python code) see a consistent buffer. */
static int
Buffer_clear(BufferObject *self)
{
    PyObject **keys = self->keys;
    Py_ssize_t head = self->head, tail = self->tail;
    self->keys = NULL;
    self->head = self->tail = self->capacity = 0;
    PyMem_Free(self->starts);
    PyMem_Free(self->durations);
    self->starts = NULL;
    self->durations = NULL;
    for (Py_ssize_t i = head; i < tail; i++) {
        Py_DECREF(keys[i]);
    }
    PyMem_Free(keys);
    return 0;
}

static void
Buffer_dealloc(BufferObject *self)
{
    PyObject_GC_UnTrack(self);
    Buffer_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
Buffer_length(BufferObject *self)
{
    return buffer_items(self);
}

/* extend(items): append whole calls given flat, [key, start, duration, ...] (a tuple
   or a list).  Every start and duration is converted before any call is appended,
   so a bad item leaves the buffer unchanged and the calls arrive together. */
static PyObject *
Buffer_extend(BufferObject *self, PyObject *items)
{
    if (!PyTuple_CheckExact(items) && !PyList_CheckExact(items)) {
        PyErr_SetString(PyExc_TypeError, "CallBuffer.extend() takes a tuple or a list");
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    if (n % 3 != 0) {
        PyErr_SetString(PyExc_ValueError,
                        "CallBuffer.extend() takes whole calls: key, start, duration");
        return NULL;
    }
    if (n == 3) {   /* one call: the Python hot paths */
        PyObject **item = PySequence_Fast_ITEMS(items);
        double start = PyFloat_AsDouble(item[1]);
        if (start == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        double duration = PyFloat_AsDouble(item[2]);
        if (duration == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        /* A list may have changed while __float__ ran: take the key only now. */
        if (PySequence_Fast_GET_SIZE(items) != 3) {
            PyErr_SetString(PyExc_RuntimeError, "the calls changed while being appended");
            return NULL;
        }
        if (buffer_push(self, PySequence_Fast_ITEMS(items)[0], start, duration) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    /* Several calls: hold the keys and convert the times first, then append all. */
    PyObject *held = PySequence_Tuple(items);
    if (held == NULL) {
        return NULL;
    }
    Py_ssize_t calls = n / 3;
    double *times = PyMem_Malloc((size_t)(calls ? calls : 1) * 2 * sizeof(double));
    if (times == NULL) {
        Py_DECREF(held);
        return PyErr_NoMemory();
    }
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < calls; i++) {
        for (int j = 0; j < 2; j++) {
            double v = PyFloat_AsDouble(PyTuple_GET_ITEM(held, 3 * i + 1 + j));
            if (v == -1.0 && PyErr_Occurred()) {
                goto done;
            }
            times[2 * i + j] = v;
        }
    }
    for (Py_ssize_t i = 0; i < calls; i++) {
        if (buffer_push(self, PyTuple_GET_ITEM(held, 3 * i), times[2 * i],
                        times[2 * i + 1]) < 0) {
            goto done;   /* MemoryError: the calls before it stay appended */
        }
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(times);
    Py_DECREF(held);
    return result;
}

/* take(): in take.c, included right after this file. */
static PyObject *Buffer_take(BufferObject *self, PyObject *const *args, Py_ssize_t nargs);

static PyObject *
Buffer_clear_method(BufferObject *self, PyObject *Py_UNUSED(ignored))
{
    Buffer_clear(self);
    Py_RETURN_NONE;
}

static PySequenceMethods Buffer_as_sequence = {
    .sq_length = (lenfunc)Buffer_length,
};

static PyMethodDef Buffer_methods[] = {
    {"extend", (PyCFunction)Buffer_extend, METH_O,
     "extend(items): append whole calls, given flat as key, start, duration, ..."},
    {"take", (PyCFunction)(void (*)(void))Buffer_take, METH_FASTCALL,
     "take(n, groups=0, plain=None): remove the oldest n // 3 calls (0: all), of at most\n"
     "`groups` functions (0: any); return (keys, starts, durations)."},
    {"clear", (PyCFunction)Buffer_clear_method, METH_NOARGS, "Drop every call."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Buffer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._engine._speedups.CallBuffer",
    .tp_basicsize = sizeof(BufferObject),
    .tp_dealloc = (destructor)Buffer_dealloc,
    .tp_as_sequence = &Buffer_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "CallBuffer(): an instance's buffered calls, as C arrays.",
    .tp_traverse = (traverseproc)Buffer_traverse,
    .tp_clear = (inquiry)Buffer_clear,
    .tp_methods = Buffer_methods,
    .tp_new = Buffer_new,
};
