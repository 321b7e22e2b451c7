/*
 * callmetrics._speedups: the optional C hot path (see callmetrics._accel and
 * docs/engine.md, the seam it plugs into).
 *
 *   CallBuffer  an instance's buffered calls (keys, starts, durations) in C arrays:
 *            what every hot path of the instance appends to, and what drains take.
 *   Sink     where a function's calls go: the instance's CallBuffer and the
 *            engine's Python callbacks for what is rare (a failure, a full buffer,
 *            success logging).
 *   Tracked  the sync wrapper: a vectorcall type that reads the perf_counter clock
 *            around PyObject_Vectorcall and stores the call in the CallBuffer,
 *            allocating nothing and calling no Python code on the common path.
 *   Measure  the `with analytics.measure(name):` block, made by a MeasureFactory
 *            that resolves names seen before with one dict lookup.
 *
 * Times are time.perf_counter() readings: PyTime_PerfCounterRaw() on 3.13+, and
 * before that CLOCK_MONOTONIC (what perf_counter reads on Linux) converted exactly
 * as perf_counter converts it, so starts and ends from the C and the Python hot
 * paths mix.
 *
 * Thread safety: relies on the GIL.  Appending a call to the CallBuffer runs no
 * Python code, so a drain in another thread never sees half a call.
 * callmetrics._accel does not load this module on a free-threaded build.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#include <time.h>

static PyObject *str_enter;   /* "__enter__" */
static PyObject *str_exit;    /* "__exit__" */
static PyObject *str_qualname;
static PyObject *str_stats;   /* "stats" */

static inline double
monotonic_seconds(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    (void)PyTime_PerfCounterRaw(&t);
    return PyTime_AsSecondsDouble(t);
#elif defined(__linux__)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
    return (double)ns / 1e9;   /* as _PyTime_AsSecondsDouble does */
#else
    return _PyTime_AsSecondsDouble(_PyTime_GetPerfCounter());
#endif
}

