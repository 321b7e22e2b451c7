/* callmetrics._engine._speedups: includes, interned names, the clock, compatibility helpers.
 * Part of one translation unit: included by speedups.c (so the hot path's helpers
 * inline across parts), never compiled on its own. */

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
static PyObject *str_enter_suspending;   /* "_enter_suspending": Measure's `async with` entry */
static PyObject *str_qualname;
static PyObject *str_stats;   /* "stats" */
static PyObject *str_edge;    /* "edge" */

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
