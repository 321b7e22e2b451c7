/* callmetrics._engine._speedups: the sys.monitoring callbacks of zero-code tracking (3.12+).
 * Part of one translation unit: included by speedups.c after monstack.c (the per-thread
 * stacks) and sink.c (so sink_success inlines here),
 * never compiled on its own.  The pure-Python twin is callmetrics._zerocode.monitor.
 *
 * A tracked code object carries its Sink in a code "extra" slot (one strong
 * reference, dropped by the slot's free function when the code dies or the slot
 * is cleared), so finding where a call goes is one pointer read.
 *
 *   sync functions  PY_START pushes (code, sink, start) on this thread's stack of
 *                   running tracked calls; PY_RETURN / PY_UNWIND pop the topmost
 *                   entry of the same code (entries above it, left by calls whose
 *                   events were turned off while they ran, are dropped unrecorded)
 *                   and record the call through the Sink, as the C wrapper does.
 *   generators and coroutines  PY_START (their first step) files a Pending under
 *                   the frame; PY_YIELD notes the time of the step's end; PY_RETURN /
 *                   PY_UNWIND end it (GeneratorExit: a success, as the decorator
 *                   says).  One closed early without running its frame (CPython
 *                   skips a frame suspended outside any try block) sends no event:
 *                   sweep() records it, ending at its last step, once only the
 *                   Pending holds its frame.
 *
 * The stack is a plain malloc'd array per thread (see mon_stack): a steady-state
 * call allocates nothing, and tracemalloc sees nothing of it.  Callbacks never raise:
 * an internal failure is handed to `report(where, exc)` and the program goes on. */

#if PY_VERSION_HEX >= 0x030C0000

/* ----------------------------------------------------------------- Pending */

typedef struct {
    PyObject_HEAD
    SinkObject *sink;
    double start;   /* the first step's start */
    double last;    /* the latest step's end (a yield), or the start */
} PendingObject;

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

/* ----------------------------------------------------------------- Monitor */

typedef struct {
    PyObject_HEAD
    PyObject *pending;   /* dict: frame of a running generator/coroutine -> Pending */
    PyObject *report;    /* (where, exc) -> None: an internal failure, logged */
    PyObject *disable;   /* sys.monitoring.DISABLE */
    Py_ssize_t sweep_at; /* sweep when this many are pending */
} MonitorObject;

static PyTypeObject Monitor_Type;

/* Hand the exception set (if any) to report(); leaves none set. */
static void
mon_report(MonitorObject *self, const char *where)
{
    PyObject *exc = PyErr_GetRaisedException();
    if (exc == NULL) {
        return;
    }
    PyObject *r = PyObject_CallFunction(self->report, "sO", where, exc);
    Py_XDECREF(r);
    Py_DECREF(exc);
    PyErr_Clear();   /* a failing report() must not reach the program either */
}

/* Record the call that ended with `exc` (NULL: returned) at `end`; steals call->sink. */
static void
mon_end(MonitorObject *self, SinkObject *sink, double start, double end, PyObject *exc,
        int gen, int at)
{
    if (exc == NULL || (gen && PyErr_GivenExceptionMatches(exc, PyExc_GeneratorExit))) {
        /* As the C wrapper: off the attribution stack, under its caller's edge. */
        PyObject *key;
        if (at < 0) {
            key = Py_NewRef(sink->key);
        }
        else {
            Frames *fr = frames_here();
            frames_leave(fr, at);
            key = at == 0 ? Py_NewRef(sink->key) : sink_key(sink, fr, at, end - start);
        }
        if (key == NULL || sink_success(sink, key, start, end) < 0) {
            mon_report(self, "recording a call");
        }
        Py_XDECREF(key);
    }
    else {
        PyErr_SetRaisedException(Py_NewRef(exc));
        sink_failure(sink, start, at);   /* takes the call off the stack too */
        PyObject *left = PyErr_GetRaisedException();
        if (left != NULL && left != exc) {   /* the bookkeeping failed: say so */
            PyErr_SetRaisedException(left);
            mon_report(self, "recording a failed call");
        }
        else {
            Py_XDECREF(left);
        }
    }
    Py_DECREF(sink);
}

