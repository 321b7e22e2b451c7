/* callmetrics._engine._speedups: fold_group, one function's drained calls added to its
 * aggregates in one C call.
 * Part of one translation unit: included by speedups.c (so the hot path's helpers
 * inline across parts), never compiled on its own. */

/* ------------------------------------------------------------------- fold_group */

/* The slots read and written, by their offsets in FunctionStats and in its sketch's
   class (DurationSketch), found once by fold_setup from the classes' member
   descriptors: read and set in place as the interpreter's own slot access does, since
   the generic attribute calls (a few hundred instructions each) would cost about what
   the Python code costs. */
enum {
    FOLD_CALLS, FOLD_SUCCESSES, FOLD_HOT_CALLS, FOLD_TOTAL, FOLD_FAST, FOLD_SKETCH,
    FOLD_SLOWEST, FOLD_FASTEST, FOLD_STATS_SLOTS = FOLD_FASTEST + 1,
    FOLD_COUNTS = FOLD_STATS_SLOTS, FOLD_OFFSET, FOLD_COUNT, FOLD_MIN, FOLD_MAX,
    FOLD_NAMES
};
static const char *const fold_texts[FOLD_NAMES] = {
    "calls", "successes", "hot_calls", "total", "fast", "sketch", "slowest", "fastest",
    "_counts", "_offset", "_count", "_min", "_max"};
static Py_ssize_t fold_offsets[FOLD_NAMES];
static PyTypeObject *fold_stats_type;    /* strong references, set once by fold_setup */
static PyTypeObject *fold_sketch_type;

/* The offset of `type`'s writable object slot `name`; 0 when it is not one. */
static Py_ssize_t
fold_slot_offset(PyTypeObject *type, const char *name)
{
    PyObject *descr = PyObject_GetAttrString((PyObject *)type, name);
    if (descr == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_ssize_t offset = 0;
    if (Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type == T_OBJECT_EX && !(member->flags & READONLY)) {
            offset = member->offset;
        }
    }
    Py_DECREF(descr);
    return offset;
}

/* fold_setup(stats_type, sketch_type): find the slots fold_group uses; True when they
   all are plain object slots (fold_group then folds instances of exactly these two
   classes), False otherwise (fold_group always answers None). */
static PyObject *
speedups_fold_setup(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0]) || !PyType_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "fold_setup(stats_type, sketch_type) takes two classes");
        return NULL;
    }
    Py_ssize_t offsets[FOLD_NAMES];
    for (int i = 0; i < FOLD_NAMES; i++) {
        PyTypeObject *type = (PyTypeObject *)args[i < FOLD_STATS_SLOTS ? 0 : 1];
        offsets[i] = fold_slot_offset(type, fold_texts[i]);
        if (offsets[i] <= 0) {
            Py_RETURN_FALSE;
        }
    }
    memcpy(fold_offsets, offsets, sizeof(offsets));
    Py_XSETREF(fold_stats_type, (PyTypeObject *)Py_NewRef(args[0]));
    Py_XSETREF(fold_sketch_type, (PyTypeObject *)Py_NewRef(args[1]));
    Py_RETURN_TRUE;
}

/* The slot `name` of `obj` (borrowed; NULL when unset). */
static inline PyObject *
fold_get(PyObject *obj, int name)
{
    return *(PyObject **)((char *)obj + fold_offsets[name]);
}

/* Set the slot `name` of `obj` to `value`, stealing the reference. */
static inline void
fold_set(PyObject *obj, int name, PyObject *value)
{
    PyObject **slot = (PyObject **)((char *)obj + fold_offsets[name]);
    PyObject *old = *slot;
    *slot = value;
    Py_XDECREF(old);
}

/* The sketch's bucket key of a duration: the high 16 bits of it as a 32-bit float
   (sketch_keys.key_of). */
static inline Py_ssize_t
fold_key(double v)
{
    float f = (float)v;
    uint32_t bits;
    memcpy(&bits, &f, sizeof(bits));
    return (Py_ssize_t)(bits >> 16);
}

/* Whether an extreme (FunctionStats.slowest or .fastest: None or (start, duration,
   record)) gives way to `value`: `beyond` says value > its duration (slowest), else
   value < it (fastest).  Anything unexpected says yes: Python then looks itself. */
static inline int
fold_new_extreme(PyObject *extreme, double value, int beyond)
{
    if (!PyTuple_Check(extreme) || PyTuple_GET_SIZE(extreme) < 2
        || !PyFloat_CheckExact(PyTuple_GET_ITEM(extreme, 1))) {
        return 1;
    }
    double held = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(extreme, 1));
    return beyond ? value > held : value < held;
}

