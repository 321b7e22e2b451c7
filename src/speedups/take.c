/* callmetrics._engine._speedups: CallBuffer.take, what a drain takes off the buffer.
 *
 * The oldest calls come off the front at once, as a list of keys and two array('d')
 * of starts and durations, optionally stopping before the first call of a function
 * beyond the first `groups` met.  Included by speedups.c right after buffer.c.
 */

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
