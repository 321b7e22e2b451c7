/* callmetrics._engine._speedups: the step proxy of tracked coroutines and generators.
 * Part of one translation unit: included by speedups.c (after frames.c, sink.c), never
 * compiled on its own.
 *
 *   Idle      (idle.c) per function: the seconds its coroutine/generator calls were suspended
 *             (`inactive`), and that less the suspended seconds of the tracked calls
 *             it made directly (`gap`): active time = total - inactive, active self
 *             time = self time - gap (callmetrics._engine.attribution).
 *   Stepping  (stepping.c) the callable that replaces a coroutine or generator function: it calls
 *             the original and returns its object wrapped in a Steps (no frame added).
 *   Steps     (this file) the proxy: CoroSteps (awaitable: am_await, am_send) or GenSteps
 *             (iterator).  Each resume (am_send, __next__, send, throw, close) is one
 *             step: the function's stats are pushed on the thread's stack of tracked
 *             calls (frames.c) for its length, so calls made during it have the
 *             coroutine as their caller, and its seconds add to the call's active
 *             time.  The call starts at its first step and ends at the step that
 *             returns or raises; it is then buffered as the C wrapper buffers a call
 *             (sink.c), and its suspended seconds are credited to the Idle of its
 *             function and, as a child's, to its nearest tracked caller's.
 *
 * A step runs no Python code of ours: two clock reads, a push and a truncation.  What
 * the object does not answer itself (cr_frame, gi_frame, cr_await, __name__, ...) is
 * read from the original object.  A call closed before its end (GeneratorExit) is a
 * success, as for generators; a proxy dropped while started is closed (and so
 * recorded), as a generator is.
 */

/* ------------------------------------------------------------------- Steps */

enum { STEPS_NEW, STEPS_STARTED, STEPS_DONE };
enum { HOW_SEND, HOW_THROW, HOW_CLOSE };

typedef struct {
    PyObject_HEAD
    PyObject *inner;      /* the coroutine or generator the original function returned */
    SinkObject *sink;
    IdleObject *idle;
    double start;         /* the first step's start */
    double active;        /* the seconds of the steps so far */
    int state;
    int running;          /* a step is under way (a resume now is the inner's error) */
    int flying;           /* async generators: one of its awaitables is mid-way (asteps.c) */
} StepsObject;

static PyTypeObject CoroSteps_Type;
static PyTypeObject GenSteps_Type;

/* A StopIteration is set: take its value as a return (PYGEN_RETURN); else PYGEN_ERROR. */
static PySendResult
steps_stopped(PyObject **presult)
{
    *presult = NULL;
    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
        return PYGEN_ERROR;
    }
    PyObject *exc = PyErr_GetRaisedException_compat();
    if (exc == NULL) {
        *presult = Py_NewRef(Py_None);
        return PYGEN_RETURN;
    }
    PyObject *value = ((PyStopIterationObject *)exc)->value;
    *presult = Py_NewRef(value != NULL ? value : Py_None);
    Py_DECREF(exc);
    return PYGEN_RETURN;
}

/* Resume the inner object once: send `arg`, throw the `arg` tuple's exception, or
   close it (its close() returning is PYGEN_RETURN with what it returned). */
static PySendResult
steps_resume(PyObject *inner, int how, PyObject *arg, PyObject **presult)
{
    if (how == HOW_SEND) {
        return PyIter_Send(inner, arg, presult);
    }
    PyObject *r;
    if (how == HOW_CLOSE) {
        r = PyObject_CallMethodNoArgs(inner, str_close);
        *presult = r;
        return r != NULL ? PYGEN_RETURN : PYGEN_ERROR;
    }
    PyObject *meth = PyObject_GetAttr(inner, str_throw);
    if (meth == NULL) {
        *presult = NULL;
        return PYGEN_ERROR;
    }
    r = PyObject_Call(meth, arg, NULL);
    Py_DECREF(meth);
    if (r != NULL) {
        *presult = r;
        return PYGEN_NEXT;
    }
    return steps_stopped(presult);
}

/* The call pushed at `at` ended normally at `end` (its own entry already left): buffer
   it under its function or its caller's edge, and credit its suspended seconds. */