static PyObject *
Monitor_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"report", "disable", NULL};
    PyObject *report, *disable;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO:Monitor", kwlist, &report, &disable)) {
        return NULL;
    }
    MonitorObject *self = (MonitorObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->pending = PyDict_New();
    if (self->pending == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->report = Py_NewRef(report);
    self->disable = Py_NewRef(disable);
    self->sweep_at = 64;
    return (PyObject *)self;
}

static int
Monitor_traverse(MonitorObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->pending);
    Py_VISIT(self->report);
    Py_VISIT(self->disable);
    return 0;
}

static int
Monitor_clear(MonitorObject *self)
{
    Py_CLEAR(self->pending);
    Py_CLEAR(self->report);
    Py_CLEAR(self->disable);
    return 0;
}

static void
Monitor_dealloc(MonitorObject *self)
{
    PyObject_GC_UnTrack(self);
    Monitor_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static inline int
mon_ready(MonitorObject *self, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want)
{
    return self->pending != NULL && nargs >= want && PyCode_Check(args[0]);
}

/* Record, as ending at their last step, the pending calls whose frame nothing else
   holds any more (`all`: every pending call).  Returns how many, -1 on error. */
static Py_ssize_t
mon_sweep(MonitorObject *self, int all)
{
    PyObject *gone = PyList_New(0);
    if (gone == NULL) {
        return -1;
    }
    Py_ssize_t pos = 0;
    PyObject *frame, *value;
    while (PyDict_Next(self->pending, &pos, &frame, &value)) {
        if ((all || Py_REFCNT(frame) == 1) && PyList_Append(gone, frame) < 0) {
            Py_DECREF(gone);
            return -1;
        }
    }
    Py_ssize_t n = PyList_GET_SIZE(gone);
    for (Py_ssize_t i = 0; i < n; i++) {
        frame = PyList_GET_ITEM(gone, i);
        PendingObject *p = (PendingObject *)PyDict_GetItemWithError(self->pending, frame);
        if (p == NULL) {
            continue;
        }
        Py_INCREF(p);
        if (PyDict_DelItem(self->pending, frame) < 0) {
            Py_DECREF(p);
            Py_DECREF(gone);
            return -1;
        }
        mon_end(self, (SinkObject *)Py_NewRef(p->sink), p->start, p->last, NULL, 1, -1);
        Py_DECREF(p);
    }
    Py_DECREF(gone);
    Py_ssize_t left = PyDict_GET_SIZE(self->pending);
    self->sweep_at = left < 32 ? 64 : 2 * left;
    return n;
}

static PyObject *
mon_gen_start(MonitorObject *self, SinkObject *sink, double now)
{
    PyObject *frame = (PyObject *)PyEval_GetFrame();   /* borrowed: the generator's */
    if (frame == NULL) {
        Py_RETURN_NONE;
    }
    PendingObject *p = PyObject_New(PendingObject, &Pending_Type);
    if (p == NULL) {
        mon_report(self, "starting a generator call");
        Py_RETURN_NONE;
    }
    p->sink = (SinkObject *)Py_NewRef(sink);
    p->start = now;
    p->last = now;
    int failed = PyDict_SetItem(self->pending, frame, (PyObject *)p);
    Py_DECREF(p);
    if (failed < 0 || (PyDict_GET_SIZE(self->pending) >= self->sweep_at
                       && mon_sweep(self, 0) < 0)) {
        mon_report(self, "starting a generator call");
    }
    Py_RETURN_NONE;
}

/* The Pending of the running generator's frame (borrowed), or NULL. */
static PendingObject *
mon_pending(MonitorObject *self, PyObject **frame)
{
    *frame = (PyObject *)PyEval_GetFrame();
    if (*frame == NULL) {
        return NULL;
    }
    PyObject *p = PyDict_GetItemWithError(self->pending, *frame);
    if (p == NULL && PyErr_Occurred()) {
        mon_report(self, "finding a generator call");
    }
    return (PendingObject *)p;
}

static PyObject *
mon_gen_end(MonitorObject *self, double now, PyObject *exc)
{
    PyObject *frame;
    PendingObject *p = mon_pending(self, &frame);
    if (p == NULL) {
        Py_RETURN_NONE;
    }
    SinkObject *sink = (SinkObject *)Py_NewRef(p->sink);
    double start = p->start;
    if (PyDict_DelItem(self->pending, frame) < 0) {
        mon_report(self, "ending a generator call");
    }
    mon_end(self, sink, start, now, exc, 1, -1);
    Py_RETURN_NONE;
}

/* PY_START(code, offset) */
static PyObject *
Monitor_start(MonitorObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!mon_ready(self, args, nargs, 2)) {
        Py_RETURN_NONE;
    }
    PyObject *code = args[0];
    SinkObject *sink = mon_sink_of(code);
    if (sink == NULL) {   /* no longer tracked: this event costs nothing from now on */
        return Py_NewRef(self->disable);
    }
    double now = monotonic_seconds();
    if (((PyCodeObject *)code)->co_flags & MON_GEN_FLAGS) {
        return mon_gen_start(self, sink, now);
    }
    MonStack *st = mon_stack();
    int at = frames_enter(frames_here(), sink->key);
    if (st == NULL || mon_push(st, code, sink, now, at) < 0) {
        frames_leave(frames_here(), at);
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        mon_report(self, "starting a call");
    }
    Py_RETURN_NONE;
}

