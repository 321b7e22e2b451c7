/* callmetrics._engine._speedups: the generator and coroutine calls under way of zero-code
 * tracking (3.12+), and their steps.  Part of one translation unit: included by
 * speedups.c right after monitor.c and before monsteps.c (the callbacks using them),
 * never compiled on its own.
 *
 * State across suspensions: a Pending per call under way, in the Monitor's dict keyed
 * by the generator's frame object (PyEval_GetFrame(): made once per generator by its
 * first event, then the same object at every resume, on whatever thread).  A step
 * never spans threads, so its place on a thread's stack (`at`) is exact; a generator
 * suspended on one thread and resumed on another steps on each in turn.
 *
 * A throw() into a coroutine awaiting another is passed by CPython straight down to
 * the innermost one, the awaiters' frames only linked in (f_back) without running:
 * their steps are begun there too (carried: outermost first, so the stack reads as
 * when a send() resumes them), and end at the innermost's next PY_YIELD, or become
 * their own steps when they run (the exception, or a return, coming back up).
 */

#if PY_VERSION_HEX >= 0x030C0000

/* ----------------------------------------------------------------- Pending */

typedef struct {
    PyObject_HEAD
    SinkObject *sink;
    double start;    /* the first step's start */
    double began;    /* the running step's start */
    double last;     /* the latest step's end (a yield), or the start */
    double active;   /* seconds of the steps ended so far */
    int at;          /* the running step's place on its thread's stack (-1: not pushed) */
    int running;     /* a step is under way */
    int carried;     /* that step was begun by a throw() passing through (see above) */
} PendingObject;

/* Carried steps under way (in any Monitor): PY_YIELD looks for them only when any. */
static Py_ssize_t mon_carried;

#define MON_CARRY_MAX 64   /* awaiters one throw() carries at most */

static void
Pending_dealloc(PendingObject *self)
{
    Py_XDECREF(self->sink);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject Pending_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._engine._speedups.Pending",
    .tp_basicsize = sizeof(PendingObject),
    .tp_dealloc = (destructor)Pending_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A generator or coroutine call under way (sys.monitoring tracking).",
};

/* A step of `p` begins now, on this thread (a carried one becomes its own). */
static inline void
pending_resume(PendingObject *p, double now)
{
    if (p->carried) {
        p->carried = 0;
        mon_carried--;
    }
    if (p->running) {
        return;
    }
    p->running = 1;
    p->began = now;
    p->at = frames_enter(frames_here(), p->sink->key);
}

/* The running step of `p` ends now; returns its place on the stack (now left). */
static inline int
pending_suspend(PendingObject *p, double now)
{
    if (!p->running) {
        return -1;
    }
    int at = p->at;
    if (p->carried) {
        p->carried = 0;
        mon_carried--;
    }
    p->running = 0;
    p->active += now - p->began;
    p->at = -1;
    frames_leave(frames_here(), at);
    return at;
}

/* The frame below `frame` when it is a generator's or coroutine's (a new reference),
   else NULL. */
static PyObject *
mon_awaiter(PyObject *frame)
{
    PyFrameObject *back = PyFrame_GetBack((PyFrameObject *)frame);
    if (back == NULL) {
        return NULL;
    }
    PyCodeObject *code = PyFrame_GetCode(back);
    int gen = (code->co_flags & MON_GEN_FLAGS) != 0;
    Py_DECREF(code);
    if (!gen) {
        Py_DECREF(back);
        return NULL;
    }
    return (PyObject *)back;
}

/* PY_THROW of `frame`: begin the steps of the tracked awaiters the throw passed
   through (suspended ones below it), outermost first. */
static void
mon_carry(MonitorObject *self, PyObject *frame, double now)
{
    PendingObject *chain[MON_CARRY_MAX];
    int n = 0;
    PyObject *back = mon_awaiter(frame);
    while (back != NULL && n < MON_CARRY_MAX) {
        PendingObject *p = (PendingObject *)PyDict_GetItemWithError(self->pending, back);
        if (p == NULL && PyErr_Occurred()) {
            PyErr_Clear();
            break;
        }
        if (p != NULL && p->running) {   /* running: it resumed what is below it */
            break;
        }
        if (p != NULL) {
            chain[n++] = p;   /* borrowed: the dict keeps it, and no Python code runs here */
        }
        PyObject *next = mon_awaiter(back);
        Py_SETREF(back, next);
    }
    Py_XDECREF(back);
    for (int i = n - 1; i >= 0; i--) {
        pending_resume(chain[i], now);
        chain[i]->carried = 1;
        mon_carried++;
    }
}

/* PY_YIELD of `frame` while steps are carried: the yield goes straight back up through
   its awaiters, ending their carried steps. */
static void
mon_uncarry(MonitorObject *self, PyObject *frame, double now)
{
    PyObject *back = mon_awaiter(frame);
    while (back != NULL) {
        PendingObject *p = (PendingObject *)PyDict_GetItemWithError(self->pending, back);
        if (p == NULL && PyErr_Occurred()) {
            PyErr_Clear();
            break;
        }
        if (p != NULL) {
            if (!p->carried) {
                break;
            }
            pending_suspend(p, now);
            p->last = now;
        }
        PyObject *next = mon_awaiter(back);
        Py_SETREF(back, next);
    }
    Py_XDECREF(back);
}

#endif  /* PY_VERSION_HEX >= 0x030C0000 */