/* PyErr_GetRaisedException / PyErr_SetRaisedException (3.12+) on 3.11 too. */
static inline PyObject *
PyErr_GetRaisedException_compat(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

static inline void
PyErr_SetRaisedException_compat(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    if (exc == NULL) {
        return;
    }
    PyObject *type = Py_NewRef((PyObject *)Py_TYPE(exc));
    PyObject *tb = PyException_GetTraceback(exc);
    PyErr_Restore(type, exc, tb);
#endif
}

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

static PyObject *array_type;   /* array.array */

/* array('d') holding a copy of `n` doubles. */
static PyObject *
doubles_array(const double *values, Py_ssize_t n)
{
    PyObject *raw = PyBytes_FromStringAndSize((const char *)values,
                                              n * (Py_ssize_t)sizeof(double));
    if (raw == NULL) {
        return NULL;
    }
    PyObject *out = PyObject_CallFunction(array_type, "sO", "d", raw);
    Py_DECREF(raw);
    return out;
}

#define TAKE_MAX_GROUPS 64

/* How many of the oldest `calls` calls come before the first call of a (groups +
   1)-th distinct function.  A key of type `plain` is its own function; any other
   key (a failure's or a note's description) stands for the function held by its
   `stats` slot, read through the type's slot descriptor (C code only).  Returns -1
   with an exception set if such a key has no `stats`. */
static Py_ssize_t
calls_within_groups(BufferObject *self, Py_ssize_t calls, Py_ssize_t groups,
                    PyTypeObject *plain)
{
    PyObject *seen[TAKE_MAX_GROUPS];
    Py_ssize_t distinct = 0;
    for (Py_ssize_t i = 0; i < calls; i++) {
        PyObject *key = self->keys[self->head + i];
        if (Py_TYPE(key) != plain) {
            /* Borrowed as long as the key lives, which the buffer guarantees: the
               owner is only compared, never used after this function. */
            PyObject *owner = PyObject_GetAttr(key, str_stats);
            if (owner == NULL) {
                return -1;
            }
            Py_DECREF(owner);
            key = owner;
            if (i >= self->tail - self->head) {   /* only a misuse can shrink it meanwhile */
                return i;
            }
        }
        Py_ssize_t j = 0;
        while (j < distinct && seen[j] != key) {
            j++;
        }
        if (j == distinct) {
            if (distinct == groups) {
                return i;
            }
            seen[distinct++] = key;
        }
    }
    return calls;
}

/* take(n, groups=0, plain=None): remove the oldest n // 3 calls (0: all), stopping
   before the first call of a (groups + 1)-th distinct function (0: no such bound;
   at most 64; `plain` is the type of keys that are functions themselves, needed
   then), and return them as (keys, starts, durations): a list and two array('d'),
   oldest first. */
static PyObject *
Buffer_take(BufferObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError,
                        "CallBuffer.take(n, groups=0, plain=None) takes 1 to 3 arguments");
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[0]);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t groups = 0;
    if (nargs >= 2) {
        groups = PyLong_AsSsize_t(args[1]);
        if (groups == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (n < 0 || groups < 0 || groups > TAKE_MAX_GROUPS) {
        PyErr_SetString(PyExc_ValueError,
                        "CallBuffer.take() needs n >= 0 and 0 <= groups <= 64");
        return NULL;
    }
    PyTypeObject *plain = NULL;
    if (nargs == 3 && args[2] != Py_None) {
        if (!PyType_Check(args[2])) {
            PyErr_SetString(PyExc_TypeError, "CallBuffer.take(): plain must be a type");
            return NULL;
        }
        plain = (PyTypeObject *)args[2];
    }
    if (groups > 0 && plain == NULL) {
        PyErr_SetString(PyExc_TypeError, "CallBuffer.take(): groups needs plain");
        return NULL;
    }
    for (;;) {
        Py_ssize_t live = self->tail - self->head;
        Py_ssize_t calls = (n == 0 || n / 3 > live) ? live : n / 3;
        if (groups > 0) {
            calls = calls_within_groups(self, calls, groups, plain);
            if (calls < 0) {
                return NULL;
            }
        }
        /* Everything is allocated first: a failure leaves the buffer as it was.
           Allocations may run the garbage collector, hence Python code that appends
           (which may slide the live calls to the front: re-read head afterwards). */
        PyObject *keys = PyList_New(calls);
        PyObject *out = PyTuple_New(3);
        PyObject *starts = NULL, *durations = NULL;
        if (keys != NULL && out != NULL) {
            starts = doubles_array(self->starts + self->head, calls);
        }
        if (starts != NULL) {
            durations = doubles_array(self->durations + self->head, calls);
        }
        if (durations == NULL) {
            Py_XDECREF(keys);
            Py_XDECREF(out);
            Py_XDECREF(starts);
            return NULL;
        }
        if (self->tail - self->head < calls) {
            /* Taken meanwhile (only a misuse can do it): start again. */
            Py_DECREF(keys);
            Py_DECREF(out);
            Py_DECREF(starts);
            Py_DECREF(durations);
            continue;
        }
        /* No Python code runs from here on.  If appends ran meanwhile, they went
           after these calls, whose times were copied above. */
        Py_ssize_t head = self->head;
        for (Py_ssize_t i = 0; i < calls; i++) {
            PyList_SET_ITEM(keys, i, self->keys[head + i]);   /* moves the reference */
        }
        self->head = head + calls;
        if (self->head == self->tail) {
            self->head = self->tail = 0;
        }
        PyTuple_SET_ITEM(out, 0, keys);
        PyTuple_SET_ITEM(out, 1, starts);
        PyTuple_SET_ITEM(out, 2, durations);
        return out;
    }
}

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
    .tp_name = "callmetrics._speedups.CallBuffer",
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

/* -------------------------------------------------------------------- Sink */

typedef struct {
    PyObject_HEAD
    PyObject *buffer;      /* CallBuffer: the instance's buffered calls */
    PyObject *key;         /* what successful calls are recorded under (FunctionStats) */
    PyObject *observers;   /* list: non-empty means take the observed (Python) path */
    PyObject *cache;       /* dict holding the cached limit (see docs/engine.md) */
    PyObject *cache_key;   /* its key */
    PyObject *refresh;     /* () -> int: recompute the limit after a cache clear */
    PyObject *after;       /* (stats, duration, limit) -> None: drain soon, log a success */
    PyObject *failed;      /* (stats, start, exc) -> float: record, log a failed call */
    PyObject *noted;       /* (stats, start, message) -> float: record a noted success */
} SinkObject;

static PyTypeObject Sink_Type;

static PyObject *
Sink_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"buffer", "key", "observers", "cache", "cache_key", "refresh",
                             "after", "failed", "noted", NULL};
    PyObject *buffer, *key, *observers, *cache, *cache_key, *refresh, *after, *failed, *noted;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OO!O!OOOOO:Sink", kwlist,
                                     &Buffer_Type, &buffer, &key, &PyList_Type, &observers,
                                     &PyDict_Type, &cache, &cache_key, &refresh, &after,
                                     &failed, &noted)) {
        return NULL;
    }
    SinkObject *self = (SinkObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->buffer = Py_NewRef(buffer);
    self->key = Py_NewRef(key);
    self->observers = Py_NewRef(observers);
    self->cache = Py_NewRef(cache);
    self->cache_key = Py_NewRef(cache_key);
    self->refresh = Py_NewRef(refresh);
    self->after = Py_NewRef(after);
    self->failed = Py_NewRef(failed);
    self->noted = Py_NewRef(noted);
    return (PyObject *)self;
}

