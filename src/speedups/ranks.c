/* callmetrics._engine._speedups: average ranks for diff's rank test (average_ranks).
 * Part of one translation unit: included by speedups.c, never compiled on its own.
 * Not on the hot path: `callmetrics diff` calls it once per function compared.
 * Its pure-Python twin is callmetrics._outputs.compare._python_ranks. */

/* ------------------------------------------------------------------- ranks */

/* A double's bits as an unsigned key that sorts as the doubles do (NaN aside): a
   positive double's sign bit is set, a negative one's bits are all flipped.  -0.0
   comes just before 0.0, which equals it: the two are one group of ties. */
static inline uint64_t
rank_key(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return (bits >> 63) ? ~bits : bits | ((uint64_t)1 << 63);
}

/* Sort `at` (the positions 0..n-1) by keys[at[i]], least significant byte first
   (a stable counting sort per byte; a byte every key shares is skipped).  `spare`
   holds n positions. */
static void
rank_sort(const uint64_t *keys, Py_ssize_t *at, Py_ssize_t *spare, Py_ssize_t n)
{
    for (int shift = 0; shift < 64; shift += 8) {
        Py_ssize_t count[257] = {0};
        for (Py_ssize_t i = 0; i < n; i++) {
            count[((keys[i] >> shift) & 0xFF) + 1]++;
        }
        if (count[((keys[0] >> shift) & 0xFF) + 1] == n) {
            continue;   /* one byte value for all: the order stands */
        }
        for (int b = 0; b < 256; b++) {
            count[b + 1] += count[b];
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t p = at[i];
            spare[count[(keys[p] >> shift) & 0xFF]++] = p;
        }
        memcpy(at, spare, (size_t)n * sizeof(Py_ssize_t));
    }
}

/* average_ranks(values): each value's rank among `values` (1-based, ties given the
   mean of their positions) as a list of floats in the values' order, and the tie
   term sum(t**3 - t) over the groups of t equal values, as a float.  Returns None
   (the caller ranks in Python) unless `values` is a list of floats, none NaN, whose
   tie term is below 2**63 (every group of ties under 2**21 values). */
static PyObject *
speedups_average_ranks(PyObject *Py_UNUSED(module), PyObject *values)
{
    if (!PyList_CheckExact(values)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyList_GET_SIZE(values);
    if (n == 0) {
        return Py_BuildValue("(Nd)", PyList_New(0), 0.0);
    }
    uint64_t *keys = PyMem_Malloc((size_t)n * sizeof(uint64_t));
    double *seen = PyMem_Malloc((size_t)n * sizeof(double));
    Py_ssize_t *at = PyMem_Malloc((size_t)n * sizeof(Py_ssize_t));
    Py_ssize_t *spare = PyMem_Malloc((size_t)n * sizeof(Py_ssize_t));
    PyObject *result = NULL;
    PyObject *ranks = NULL;
    if (keys == NULL || seen == NULL || at == NULL || spare == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(values, i);
        if (!PyFloat_CheckExact(item) || isnan(PyFloat_AS_DOUBLE(item))) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        seen[i] = PyFloat_AS_DOUBLE(item);
        keys[i] = rank_key(seen[i]);
        at[i] = i;
    }
    rank_sort(keys, at, spare, n);
    /* `spare` now holds each position's rank, times 2 (a mean of two positions). */
    int64_t ties = 0;
    for (Py_ssize_t low = 0; low < n;) {
        Py_ssize_t high = low;
        while (high + 1 < n && seen[at[high + 1]] == seen[at[low]]) {
            high++;
        }
        for (Py_ssize_t k = low; k <= high; k++) {
            spare[at[k]] = low + high + 2;
        }
        int64_t t = (int64_t)(high - low + 1);
        if (t >= ((int64_t)1 << 21) || ties > INT64_MAX - (t * t * t - t)) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        ties += t * t * t - t;
        low = high + 1;
    }
    ranks = PyList_New(n);
    if (ranks == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *rank = PyFloat_FromDouble((double)spare[i] / 2.0);
        if (rank == NULL) {
            goto done;
        }
        PyList_SET_ITEM(ranks, i, rank);   /* steals the reference */
    }
    result = Py_BuildValue("(Od)", ranks, (double)ties);
done:
    Py_XDECREF(ranks);
    PyMem_Free(keys);
    PyMem_Free(seen);
    PyMem_Free(at);
    PyMem_Free(spare);
    return result;
}
