/* callmetrics._engine._speedups: fold_edges, a drained chunk's caller edges counted.
 * Part of one translation unit: included by speedups.c after drain.c (it reads the
 * chunk's doubles with doubles_of), never compiled on its own. */

/* fold_edges(keys, durations, plain): count each Edge key's call and seconds and put
   its function in its place in `keys` (a list, changed in place); a key of type
   `plain` is a call from untracked code; any other key (a failure's or a note's
   description) counts in its `edge` attribute when that is an Edge. */
static PyObject *
speedups_fold_edges(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    static const char what[] = "fold_edges()";
    if (nargs != 3 || !PyList_CheckExact(args[0]) || !PyType_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "fold_edges(keys, durations, plain) takes a list, a list of floats "
                        "or an array('d'), and a type");
        return NULL;
    }
    PyObject *keys = args[0];
    PyTypeObject *plain = (PyTypeObject *)args[2];
    Py_buffer view;
    const double *data;
    Py_ssize_t n = doubles_of(args[1], &view, &data, what);
    if (n < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    if (n != PyList_GET_SIZE(keys)) {
        PyErr_SetString(PyExc_ValueError, "fold_edges(): keys and durations differ in length");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        if (Py_IS_TYPE(key, plain)) {
            continue;
        }
        double took = double_at(args[1], data, i, what);
        if (took == -1.0 && PyErr_Occurred()) {
            goto done;
        }
        if (Py_IS_TYPE(key, &Edge_Type)) {
            EdgeObject *edge = (EdgeObject *)key;
            edge->calls += 1;
            edge->time += took;
            PyList_SET_ITEM(keys, i, Py_NewRef(edge->stats));
            Py_DECREF(key);
            continue;
        }
        PyObject *edge = PyObject_GetAttr(key, str_edge);
        if (edge == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                goto done;
            }
            PyErr_Clear();
            continue;
        }
        if (Py_IS_TYPE(edge, &Edge_Type)) {
            ((EdgeObject *)edge)->calls += 1;
            ((EdgeObject *)edge)->time += took;
        }
        Py_DECREF(edge);
        if (n != PyList_GET_SIZE(keys)) {   /* only a misuse can change it meanwhile */
            PyErr_SetString(PyExc_RuntimeError, "fold_edges(): keys changed");
            goto done;
        }
    }
    result = Py_NewRef(Py_None);
done:
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    return result;
}