static int
steps_end(StepsObject *self, Frames *fr, int at, double end)
{
    SinkObject *sink = self->sink;
    double duration = end - self->start;
    int outer = 1;
    PyObject *caller = at < 0 ? NULL : frames_caller(fr, sink->key, &outer);
    Py_XINCREF(caller);   /* held while its Idle is looked up */
    steps_credit(self->idle, caller, duration - self->active);
    Py_XDECREF(caller);
    PyObject *key = sink_key(sink, fr, at, duration);
    if (key == NULL) {
        return -1;
    }
    int r = sink_success(sink, key, self->start, end);
    Py_DECREF(key);
    return r;
}

/* The call pushed at `at` ended as a success by raising (GeneratorExit, or an async
   generator's StopAsyncIteration: set, and it stays set): end it as steps_end does.  A
   failure of the bookkeeping is raised instead, with the call's as its context. */
static void
steps_end_raised(StepsObject *self, Frames *fr, int at, double end)
{
    PyObject *exc = PyErr_GetRaisedException_compat();
    if (steps_end(self, fr, at, end) < 0) {
        PyObject *raised = PyErr_GetRaisedException_compat();
        if (raised != NULL && exc != NULL) {
            PyException_SetContext(raised, exc);   /* steals exc */
            exc = raised;
        }
        else {
            Py_XDECREF(raised);
        }
    }
    PyErr_SetRaisedException_compat(exc);
}

/* The call pushed at `at` raised (the exception is set, and stays set): the engine's
   Python records it (Ends.failed, which returns the duration); credit its suspended
   seconds.  A failure of the bookkeeping is raised with the call's as its context. */
static void
steps_failed(StepsObject *self, Frames *fr, int at)
{
    SinkObject *sink = self->sink;
    int outer = 1;
    PyObject *caller = at < 0 ? NULL : frames_caller(fr, sink->key, &outer);
    Py_XINCREF(caller);   /* Python code runs below: hold what the stack lends */
    PyObject *exc = PyErr_GetRaisedException_compat();
    PyObject *t0 = PyFloat_FromDouble(self->start);
    PyObject *where = PyLong_FromLong(at);
    PyObject *r = NULL;
    if (t0 != NULL && where != NULL && exc != NULL) {
        PyObject *argv[4] = {sink->key, t0, exc, where};
        r = PyObject_Vectorcall(sink->failed, argv, 4, NULL);
    }
    Py_XDECREF(t0);
    Py_XDECREF(where);
    if (r != NULL) {
        double duration = PyFloat_AsDouble(r);
        Py_DECREF(r);
        if (duration == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
        }
        else {
            steps_credit(self->idle, caller, duration - self->active);
        }
        Py_XDECREF(caller);
        PyErr_SetRaisedException_compat(exc);
        return;
    }
    Py_XDECREF(caller);
    PyObject *raised = PyErr_GetRaisedException_compat();
    if (raised == NULL) {
        PyErr_SetRaisedException_compat(exc);
        return;
    }
    if (exc != NULL) {
        PyException_SetContext(raised, exc);   /* steals exc */
    }
    PyErr_SetRaisedException_compat(raised);
}

/* One step: resume the inner object, timed, with the function on the thread's stack.
   Returns as PyIter_Send does. */
static PySendResult
steps_step(StepsObject *self, int how, PyObject *arg, PyObject **presult)
{
    PyObject *inner = self->inner;
    SinkObject *sink = self->sink;
    if (inner == NULL || sink == NULL || self->idle == NULL || !sink_ready(sink)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "callmetrics: tracking state was cleared");
        }
        *presult = NULL;
        return PYGEN_ERROR;
    }
    if (self->state == STEPS_DONE || self->running) {   /* the inner object answers */
        return steps_resume(inner, how, arg, presult);
    }
    if (self->state == STEPS_NEW && how == HOW_CLOSE) {   /* never started: no call */
        self->state = STEPS_DONE;
        return steps_resume(inner, how, arg, presult);
    }
    Frames *fr = frames_here();
    double began = monotonic_seconds();
    if (self->state == STEPS_NEW) {
        self->start = began;
        self->state = STEPS_STARTED;
    }
    self->running = 1;
    int at = frames_enter(fr, sink->key);
    Py_INCREF(self);   /* the step may drop every other reference to the proxy */
    PySendResult status = steps_resume(inner, how, arg, presult);
    double end = monotonic_seconds();
    self->running = 0;
    self->active += end - began;
    frames_leave(fr, at);
    if (status == PYGEN_NEXT) {
        Py_DECREF(self);
        return status;
    }
    self->state = STEPS_DONE;
    if (status == PYGEN_RETURN) {
        if (steps_end(self, fr, at, end) < 0) {
            Py_CLEAR(*presult);
            status = PYGEN_ERROR;
        }
    }
    else if (PyErr_ExceptionMatches(PyExc_GeneratorExit)) {   /* closed early: a success */
        steps_end_raised(self, fr, at, end);
    }
    else {
        steps_failed(self, fr, at);
    }
    Py_DECREF(self);
    return status;
}

