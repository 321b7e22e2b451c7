/* callmetrics._engine._speedups: the drain's bulk helpers (summary, count_values, group_calls).
 * Part of one translation unit: included by speedups.c (so the hot path's helpers
 * inline across parts), never compiled on its own. */

/* ------------------------------------------------------------ drain helpers */

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

/* A one-pass summary of durations: their sum compensated (Neumaier's variant of
   Kahan's summation, as sum() does for floats from Python 3.12 on), lowest and
   highest.  summary() returns it; fold_group adds it to a function's aggregates. */
typedef struct {
    double total, compensation, lo, hi;
} Summary;

/* An empty summary whose extremes start at the first value to be added. */
static inline Summary
summary_from(double first)
{
    Summary s = {0.0, 0.0, first, first};
    return s;
}

static inline void
summary_add(Summary *s, double v)
{
    if (v < s->lo) {
        s->lo = v;
    }
    else if (v > s->hi) {
        s->hi = v;
    }
    double t = s->total + v;
    if (fabs(s->total) >= fabs(v)) {
        s->compensation += (s->total - t) + v;
    }
    else {
        s->compensation += (v - t) + s->total;
    }
    s->total = t;
}

/* The compensated sum. */
static inline double
summary_total(const Summary *s)
{
    if (s->compensation != 0.0 && isfinite(s->compensation)) {
        return s->total + s->compensation;
    }
    return s->total;
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
    Summary sum = summary_from(0.0);
    for (Py_ssize_t i = 0; i < n; i++) {
        double v = double_at(values, data, i, what);
        if (v == -1.0 && PyErr_Occurred()) {
            goto done;
        }
        if (i == 0) {
            sum = summary_from(v);
        }
        summary_add(&sum, v);
    }
    result = Py_BuildValue("(ddd)", summary_total(&sum), sum.lo, sum.hi);
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
