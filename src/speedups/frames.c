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

typedef struct {
    int depth;
    PyObject *slots[FRAMES_MAX];
} Frames;

/* One per thread, found once per call (frames_here) and passed on.  Where the
   compiler allows, the thread-local variable is one pointer of the initial-exec model
   (one instruction to read, where a shared library's thread-locals otherwise cost a
   function call at each use), and the stack is allocated on the thread's first
   tracked call and freed when the thread ends (a pthread key's destructor).  NULL
   (no memory): calls on that thread are not pushed. */
#if defined(__GNUC__) && !defined(_WIN32)
#include <pthread.h>
#include <stdlib.h>

static __thread Frames *frames_mine __attribute__((tls_model("initial-exec")));
static pthread_key_t frames_key;
static int frames_keyed;

static void
frames_free(void *fr)
{
    free(fr);   /* the thread ends: no Python code runs here, the GIL is not held */
}

static int
frames_init(void)
{
    if (pthread_key_create(&frames_key, frames_free) != 0) {
        return 0;   /* no key: stacks are never freed, but still work */
    }
    frames_keyed = 1;
    return 0;
}

static Frames *
frames_new(void)
{
    Frames *fr = calloc(1, sizeof(Frames));
    if (fr != NULL) {
        if (frames_keyed) {
            (void)pthread_setspecific(frames_key, fr);
        }
        frames_mine = fr;
    }
    return fr;
}

static inline Frames *
frames_here(void)
{
    Frames *fr = frames_mine;
    return fr != NULL ? fr : frames_new();
}
#else
static _Thread_local Frames frames_of_thread;

static int
frames_init(void)
{
    return 0;
}

static inline Frames *
frames_here(void)
{
    return &frames_of_thread;
}
#endif

/* Push `stats`; return where (-1: too deep or no stack, not pushed). */
static inline int
frames_enter(Frames *fr, PyObject *stats)
{
    if (fr == NULL) {
        return -1;
    }
    int at = fr->depth;
    if (at >= FRAMES_MAX) {
        return -1;
    }
    fr->slots[at] = Py_NewRef(stats);
    fr->depth = at + 1;
    return at;
}

/* Truncate the stack to `at` (a call pushed there ends).  The references are dropped
   once the stack is short again, so code their release may run sees it whole. */
static inline void
frames_leave(Frames *fr, int at)
{
    if (at < 0 || fr == NULL) {
        return;
    }
    int depth = fr->depth;
    if (depth == at + 1) {   /* the common case: this call is on top */
        fr->depth = at;
        Py_DECREF(fr->slots[at]);
        return;
    }
    if (depth <= at) {
        return;
    }
    fr->depth = at;
    for (int i = depth - 1; i >= at; i--) {
        Py_DECREF(fr->slots[i]);
    }
}

/* The nearest tracked caller of a call of `stats` that just left (borrowed; NULL:
   none), and whether that call was outer (no call of `stats` still running). */
static inline PyObject *
frames_caller(Frames *fr, PyObject *stats, int *outer)
{
    if (fr == NULL) {
        return NULL;
    }
    int depth = fr->depth;
    if (depth == 0) {
        return NULL;
    }
    int found = 0;
    for (int i = 0; i < depth; i++) {
        if (fr->slots[i] == stats) {
            found = 1;
            break;
        }
    }
    *outer = !found;
    return fr->slots[depth - 1];
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
    return PyLong_FromLong(frames_enter(frames_here(), stats));
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
    Frames *fr = frames_here();
    frames_leave(fr, (int)(at > FRAMES_MAX ? FRAMES_MAX : at));
    int outer = 1;
    PyObject *caller = frames_caller(fr, args[0], &outer);
    if (caller == NULL) {
        Py_RETURN_NONE;
    }
    return outer ? Py_NewRef(caller) : PyTuple_Pack(1, caller);
}

/* frames_depth(): how many tracked calls run on this thread (for tests). */
static PyObject *
speedups_frames_depth(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    Frames *fr = frames_here();
    return PyLong_FromLong(fr == NULL ? 0 : fr->depth);
}
