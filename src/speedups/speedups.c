/*
 * callmetrics._engine._speedups: the optional C hot path (see callmetrics._engine.accel and
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
 *   Monitor  (3.12+) the sys.monitoring callbacks of zero-code tracking (monitor.c; the
 *            steps of its generators and coroutines: monpending.c, monsteps.c).
 *   Stepping, Steps, Idle  coroutine, generator and async generator functions: a proxy
 *            timing each step of the object a call returns (its active time; steps.c,
 *            asteps.c for async generators and their awaitables).
 *   Measure  the `with analytics.measure(name):` block.
 *   frames, Edge  the thread's stack of running tracked calls, and the caller edges
 *            calls are buffered under (where the time goes: callmetrics._engine.callers).
 *   MeasureHost  an Analytics' state for its measure() in C (a method made for the
 *            Analytics class by measure_method), which resolves names seen
 *            before with one dict lookup.
 *   drain helpers  summary, count_values and group_calls: a drained chunk's sums,
 *            sketch buckets and grouping by function, straight from its doubles.
 *   average_ranks  not the hot path: the ranks of `callmetrics diff`'s rank test
 *            (ranks.c; its Python twin is callmetrics._outputs.compare._python_ranks).
 *
 * Files: this one (the module) includes common.h and one file per part above
 * (buffer.c, take.c, frames.c, sink.c, tracked.c, idle.c, steps.c, asteps.c, stepping.c,
 * monstack.c, monitor.c, monpending.c, monsteps.c, monitor_type.c, ready.c, measure.c,
 * host.c, drain.c, edges.c, ranks.c), in that order, so that the whole extension is one
 * translation unit: the hot path's helpers (buffer_push, sink_success) inline into the
 * wrappers that call them.  setup.py compiles this file only.
 *
 * Times are time.perf_counter() readings: PyTime_PerfCounterRaw() on 3.13+, and
 * before that CLOCK_MONOTONIC (what perf_counter reads on Linux) converted exactly
 * as perf_counter converts it, so starts and ends from the C and the Python hot
 * paths mix.
 *
 * Thread safety: relies on the GIL.  Appending a call to the CallBuffer runs no
 * Python code, so a drain in another thread never sees half a call.
 * callmetrics._engine.accel does not load this module on a free-threaded build.
 */
#include "common.h"
#include "buffer.c"
#include "take.c"
#include "frames.c"
#include "sink.c"
#include "tracked.c"
#include "idle.c"
#include "steps.c"
#include "asteps.c"
#include "stepping.c"
#include "monstack.c"
#include "monitor.c"
#include "monpending.c"
#include "monsteps.c"
#include "monitor_type.c"
#include "ready.c"
#include "measure.c"
#include "host.c"
#include "drain.c"
#include "fold.c"
#include "edges.c"
#include "ranks.c"

/* ------------------------------------------------------------------ module */

static PyObject *
speedups_now(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(monotonic_seconds());
}

static PyMethodDef module_methods[] = {
    {"track", (PyCFunction)(void (*)(void))speedups_track, METH_VARARGS | METH_KEYWORDS,
     "track(func, sink, observed): the C wrapper of a sync callable."},
    {"summary", speedups_summary, METH_O,
     "summary(values): (sum, min, max) of a non-empty list of floats or array('d')."},
    {"fold_setup", (PyCFunction)(void (*)(void))speedups_fold_setup, METH_FASTCALL,
     "fold_setup(stats_type, sketch_type): find the slots fold_group sets (True: found)."},
    {"fold_group", (PyCFunction)(void (*)(void))speedups_fold_group, METH_FASTCALL,
     "fold_group(stats, durations, successes, short_max): FunctionStats.add's common case."},
    {"count_values", (PyCFunction)(void (*)(void))speedups_count_values, METH_FASTCALL,
     "count_values(values, dense, first): dense[key(v) - first] += 1 for every value."},
    {"group_calls", (PyCFunction)(void (*)(void))speedups_group_calls, METH_FASTCALL,
     "group_calls(keys, durations, plain, failed): a chunk's calls grouped by function."},
    {"measure_method", speedups_measure_method, METH_O,
     "measure_method(cls): measure() for instances of cls, each keeping its MeasureHost."},
    {"frames_push", speedups_frames_push, METH_O,
     "frames_push(stats) -> at: a tracked call starts on this thread (-1: too deep)."},
    {"frames_pop", (PyCFunction)(void (*)(void))speedups_frames_pop, METH_FASTCALL,
     "frames_pop(stats, at): it ends; its caller: None, the caller, or (caller,) if nested."},
    {"frames_depth", speedups_frames_depth, METH_NOARGS,
     "How many tracked calls run on this thread."},
    {"fold_edges", (PyCFunction)(void (*)(void))speedups_fold_edges, METH_FASTCALL,
     "fold_edges(keys, durations, plain): count edges' calls; put their functions back."},
    {"average_ranks", speedups_average_ranks, METH_O,
     "average_ranks(values): (ranks, tie term) of a list of floats; None: rank in Python."},
    {"now", speedups_now, METH_NOARGS,
     "The clock the C hot path reads (same scale as time.perf_counter())."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "callmetrics._engine._speedups",
    .m_doc = "The optional C hot path of callmetrics (see callmetrics._engine.accel).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (frames_init() < 0) {
        return NULL;
    }
    PyTypeObject *types[] = {&Buffer_Type, &Sink_Type, &Tracked_Type, &Measure_Type,
                             &Ready_Type, &Host_Type, &Slot_Type, &Edge_Type};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyType_Ready(types[i]) < 0) {
            return NULL;
        }
    }
    str_enter = PyUnicode_InternFromString("__enter__");
    str_exit = PyUnicode_InternFromString("__exit__");
    str_enter_suspending = PyUnicode_InternFromString("_enter_suspending");
    str_qualname = PyUnicode_InternFromString("__qualname__");
    str_stats = PyUnicode_InternFromString("stats");
    str_edge = PyUnicode_InternFromString("edge");
    str_event_type = PyUnicode_InternFromString("event_type");
    str_block = PyUnicode_InternFromString("block");
    str_measure_host = PyUnicode_InternFromString("_measure_host");
    if (!str_enter || !str_exit || !str_enter_suspending || !str_qualname || !str_stats
        || !str_edge || !str_event_type || !str_block || !str_measure_host || measure_add_slots() < 0) {
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
        || PyModule_AddObjectRef(module, "MeasureHost", (PyObject *)&Host_Type) < 0
        || PyModule_AddObjectRef(module, "Edge", (PyObject *)&Edge_Type) < 0
        || steps_init(module) < 0 || monitor_init(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