static int
Sink_traverse(SinkObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->buffer);
    Py_VISIT(self->key);
    Py_VISIT(self->observers);
    Py_VISIT(self->cache);
    Py_VISIT(self->cache_key);
    Py_VISIT(self->refresh);
    Py_VISIT(self->after);
    Py_VISIT(self->failed);
    Py_VISIT(self->noted);
    return 0;
}

static int
Sink_clear(SinkObject *self)
{
    Py_CLEAR(self->buffer);
    Py_CLEAR(self->key);
    Py_CLEAR(self->observers);
    Py_CLEAR(self->cache);
    Py_CLEAR(self->cache_key);
    Py_CLEAR(self->refresh);
    Py_CLEAR(self->after);
    Py_CLEAR(self->failed);
    Py_CLEAR(self->noted);
    return 0;
}

static void
Sink_dealloc(SinkObject *self)
{
    PyObject_GC_UnTrack(self);
    Sink_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static inline int
sink_ready(SinkObject *sink)
{
    if (sink->buffer == NULL || sink->failed == NULL || sink->noted == NULL) {   /* cleared */
        PyErr_SetString(PyExc_RuntimeError, "callmetrics: tracking state was cleared");
        return 0;
    }
    return 1;
}

static inline int
sink_observed(SinkObject *sink)
{
    return sink->observers != NULL && PyList_GET_SIZE(sink->observers) > 0;
}

/* Append one successful call; -1 with an exception set if that or a callback failed.
   The common case allocates nothing: three stores into the buffer's arrays, one
   dict lookup for the cached limit, one comparison. */
static int
sink_success(SinkObject *sink, double start, double end)
{
    BufferObject *buf = (BufferObject *)sink->buffer;
    double duration = end - start;
    if (buffer_push(buf, sink->key, start, duration) < 0) {
        return -1;
    }
    PyObject *limit;
    if (PyDict_CheckExact(sink->cache)) {
        limit = PyDict_GetItemWithError(sink->cache, sink->cache_key);   /* borrowed */
        if (limit == NULL && PyErr_Occurred()) {
            return -1;
        }
        if (limit != NULL) {
            Py_ssize_t bound = PyLong_AsSsize_t(limit);
            if (bound == -1 && PyErr_Occurred()) {
                return -1;
            }
            if (buffer_items(buf) < bound) {
                return 0;
            }
        }
        Py_XINCREF(limit);
    }
    else {   /* a dict subclass may refuse lookups (no level cache): ask it */
        limit = PyObject_GetItem(sink->cache, sink->cache_key);
        if (limit == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                return -1;
            }
            PyErr_Clear();
        }
        else {
            Py_ssize_t bound = PyLong_AsSsize_t(limit);
            if (bound == -1 && PyErr_Occurred()) {
                Py_DECREF(limit);
                return -1;
            }
            if (buffer_items(buf) < bound) {
                Py_DECREF(limit);
                return 0;
            }
        }
    }
    if (limit == NULL) {   /* logging changed a level and cleared its caches */
        limit = PyObject_CallNoArgs(sink->refresh);
        if (limit == NULL) {
            return -1;
        }
    }
    /* The buffer is full or successes are logged: the engine's Python takes over. */
    PyObject *t1 = PyFloat_FromDouble(duration);
    if (t1 == NULL) {
        Py_DECREF(limit);
        return -1;
    }
    PyObject *argv[3] = {sink->key, t1, limit};
    PyObject *r = PyObject_Vectorcall(sink->after, argv, 3, NULL);
    Py_DECREF(limit);
    Py_DECREF(t1);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* Record the failed call whose exception is set; leaves an exception set: the
   call's own, or (like an exception raised in an `except` block) one raised by
   the bookkeeping, with the call's as its context. */
static void
sink_failure(SinkObject *sink, double start)
{
    PyObject *exc = PyErr_GetRaisedException_compat();
    PyObject *t0 = PyFloat_FromDouble(start);
    PyObject *r = NULL;
    if (t0 != NULL && exc != NULL) {
        PyObject *argv[3] = {sink->key, t0, exc};
        r = PyObject_Vectorcall(sink->failed, argv, 3, NULL);
    }
    Py_XDECREF(t0);
    if (r != NULL) {
        Py_DECREF(r);
        PyErr_SetRaisedException_compat(exc);
        return;
    }
    PyObject *raised = PyErr_GetRaisedException_compat();
    if (raised == NULL) {
        PyErr_SetRaisedException_compat(exc);
        return;
    }
    if (exc != NULL) {
        PyException_SetContext(raised, exc);   /* steals exc */
    }
    PyErr_SetRaisedException_compat(raised);
}

static PyObject *
Sink_get_buffer(SinkObject *self, void *Py_UNUSED(closure))
{
    if (self->buffer == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(self->buffer);
}

/* sink.ok(start): record a successful call that started at `start` (a perf_counter
   reading) and ends now: the Python async wrapper's end, done as the C wrapper's. */
static PyObject *
Sink_ok(SinkObject *self, PyObject *start)
{
    double began = PyFloat_AsDouble(start);
    if (began == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    double end = monotonic_seconds();
    if (!sink_ready(self) || sink_success(self, began, end) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef Sink_methods[] = {
    {"ok", (PyCFunction)Sink_ok, METH_O,
     "ok(start): record a successful call that started at `start` and ends now."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Sink_getset[] = {
    {"buffer", (getter)Sink_get_buffer, NULL, "The CallBuffer calls are appended to.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Sink_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._speedups.Sink",
    .tp_basicsize = sizeof(SinkObject),
    .tp_dealloc = (destructor)Sink_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Sink(buffer, key, observers, cache, cache_key, refresh, after, failed, noted)",
    .tp_traverse = (traverseproc)Sink_traverse,
    .tp_clear = (inquiry)Sink_clear,
    .tp_getset = Sink_getset,
    .tp_methods = Sink_methods,
    .tp_new = Sink_new,
};

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
    double start = monotonic_seconds();
    PyObject *result = PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    if (result == NULL) {
        sink_failure(sink, start);
        return NULL;
    }
    if (sink_success(sink, start, monotonic_seconds()) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
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

static PyMethodDef Tracked_methods[] = {
    {"__reduce__", (PyCFunction)Tracked_reduce, METH_NOARGS,
     "Pickle by reference (module and qualified name), as functions are."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Tracked_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {"_callmetrics_sink", (getter)Tracked_get_sink, NULL, "Where calls are recorded.", NULL},
    {"_callmetrics_func", (getter)Tracked_get_func, NULL, "The wrapped callable.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Tracked_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._speedups.Tracked",
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


/* ----------------------------------------------------------------- Measure */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;   /* enter (no argument) or exit (three): see MeasureSlot */
    SinkObject *sink;
    PyObject *name;
    PyObject *fallback;   /* (name) -> pure-Python measure, used while observers exist */
    PyObject *delegate;   /* that pure-Python measure, once entered with observers */
    PyObject *message;    /* the block's note (NULL: none), as the Python Measure's */
    double start;
} MeasureObject;

static PyTypeObject Measure_Type;
static PyTypeObject Ready_Type;
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
    self->start = 0.0;
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
    return 0;
}

static void
Measure_dealloc(MeasureObject *self)
{
    PyObject_GC_UnTrack(self);
    Measure_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *
measure_enter(MeasureObject *self)
{
    if (self->sink != NULL && sink_observed(self->sink)) {
        /* Observers want to see this block: the pure-Python measure does it all. */
        PyObject *delegate = PyObject_CallOneArg(self->fallback, self->name);
        if (delegate == NULL) {
            return NULL;
        }
        Py_XSETREF(self->delegate, delegate);
        return PyObject_CallMethodNoArgs(delegate, str_enter);
    }
    Py_CLEAR(self->delegate);
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
    if (self->sink == NULL) {
        Py_RETURN_NONE;
    }
    if (!sink_ready(self->sink)) {
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
        PyObject *r = NULL;
        if (start != NULL) {
            PyObject *argv[3] = {sink->key, start, message};
            r = PyObject_Vectorcall(sink->noted, argv, 3, NULL);
            Py_DECREF(start);
        }
        Py_DECREF(message);
        Py_DECREF(sink);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
        Py_RETURN_NONE;
    }
    if (exc == Py_None) {
        if (sink_success(self->sink, self->start, end) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    /* Record the failure with the block's exception; let it propagate (return None). */
    PyObject *argv[3] = {self->sink->key, NULL, exc};
    argv[1] = PyFloat_FromDouble(self->start);
    if (argv[1] == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_Vectorcall(self->sink->failed, argv, 3, NULL);
    Py_DECREF(argv[1]);
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
   takes the block first, as contextlib.ExitStack calls it. */
static PyObject *
measure_call(PyObject *op, int exits, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    if (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0) {
        if (!exits && nargs == 0) {
            return measure_enter((MeasureObject *)op);
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
    .tp_name = "callmetrics._speedups.MeasureSlot",
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

/* An awaitable that is already done: what __aenter__ and __aexit__ return. */
typedef struct {
    PyObject_HEAD
    PyObject *value;
} ReadyObject;

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
    .tp_name = "callmetrics._speedups.Ready",
    .tp_basicsize = sizeof(ReadyObject),
    .tp_dealloc = (destructor)Ready_dealloc,
    .tp_as_async = &Ready_as_async,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Ready_traverse,
    .tp_clear = (inquiry)Ready_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)Ready_iternext,
};

static PyObject *
Measure_aenter(MeasureObject *self, PyObject *Py_UNUSED(ignored))
{
    return ready_make(measure_enter(self));
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
    .tp_name = "callmetrics._speedups.Measure",
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

/* ------------------------------------------------------------------ module */

static PyObject *
speedups_now(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(monotonic_seconds());
}


/* The doubles of `values`: a list of floats (the pure-Python buffer's) or a
   C-contiguous buffer of doubles (an array('d') from CallBuffer.take).  Returns
   the count, or -1 with TypeError set; *view is to be released with
   PyBuffer_Release when view->obj is set. */
static Py_ssize_t
doubles_of(PyObject *values, Py_buffer *view, const double **data, const char *what)
{
    view->obj = NULL;
    *data = NULL;
    if (PyList_CheckExact(values)) {
        return PyList_GET_SIZE(values);
    }
    if (PyObject_GetBuffer(values, view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    if (view->itemsize != sizeof(double) || view->format == NULL
        || strcmp(view->format, "d") != 0) {
        PyBuffer_Release(view);
        view->obj = NULL;
        PyErr_Format(PyExc_TypeError, "%s takes a list of floats or an array('d')", what);
        return -1;
    }
    *data = (const double *)view->buf;
    return view->len / (Py_ssize_t)sizeof(double);
}

/* Item i of what doubles_of() opened; -1.0 with TypeError set for a non-float. */
static inline double
double_at(PyObject *values, const double *data, Py_ssize_t i, const char *what)
{
    if (data != NULL) {
        return data[i];
    }
    PyObject *item = PyList_GET_ITEM(values, i);
    if (!PyFloat_CheckExact(item)) {
        PyErr_Format(PyExc_TypeError, "%s takes a list of floats or an array('d')", what);
        return -1.0;
    }
    return PyFloat_AS_DOUBLE(item);
}

/* summary(values): (sum, min, max) of a non-empty list of floats or array('d').
   The sum is compensated (Neumaier's variant of Kahan's summation, as sum() does
   for floats from Python 3.12 on), so it does not drift over millions of calls;
   min and max as min() and max() give them for values that are not NaN (the
   drain's durations never are). */
static PyObject *
speedups_summary(PyObject *Py_UNUSED(module), PyObject *values)
{
    static const char what[] = "summary()";
    Py_buffer view;
    const double *data;
    Py_ssize_t n = doubles_of(values, &view, &data, what);
    if (n < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "summary() needs at least one value");
        goto done;
    }
    double total = 0.0, compensation = 0.0, lo = 0.0, hi = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double v = double_at(values, data, i, what);
        if (v == -1.0 && PyErr_Occurred()) {
            goto done;
        }
        if (i == 0) {
            lo = hi = v;
        }
        else if (v < lo) {
            lo = v;
        }
        else if (v > hi) {
            hi = v;
        }
        double t = total + v;
        if (fabs(total) >= fabs(v)) {
            compensation += (total - t) + v;
        }
        else {
            compensation += (v - t) + total;
        }
        total = t;
    }
    if (compensation != 0.0 && isfinite(compensation)) {
        total += compensation;
    }
    result = Py_BuildValue("(ddd)", total, lo, hi);
done:
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    return result;
}

/* count_values(values, dense, first): dense[key(v) - first] += 1 for every value,
   key(v) being the sketch's bucket key (callmetrics._sketch_keys.bucket_keys): the
   high 16 bits of v rounded to a 32-bit float.  `values` a list of floats or an
   array('d') of non-negative durations, `dense` an array of unsigned items (B, H,
   I, L or Q) wide enough for its counts plus len(values): the sketch's own counts,
   `first` the key of its first item.  Every value is checked before any is counted,
   so an error (TypeError for a non-float, ValueError for a key outside `dense`)
   leaves `dense` as it was. */
#define COUNT_VALUES_INTO(T)                                            \
    do {                                                                \
        T *d = (T *)dense.buf;                                          \
        for (Py_ssize_t i = 0; i < n; i++) {                            \
            double v = double_at(args[0], data, i, what);               \
            if (v == -1.0 && PyErr_Occurred()) {                        \
                goto done;                                              \
            }                                                           \
            float f = (float)v;                                         \
            uint32_t bits;                                              \
            memcpy(&bits, &f, sizeof(bits));                            \
            Py_ssize_t at = (Py_ssize_t)(bits >> 16) - first;           \
            if (at < 0 || at >= size) {                                 \
                goto out_of_range;                                      \
            }                                                           \
            d[at] += 1;                                                 \
        }                                                               \
    } while (0)

static PyObject *
speedups_count_values(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    static const char what[] = "count_values()";
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "count_values(values, dense, first) takes 3 arguments");
        return NULL;
    }
    Py_ssize_t first = PyLong_AsSsize_t(args[2]);
    if (first == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view, dense;
    const double *data;
    Py_ssize_t n = doubles_of(args[0], &view, &data, what);
    if (n < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    if (PyObject_GetBuffer(args[1], &dense,
                           PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        if (view.obj != NULL) {
            PyBuffer_Release(&view);
        }
        return NULL;
    }
    if (dense.format == NULL || strlen(dense.format) != 1
        || strchr("BHILQ", dense.format[0]) == NULL) {
        PyErr_SetString(PyExc_TypeError, "dense must be an array of unsigned integers");
        goto done;
    }
    Py_ssize_t size = dense.len / dense.itemsize;
    for (Py_ssize_t i = 0; i < n; i++) {
        double v = double_at(args[0], data, i, what);
        if (v == -1.0 && PyErr_Occurred()) {
            goto done;
        }
        float f = (float)v;
        uint32_t bits;
        memcpy(&bits, &f, sizeof(bits));
        Py_ssize_t at = (Py_ssize_t)(bits >> 16) - first;
        if (at < 0 || at >= size) {
            goto out_of_range;
        }
    }
    switch (dense.itemsize) {
    case 1: COUNT_VALUES_INTO(uint8_t); break;
    case 2: COUNT_VALUES_INTO(uint16_t); break;
    case 4: COUNT_VALUES_INTO(uint32_t); break;
    case 8: COUNT_VALUES_INTO(uint64_t); break;
    default:
        PyErr_SetString(PyExc_TypeError, "dense items must be 1, 2, 4 or 8 bytes");
        goto done;
    }
    result = Py_NewRef(Py_None);
    goto done;
out_of_range:
    PyErr_SetString(PyExc_ValueError, "a value's key lies outside the dense array");
done:
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    PyBuffer_Release(&dense);
    return result;
}
#undef COUNT_VALUES_INTO

/* group_calls(keys, durations, plain, failed): a drained chunk's calls grouped by
   function, as a list of (function, durations, failures, low_at, high_at) in the
   order functions first appear.  A key of type `plain` is its own function; any
   other key (a failure's or a note's description) stands for its `stats`, and is a
   failure when of type `failed`.  `durations` (a list of floats or an array('d'),
   as long as `keys`) become one array('d') per function, in the chunk's order;
   low_at and high_at are the chunk indices of the function's first lowest and first
   highest duration.  One C pass and an open-addressing table on the functions'
   addresses (each held by the result list while the table holds it), so grouping
   costs a few nanoseconds a call, whatever the number of functions. */
typedef struct {
    PyObject *function;   /* borrowed from `functions` */
    Py_ssize_t count, failures, low_at, high_at, next;
    double low, high;
} Group;

static PyObject *
speedups_group_calls(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    static const char what[] = "group_calls()";
    if (nargs != 4 || !PyList_CheckExact(args[0]) || !PyType_Check(args[2])
        || !PyType_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "group_calls(keys, durations, plain, failed) takes a list, a list of "
                        "floats or an array('d'), and two types");
        return NULL;
    }
    PyObject *keys = args[0];
    PyTypeObject *plain = (PyTypeObject *)args[2], *failed = (PyTypeObject *)args[3];
    Py_buffer view;
    const double *data;
    Py_ssize_t n = doubles_of(args[1], &view, &data, what);
    if (n < 0) {
        return NULL;
    }
    PyObject *result = NULL, *functions = NULL;
    Py_ssize_t *table = NULL, *group_of = NULL;
    Group *groups = NULL;
    double *values = NULL, *ordered = NULL;
    if (n != PyList_GET_SIZE(keys)) {
        PyErr_SetString(PyExc_ValueError, "group_calls(): keys and durations differ in length");
        goto done;
    }
    size_t size = 8;   /* a power of two, at least twice the functions there can be */
    while (size < 2 * (size_t)n) {
        size <<= 1;
    }
    table = PyMem_Malloc(size * sizeof(Py_ssize_t));
    group_of = PyMem_Malloc(((size_t)n + 1) * sizeof(Py_ssize_t));
    groups = PyMem_Malloc(((size_t)n + 1) * sizeof(Group));
    values = PyMem_Malloc(((size_t)n + 1) * sizeof(double));
    ordered = PyMem_Malloc(((size_t)n + 1) * sizeof(double));
    if (table == NULL || group_of == NULL || groups == NULL || values == NULL
        || ordered == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* The durations first, before any Python code can run (reading a key's `stats`). */
    for (Py_ssize_t i = 0; i < n; i++) {
        values[i] = double_at(args[1], data, i, what);
        if (values[i] == -1.0 && PyErr_Occurred()) {
            goto done;
        }
    }
    functions = PyList_New(0);
    if (functions == NULL) {
        goto done;
    }
    memset(table, 0xff, size * sizeof(Py_ssize_t));   /* -1: an empty slot */
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i >= PyList_GET_SIZE(keys)) {   /* only a misuse can shrink it meanwhile */
            PyErr_SetString(PyExc_RuntimeError, "group_calls(): keys changed meanwhile");
            goto done;
        }
        double duration = values[i];
        PyObject *key = Py_NewRef(PyList_GET_ITEM(keys, i));
        PyObject *function = key;
        int failure = 0;
        if (Py_TYPE(key) != plain) {
            function = PyObject_GetAttr(key, str_stats);
            failure = Py_TYPE(key) == failed;
            Py_DECREF(key);
            if (function == NULL) {
                goto done;
            }
        }
        /* `function` is a strong reference here, and `functions` holds every function
           of the table: an address in the table is its function's alone. */
        size_t slot = ((size_t)(uintptr_t)function >> 4) * (size_t)0x9E3779B97F4A7C15ULL;
        slot = (slot ^ (slot >> 29)) & (size - 1);
        while (table[slot] >= 0 && groups[table[slot]].function != function) {
            slot = (slot + 1) & (size - 1);
        }
        Py_ssize_t g = table[slot];
        if (g < 0) {
            if (PyList_Append(functions, function) < 0) {
                Py_DECREF(function);
                goto done;
            }
            g = table[slot] = count++;
            groups[g] = (Group){function, 0, 0, i, i, 0, duration, duration};
        }
        Py_DECREF(function);
        Group *group = &groups[g];
        group->count++;
        group->failures += failure;
        if (duration < group->low) {
            group->low = duration;
            group->low_at = i;
        }
        if (duration > group->high) {
            group->high = duration;
            group->high_at = i;
        }
        group_of[i] = g;
    }
    Py_ssize_t at = 0;
    for (Py_ssize_t g = 0; g < count; g++) {
        groups[g].next = at;
        at += groups[g].count;
    }
    for (Py_ssize_t i = 0; i < n; i++) {   /* each function's durations, in chunk order */
        ordered[groups[group_of[i]].next++] = values[i];
    }
    result = PyList_New(count);
    if (result == NULL) {
        goto done;
    }
    for (Py_ssize_t g = 0; g < count; g++) {
        Group *group = &groups[g];
        PyObject *item = PyTuple_New(5);
        if (item == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, g, item);   /* filled below; a failure drops it whole */
        PyObject *parts[5] = {
            Py_NewRef(group->function),
            doubles_array(ordered + group->next - group->count, group->count),
            PyLong_FromSsize_t(group->failures),
            PyLong_FromSsize_t(group->low_at),
            PyLong_FromSsize_t(group->high_at),
        };
        int complete = 1;
        for (int k = 0; k < 5; k++) {
            if (parts[k] == NULL) {
                complete = 0;
                parts[k] = Py_NewRef(Py_None);
            }
            PyTuple_SET_ITEM(item, k, parts[k]);
        }
        if (!complete) {
            Py_CLEAR(result);
            goto done;
        }
    }
done:
    Py_XDECREF(functions);
    PyMem_Free(table);
    PyMem_Free(group_of);
    PyMem_Free(groups);
    PyMem_Free(values);
    PyMem_Free(ordered);
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    return result;
}

static PyMethodDef module_methods[] = {
    {"track", (PyCFunction)(void (*)(void))speedups_track, METH_VARARGS | METH_KEYWORDS,
     "track(func, sink, observed): the C wrapper of a sync callable."},
    {"summary", speedups_summary, METH_O,
     "summary(values): (sum, min, max) of a non-empty list of floats or array('d')."},
    {"count_values", (PyCFunction)(void (*)(void))speedups_count_values, METH_FASTCALL,
     "count_values(values, dense, first): dense[key(v) - first] += 1 for every value."},
    {"group_calls", (PyCFunction)(void (*)(void))speedups_group_calls, METH_FASTCALL,
     "group_calls(keys, durations, plain, failed): a chunk's calls grouped by function."},
    {"now", speedups_now, METH_NOARGS,
     "The clock the C hot path reads (same scale as time.perf_counter())."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "callmetrics._speedups",
    .m_doc = "The optional C hot path of callmetrics (see callmetrics._accel).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyTypeObject *types[] = {&Buffer_Type, &Sink_Type, &Tracked_Type, &Measure_Type,
                             &Ready_Type, &Factory_Type, &Slot_Type};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyType_Ready(types[i]) < 0) {
            return NULL;
        }
    }
    str_enter = PyUnicode_InternFromString("__enter__");
    str_exit = PyUnicode_InternFromString("__exit__");
    str_qualname = PyUnicode_InternFromString("__qualname__");
    str_stats = PyUnicode_InternFromString("stats");
    if (!str_enter || !str_exit || !str_qualname || !str_stats || measure_add_slots() < 0) {
        return NULL;
    }
    PyObject *array_module = PyImport_ImportModule("array");
    if (array_module == NULL) {
        return NULL;
    }
    array_type = PyObject_GetAttrString(array_module, "array");
    Py_DECREF(array_module);
    if (array_type == NULL) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "CallBuffer", (PyObject *)&Buffer_Type) < 0
        || PyModule_AddObjectRef(module, "Sink", (PyObject *)&Sink_Type) < 0
        || PyModule_AddObjectRef(module, "Tracked", (PyObject *)&Tracked_Type) < 0
        || PyModule_AddObjectRef(module, "Measure", (PyObject *)&Measure_Type) < 0
        || PyModule_AddObjectRef(module, "MeasureFactory", (PyObject *)&Factory_Type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
