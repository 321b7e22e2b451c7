/* callmetrics._engine._speedups: the steps of generators and coroutines under zero-code
 * tracking (3.12+).  Part of one translation unit: included by speedups.c after
 * monitor.c (the Monitor, its sync callbacks) and monpending.c (the calls under way),
 * before monitor_type.c, never compiled on its own.  The pure-Python twin is callmetrics._zerocode.monitor.
 *
 * Only code objects flagged CO_GENERATOR, CO_COROUTINE, CO_ITERABLE_COROUTINE or
 * CO_ASYNC_GENERATOR get PY_RESUME and PY_YIELD (local events), so plain functions pay
 * nothing for them.  PY_THROW cannot be set locally: it is on for the whole program
 * (as PY_UNWIND is) and fires only when an exception is thrown into a generator or
 * coroutine (throw(), close() through a try block, a task's cancellation); an
 * untracked one costs a code-extra read.  A call means what it means for the
 * decorator's step proxy (steps.c):
 *
 *   the call      from its first step (PY_START) to its end (PY_RETURN, or PY_UNWIND:
 *                 GeneratorExit is a success), recorded with that wall duration;
 *   a step        from PY_START, PY_RESUME or PY_THROW to the next PY_YIELD or the
 *                 end.  For its length the function is on the running thread's stack
 *                 of tracked calls (frames.c): calls made meanwhile have it as their
 *                 caller, an awaited tracked coroutine nests under its awaiter (its
 *                 frame resumes inside the awaiter's), and the call's own caller is
 *                 whoever ran its last step.  Its seconds add to the call's active
 *                 time; the suspended rest (duration - active) is credited to the
 *                 function's Idle and taken off its caller's (idle.c).
 *
 * State across suspensions: a Pending per call under way, and what a throw() passed
 * down an await chain does to its awaiters' steps: see monpending.c.
 *
 * Memory: one Pending per started, unfinished tracked call.  A generator that ends
 * unseen (closed while suspended outside any try block: CPython 3.13 skips its
 * frame; or dropped so) is recorded by mon_sweep, ending at its last step, with no caller,
 * once only the dict holds its frame (its locals kept with it until then).  A sweep
 * runs when the dict doubles past 64 entries and when tracking stops (uninstrument,
 * the run's end): the dict stays within twice the generators live at the last sweep
 * (or 64).  One the program keeps suspended forever keeps its Pending as long as the
 * program keeps it, and is recorded, ending at its last step, when tracking stops.
 */

#if PY_VERSION_HEX >= 0x030C0000

/* Credit `inactive` suspended seconds of a call of `sink` made by `caller`. */
static void
mon_credit(SinkObject *sink, PyObject *caller, double inactive)
{
    PyObject *idle = PyObject_GetAttr(sink->key, str_idle);
    if (idle == NULL) {
        PyErr_Clear();
        return;
    }
    if (Py_IS_TYPE(idle, &Idle_Type)) {
        steps_credit((IdleObject *)idle, caller, inactive);
    }
    Py_DECREF(idle);
}

/* The call of `p` ended at `end` with `exc` (NULL: returned), its last step's entry
   at `at` (-1: none) already left: buffer it under its caller's edge, as the step
   proxy does, and credit its suspended seconds. */
static void
mon_gen_record(MonitorObject *self, PendingObject *p, double end, PyObject *exc, int at)
{
    SinkObject *sink = p->sink;
    Frames *fr = frames_here();
    int outer = 1;
    PyObject *caller = at < 0 ? NULL : frames_caller(fr, sink->key, &outer);
    Py_XINCREF(caller);   /* Python code may run below: hold what the stack lends */
    double duration = end - p->start;
    if (exc == NULL || PyErr_GivenExceptionMatches(exc, PyExc_GeneratorExit)) {
        PyObject *key = sink_key(sink, fr, at, duration);
        if (key == NULL || sink_success(sink, key, p->start, end) < 0) {
            mon_report(self, "recording a generator call");
        }
        Py_XDECREF(key);
    }
    else {   /* the engine's Python records it (Ends.failed), returning the duration */
        PyObject *t0 = PyFloat_FromDouble(p->start);
        PyObject *where = PyLong_FromLong(at);
        PyObject *r = NULL;
        if (t0 != NULL && where != NULL) {
            PyObject *argv[4] = {sink->key, t0, exc, where};
            r = PyObject_Vectorcall(sink->failed, argv, 4, NULL);
        }
        Py_XDECREF(t0);
        Py_XDECREF(where);
        duration = r == NULL ? -1.0 : PyFloat_AsDouble(r);
        Py_XDECREF(r);
        if (duration == -1.0 && PyErr_Occurred()) {
            mon_report(self, "recording a failed generator call");
            Py_XDECREF(caller);
            return;
        }
    }
    mon_credit(sink, caller, duration - p->active);
    Py_XDECREF(caller);
}