/* PY_RETURN(code, offset, value) and PY_UNWIND(code, offset, exception) */
static PyObject *
mon_ended(MonitorObject *self, PyObject *const *args, Py_ssize_t nargs, int unwound)
{
    if (!mon_ready(self, args, nargs, 3)) {
        Py_RETURN_NONE;
    }
    double now = monotonic_seconds();
    PyObject *code = args[0];
    PyObject *exc = unwound ? args[2] : NULL;
    if (((PyCodeObject *)code)->co_flags & MON_GEN_FLAGS) {
        return mon_gen_end(self, now, exc);
    }
    MonStack *st = mon_stack();
    MonCall call;
    if (st == NULL) {
        Py_RETURN_NONE;
    }
    if (st->depth > 0 && st->calls[st->depth - 1].code == code) {   /* the usual case */
        call = st->calls[--st->depth];
    }
    else if (!mon_pop(st, code, &call)) {
        if (!unwound && mon_sink_of(code) == NULL) {   /* PY_UNWIND cannot be disabled */
            return Py_NewRef(self->disable);
        }
        Py_RETURN_NONE;
    }
    mon_end(self, call.sink, call.start, now, exc, 0, call.at);
    Py_RETURN_NONE;
}

static PyObject *
Monitor_return(MonitorObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return mon_ended(self, args, nargs, 0);
}

static PyObject *
Monitor_unwind(MonitorObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return mon_ended(self, args, nargs, 1);
}

/* PY_YIELD(code, offset, value): a generator's or coroutine's step ends. */
static PyObject *
Monitor_yield(MonitorObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!mon_ready(self, args, nargs, 3)) {
        Py_RETURN_NONE;
    }
    double now = monotonic_seconds();
    PyObject *frame;
    PendingObject *p = mon_pending(self, &frame);
    if (p != NULL) {
        p->last = now;
    }
    else if (mon_sink_of(args[0]) == NULL) {
        return Py_NewRef(self->disable);
    }
    Py_RETURN_NONE;
}

/* attach(code, sink): calls of `code` go to `sink` from now on.  False if `code`
   already has one (another instance tracks it). */

#endif  /* PY_VERSION_HEX >= 0x030C0000 */