/* An int slot's value plus `delta`, a new reference; NULL (no error set) when not an
   exact int that fits, or on failure (an error set). */
static PyObject *
fold_plus(PyObject *now, Py_ssize_t delta)
{
    if (now == NULL || !PyLong_CheckExact(now)) {
        return NULL;
    }
    Py_ssize_t value = PyLong_AsSsize_t(now);
    if ((value == -1 && PyErr_Occurred()) || value > PY_SSIZE_T_MAX - delta) {
        PyErr_Clear();
        return NULL;
    }
    return PyLong_FromSsize_t(value + delta);
}

/* fold_group(stats, durations, successes, short_max): FunctionStats.add(durations,
   successes, short_max, medium_max) for its common case, where every call is short
   (at most short_max) and the sketch's counts already cover the calls' buckets with
   items wide enough: the same sums, counts and sketch, without Python code per
   function.  `durations` is a list of floats or an array('d') (a group of
   group_calls).  Returns None when it is not that case (nothing changed: the caller
   folds them in Python), False when folded and neither extreme of the function gives
   way, else (low, high) for the caller to set the extremes (Recorder._extremes). */
static PyObject *
speedups_fold_group(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    static const char what[] = "fold_group()";
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "fold_group(stats, durations, successes, short_max) takes 4 arguments");
        return NULL;
    }
    PyObject *stats = args[0];
    Py_ssize_t successes = PyLong_AsSsize_t(args[2]);
    if (successes == -1 && PyErr_Occurred()) {
        return NULL;
    }
    double short_max = PyFloat_AsDouble(args[3]);
    if (short_max == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (fold_stats_type == NULL || !Py_IS_TYPE(stats, fold_stats_type)) {
        Py_RETURN_NONE;  /* not set up, or a subclass: Python's way */
    }
    PyObject *sketch = fold_get(stats, FOLD_SKETCH);
    if (sketch == NULL || !Py_IS_TYPE(sketch, fold_sketch_type)) {
        Py_RETURN_NONE;
    }
    Py_buffer view, dense;
    dense.obj = NULL;
    const double *data;
    Py_ssize_t n = doubles_of(args[1], &view, &data, what);
    if (n < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    PyObject *calls = NULL, *good = NULL, *hot = NULL, *fast = NULL;
    PyObject *new_total = NULL, *new_count = NULL, *new_min = NULL, *new_max = NULL;
    /* Held while folding: setting a slot drops a reference to its old value. */
    Py_INCREF(stats);
    Py_INCREF(sketch);
    if (n == 0 || data == NULL) {
        /* Nothing, or a list (group_calls gives arrays, which cannot change while
           exported here): Python's way. */
        result = Py_NewRef(Py_None);
        goto done;
    }

    /* The calls' sum, lowest and highest, as summary() gives them. */
    Summary sum = summary_from(data[0]);
    for (Py_ssize_t i = 0; i < n; i++) {
        summary_add(&sum, data[i]);
    }
    double total = summary_total(&sum), lo = sum.lo, hi = sum.hi;
    Py_ssize_t first = fold_key(lo), last = fold_key(hi);
    if (!(hi <= short_max) || first == 0) {
        /* Some call beyond short (the categories need a sort), or bucket 0 (a coarse
           clock's zero-length calls): Python's way. */
        result = Py_NewRef(Py_None);
        goto done;
    }

    /* Everything read, checked and made first: nothing changes until all is. */
    PyObject *counts = fold_get(sketch, FOLD_COUNTS), *offset_obj = fold_get(sketch, FOLD_OFFSET);
    PyObject *count_obj = fold_get(sketch, FOLD_COUNT), *min_obj = fold_get(sketch, FOLD_MIN);
    PyObject *max_obj = fold_get(sketch, FOLD_MAX), *total_obj = fold_get(stats, FOLD_TOTAL);
    if (counts == NULL || offset_obj == NULL || count_obj == NULL || min_obj == NULL
        || max_obj == NULL || total_obj == NULL || !PyFloat_CheckExact(min_obj)
        || !PyFloat_CheckExact(max_obj) || !PyFloat_CheckExact(total_obj)
        || !PyLong_CheckExact(offset_obj) || !PyLong_CheckExact(count_obj)) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    Py_ssize_t offset = PyLong_AsSsize_t(offset_obj);
    long long held = PyLong_AsLongLong(count_obj);
    if ((offset == -1 || held == -1) && PyErr_Occurred()) {
        PyErr_Clear();  /* past 2**63: Python's way */
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (PyObject_GetBuffer(counts, &dense,
                           PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        goto done;
    }
    if (dense.format == NULL || dense.format[0] == '\0' || dense.format[1] != '\0'
        || strchr("BHILQ", dense.format[0]) == NULL) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    /* The largest count an item holds (sketch_keys.CAPACITY): the whole count must fit. */
    unsigned long long capacity = dense.itemsize == 1 ? 0xFFULL
                                  : dense.itemsize == 2 ? 0xFFFFULL
                                  : dense.itemsize == 4 ? 0xFFFFFFFFULL
                                  : (unsigned long long)LLONG_MAX;
    Py_ssize_t size = dense.len / dense.itemsize;
    if (held < 0 || (unsigned long long)held + (unsigned long long)n > capacity
        || first < offset || last >= offset + size) {
        result = Py_NewRef(Py_None);  /* the items widen or the counts grow: Python's way */
        goto done;
    }
    new_count = PyLong_FromLongLong(held + (long long)n);
    new_min = lo < PyFloat_AS_DOUBLE(min_obj) ? PyFloat_FromDouble(lo) : Py_NewRef(min_obj);
    new_max = hi > PyFloat_AS_DOUBLE(max_obj) ? PyFloat_FromDouble(hi) : Py_NewRef(max_obj);
    new_total = PyFloat_FromDouble(PyFloat_AS_DOUBLE(total_obj) + total);
    if (new_count == NULL || new_min == NULL || new_max == NULL || new_total == NULL) {
        goto done;
    }
    calls = fold_plus(fold_get(stats, FOLD_CALLS), n);
    good = calls == NULL ? NULL : fold_plus(fold_get(stats, FOLD_SUCCESSES), successes);
    hot = good == NULL ? NULL : fold_plus(fold_get(stats, FOLD_HOT_CALLS), n);
    fast = hot == NULL ? NULL : fold_plus(fold_get(stats, FOLD_FAST), n);
    if (fast == NULL) {
        if (!PyErr_Occurred()) {
            result = Py_NewRef(Py_None);  /* a count past Py_ssize_t: Python's way */
        }
        goto done;
    }

    /* Count each call in its bucket (all between first and last: covered). */
    switch (dense.itemsize) {
#define FOLD_COUNT_INTO(T)                                                   \
    do {                                                                      \
        T *d = (T *)dense.buf;                                                \
        for (Py_ssize_t i = 0; i < n; i++) {                                  \
            d[fold_key(data[i]) - offset] += 1;                               \
        }                                                                     \
    } while (0)
    case 1: FOLD_COUNT_INTO(uint8_t); break;
    case 2: FOLD_COUNT_INTO(uint16_t); break;
    case 4: FOLD_COUNT_INTO(uint32_t); break;
    default: FOLD_COUNT_INTO(uint64_t); break;
#undef FOLD_COUNT_INTO
    }
    /* Each set steals the new value; the old ones are ints and floats. */
    fold_set(sketch, FOLD_COUNT, new_count);
    fold_set(sketch, FOLD_MIN, new_min);
    fold_set(sketch, FOLD_MAX, new_max);
    fold_set(stats, FOLD_CALLS, calls);
    fold_set(stats, FOLD_SUCCESSES, good);
    fold_set(stats, FOLD_HOT_CALLS, hot);
    fold_set(stats, FOLD_TOTAL, new_total);
    fold_set(stats, FOLD_FAST, fast);
    new_count = new_min = new_max = calls = good = hot = new_total = fast = NULL;
    PyObject *slowest = fold_get(stats, FOLD_SLOWEST), *fastest = fold_get(stats, FOLD_FASTEST);
    if (slowest == NULL || fastest == NULL || fold_new_extreme(slowest, hi, 1)
        || fold_new_extreme(fastest, lo, 0)) {
        result = Py_BuildValue("(dd)", lo, hi);
    }
    else {
        result = Py_NewRef(Py_False);
    }
done:
    if (dense.obj != NULL) {
        PyBuffer_Release(&dense);
    }
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    Py_XDECREF(calls);
    Py_XDECREF(good);
    Py_XDECREF(hot);
    Py_XDECREF(fast);
    Py_XDECREF(new_total);
    Py_XDECREF(new_count);
    Py_XDECREF(new_min);
    Py_XDECREF(new_max);
    Py_DECREF(sketch);
    Py_DECREF(stats);
    return result;
}