/* Record, as ending at their last step, the pending calls whose frame nothing else
   holds any more (`all`: every pending call; one running then ends now).  Returns
   how many, -1 on error. */
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
        double end = p->last;
        if (p->running) {   /* only when recording every one: it ends now, unpopped */
            end = monotonic_seconds();
            p->active += end - p->began;
            p->running = 0;
            if (p->carried) {
                p->carried = 0;
                mon_carried--;
            }
        }
        mon_gen_record(self, p, end, NULL, -1);
        Py_DECREF(p);
    }
    Py_DECREF(gone);
    Py_ssize_t left = PyDict_GET_SIZE(self->pending);
    self->sweep_at = left < 32 ? 64 : 2 * left;
    return n;
}

/* PY_START of a generator or coroutine: its call and first step begin. */
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
    p->start = p->began = p->last = now;
    p->active = 0.0;
    p->running = 0;
    p->carried = 0;
    p->at = -1;
    if (PyDict_SetItem(self->pending, frame, (PyObject *)p) < 0) {
        Py_DECREF(p);
        mon_report(self, "starting a generator call");
        Py_RETURN_NONE;
    }
    pending_resume(p, now);
    Py_DECREF(p);   /* the dict holds it */
    if (PyDict_GET_SIZE(self->pending) >= self->sweep_at && mon_sweep(self, 0) < 0) {
        mon_report(self, "sweeping generator calls");
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

/* PY_RETURN or PY_UNWIND (`exc`) of a generator or coroutine: its call ends. */
static PyObject *
mon_gen_end(MonitorObject *self, double now, PyObject *exc)
{
    PyObject *frame;
    PendingObject *p = mon_pending(self, &frame);
    if (p == NULL) {
        Py_RETURN_NONE;
    }
    Py_INCREF(p);
    if (PyDict_DelItem(self->pending, frame) < 0) {
        mon_report(self, "ending a generator call");
    }
    int at = pending_suspend(p, now);
    mon_gen_record(self, p, now, exc, at);
    Py_DECREF(p);
    Py_RETURN_NONE;
}

/* PY_RESUME(code, offset): a step of a generator or coroutine begins. */
static PyObject *
Monitor_resume(MonitorObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!mon_ready(self, args, nargs, 2)) {
        Py_RETURN_NONE;
    }
    double now = monotonic_seconds();
    PyObject *frame;
    PendingObject *p = mon_pending(self, &frame);
    if (p != NULL) {
        pending_resume(p, now);
    }
    else if (mon_sink_of(args[0]) == NULL) {
        return Py_NewRef(self->disable);
    }
    Py_RETURN_NONE;
}

/* PY_THROW(code, offset, exception): a step begins by raising where it is suspended.
   A global event: never DISABLE (an error for it); an untracked code returns at once. */
static PyObject *
Monitor_throw(MonitorObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!mon_ready(self, args, nargs, 2) || mon_sink_of(args[0]) == NULL) {
        Py_RETURN_NONE;
    }
    double now = monotonic_seconds();
    PyObject *frame;
    PendingObject *p = mon_pending(self, &frame);
    if (p != NULL) {
        if (!p->running) {
            mon_carry(self, frame, now);
        }
        pending_resume(p, now);
    }
    Py_RETURN_NONE;
}

/* PY_YIELD(code, offset, value): a step of a generator or coroutine ends. */
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
        pending_suspend(p, now);
        p->last = now;
        if (mon_carried > 0) {
            mon_uncarry(self, frame, now);
        }
    }
    else if (mon_sink_of(args[0]) == NULL) {
        return Py_NewRef(self->disable);
    }
    Py_RETURN_NONE;
}

#endif  /* PY_VERSION_HEX >= 0x030C0000 */
