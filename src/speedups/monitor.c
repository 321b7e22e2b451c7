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
 *   generators and coroutines  stepped by PY_START/PY_RESUME/PY_THROW to PY_YIELD,
 *                   their calls under way kept by frame: see monsteps.c.
 *
 * The stack is a plain malloc'd array per thread (see mon_stack): a steady-state
 * call allocates nothing, and tracemalloc sees nothing of it.  Callbacks never raise:
 * an internal failure is handed to `report(where, exc)` and the program goes on. */

#if PY_VERSION_HEX >= 0x030C0000

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

/* Generators and coroutines (monsteps.c): their call begins (PY_START) and ends. */
static PyObject *mon_gen_start(MonitorObject *self, SinkObject *sink, double now);
static PyObject *mon_gen_end(MonitorObject *self, double now, PyObject *exc);

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

/* attach(code, sink): calls of `code` go to `sink` from now on.  False if `code`
   already has one (another instance tracks it). */

#endif  /* PY_VERSION_HEX >= 0x030C0000 */
