/* callmetrics._engine._speedups: the thread's stack of running tracked calls, and Edge.
 * Part of one translation unit: included by speedups.c (so the hot path's helpers
 * inline across parts), never compiled on its own.
 *
 * Where the time goes (see callmetrics._engine.callers): each tracked sync call and
 * measure() block pushes its function (its FunctionStats, a new reference) on its
 * thread's stack when it starts and truncates the stack back to where it pushed it
 * when it ends; the function then on top is its nearest tracked caller, and the call
 * is buffered under the Edge for that caller (a nested call when the function is
 * further down: an outer call of it is running).  The stack is a fixed array in
 * thread-local storage (GIL held: only its own thread touches it); a call past
 * FRAMES_MAX deep is not pushed and is recorded as called from untracked code.
 * Truncating, rather than popping one, keeps the stack whole whatever is left open
 * above (a block never exited, a generator's interleaving, a greenlet's switch): no
 * pointer into any call's C stack is kept.
 */

#define FRAMES_MAX 1024

static _Thread_local PyObject *frames[FRAMES_MAX];
static _Thread_local int frames_depth;

/* Push `stats`; return where (-1: too deep, not pushed). */
static inline int
frames_enter(PyObject *stats)
{
    int at = frames_depth;
    if (at >= FRAMES_MAX) {
        return -1;
    }
    frames[at] = Py_NewRef(stats);
    frames_depth = at + 1;
    return at;
}

/* Truncate the stack to `at` (a call pushed there ends).  The references are dropped
   once the stack is short again, so code their release may run sees it whole. */
static inline void
frames_leave(int at)
{
    int depth = frames_depth;
    if (at < 0 || depth <= at) {
        return;
    }
    frames_depth = at;
    for (int i = depth - 1; i >= at; i--) {
        Py_DECREF(frames[i]);
    }
}

/* The nearest tracked caller of a call of `stats` that just left (borrowed; NULL:
   none), and whether that call was outer (no call of `stats` still running). */
static inline PyObject *
frames_caller(PyObject *stats, int *outer)
{
    int depth = frames_depth;
    if (depth == 0) {
        return NULL;
    }
    int found = 0;
    for (int i = 0; i < depth; i++) {
        if (frames[i] == stats) {
            found = 1;
            break;
        }
    }
    *outer = !found;
    return frames[depth - 1];
}

/* ------------------------------------------------------------------- Edge */

/* Calls of `stats` whose nearest tracked caller was `caller` (None: past the cap,
   folded); `outer` 0 for nested calls.  Drains count `calls` and `time`. */
typedef struct {
    PyObject_HEAD
    PyObject *stats;
    PyObject *caller;
    int outer;
    int folded;
    Py_ssize_t calls;
    double time;
} EdgeObject;

static PyTypeObject Edge_Type;

static PyObject *
Edge_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"stats", "caller", "outer", "folded", NULL};
    PyObject *stats, *caller;
    int outer, folded;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOpp:Edge", kwlist, &stats, &caller, &outer,
                                     &folded)) {
        return NULL;
    }
    EdgeObject *self = (EdgeObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->stats = Py_NewRef(stats);
    self->caller = Py_NewRef(caller);
    self->outer = outer;
    self->folded = folded;
    self->calls = 0;
    self->time = 0.0;
    return (PyObject *)self;
}

static int
Edge_traverse(EdgeObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->stats);
    Py_VISIT(self->caller);
    return 0;
}

static int
Edge_clear(EdgeObject *self)
{
    Py_CLEAR(self->stats);
    Py_CLEAR(self->caller);
    return 0;
}

static void
Edge_dealloc(EdgeObject *self)
{
    PyObject_GC_UnTrack(self);
    Edge_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef Edge_members[] = {
    {"stats", T_OBJECT, offsetof(EdgeObject, stats), READONLY, "The function called."},
    {"caller", T_OBJECT, offsetof(EdgeObject, caller), READONLY,
     "Its nearest tracked caller (None: callers past the cap, folded)."},
    {"outer", T_BOOL, offsetof(EdgeObject, outer), READONLY,
     "False for nested calls (an outer call of the function was running)."},
    {"folded", T_BOOL, offsetof(EdgeObject, folded), READONLY, "Callers past the cap."},
    {"calls", T_PYSSIZET, offsetof(EdgeObject, calls), 0, "Calls counted by drains."},
    {"time", T_DOUBLE, offsetof(EdgeObject, time), 0, "Their seconds, counted by drains."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject Edge_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._engine._speedups.Edge",
    .tp_basicsize = sizeof(EdgeObject),
    .tp_dealloc = (destructor)Edge_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Edge(stats, caller, outer, folded): calls of a function by one caller.",
    .tp_traverse = (traverseproc)Edge_traverse,
    .tp_clear = (inquiry)Edge_clear,
    .tp_members = Edge_members,
    .tp_new = Edge_new,
};

/* frames_push(stats) -> at: push a call of `stats` made from Python (-1: too deep). */
static PyObject *
speedups_frames_push(PyObject *Py_UNUSED(module), PyObject *stats)
{
    return PyLong_FromLong(frames_enter(stats));
}

/* frames_pop(stats, at): the call pushed at `at` ends; return its nearest tracked
   caller: None (none), the caller (an outer call), or (caller,) (a nested call). */
static PyObject *
speedups_frames_pop(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "frames_pop(stats, at) takes 2 arguments");
        return NULL;
    }
    long at = PyLong_AsLong(args[1]);
    if (at == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (at < 0) {
        Py_RETURN_NONE;
    }
    frames_leave((int)(at > FRAMES_MAX ? FRAMES_MAX : at));
    int outer = 1;
    PyObject *caller = frames_caller(args[0], &outer);
    if (caller == NULL) {
        Py_RETURN_NONE;
    }
    return outer ? Py_NewRef(caller) : PyTuple_Pack(1, caller);
}

/* frames_depth(): how many tracked calls run on this thread (for tests). */
static PyObject *
speedups_frames_depth(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(frames_depth);
}