/* A step's outcome as a method's result: a return raises StopIteration(value). */
static PyObject *
steps_answer(PySendResult status, PyObject *result)
{
    if (status == PYGEN_NEXT) {
        return result;
    }
    if (status == PYGEN_RETURN) {
        if (result == Py_None) {
            PyErr_SetNone(PyExc_StopIteration);
        }
        else {
            PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, result);
            if (stop != NULL) {
                PyErr_SetObject(PyExc_StopIteration, stop);
                Py_DECREF(stop);
            }
        }
        Py_DECREF(result);
    }
    return NULL;
}

static PySendResult
Steps_am_send(PyObject *self, PyObject *arg, PyObject **presult)
{
    return steps_step((StepsObject *)self, HOW_SEND, arg, presult);
}

static PyObject *
Steps_iternext(PyObject *self)
{
    PyObject *result;
    PySendResult status = steps_step((StepsObject *)self, HOW_SEND, Py_None, &result);
    if (status == PYGEN_RETURN && result == Py_None) {   /* exhausted: no exception needed */
        Py_DECREF(result);
        return NULL;
    }
    return steps_answer(status, result);
}

static PyObject *
Steps_send(PyObject *self, PyObject *value)
{
    PyObject *result;
    PySendResult status = steps_step((StepsObject *)self, HOW_SEND, value, &result);
    return steps_answer(status, result);
}

static PyObject *
Steps_throw(PyObject *self, PyObject *args)
{
    PyObject *result;
    PySendResult status = steps_step((StepsObject *)self, HOW_THROW, args, &result);
    return steps_answer(status, result);
}

static PyObject *
Steps_close(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *result;
    PySendResult status = steps_step((StepsObject *)self, HOW_CLOSE, NULL, &result);
    return status == PYGEN_ERROR ? NULL : result;
}

static PyObject *
Steps_await(PyObject *self)
{
    return Py_NewRef(self);
}

/* What the proxy does not answer itself, the original object does. */
static PyObject *
Steps_getattro(PyObject *op, PyObject *name)
{
    PyObject *found = PyObject_GenericGetAttr(op, name);
    if (found != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError)) {
        return found;
    }
    StepsObject *self = (StepsObject *)op;
    if (self->inner == NULL) {
        return NULL;
    }
    PyErr_Clear();
    return PyObject_GetAttr(self->inner, name);
}

static PyObject *
Steps_repr(StepsObject *self)
{
    if (self->inner == NULL) {
        return PyUnicode_FromFormat("<tracked %s at %p>", Py_TYPE(self)->tp_name, self);
    }
    return PyUnicode_FromFormat("<tracked %R>", self->inner);
}

static int
Steps_traverse(StepsObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->inner);
    Py_VISIT(self->sink);
    Py_VISIT(self->idle);
    return 0;
}

static int
Steps_clear(StepsObject *self)
{
    Py_CLEAR(self->inner);
    Py_CLEAR(self->sink);
    Py_CLEAR(self->idle);
    return 0;
}

/* Dropped while started: close it, as a generator is closed, so the call is recorded. */
static void
Steps_finalize(PyObject *op)
{
    StepsObject *self = (StepsObject *)op;
    if (self->state != STEPS_STARTED || self->running || self->inner == NULL) {
        return;
    }
    PyObject *saved = PyErr_GetRaisedException_compat();
    PyObject *result;
    if (steps_step(self, HOW_CLOSE, NULL, &result) == PYGEN_ERROR) {
        PyErr_WriteUnraisable(op);
    }
    else {
        Py_XDECREF(result);
    }
    PyErr_SetRaisedException_compat(saved);
}

static void
Steps_dealloc(PyObject *op)
{
    if (((StepsObject *)op)->state == STEPS_STARTED
        && PyObject_CallFinalizerFromDealloc(op) < 0) {
        return;   /* resurrected by its finalizer (the only one with work to do) */
    }
    PyObject_GC_UnTrack(op);
    Steps_clear((StepsObject *)op);
    Py_TYPE(op)->tp_free(op);
}
