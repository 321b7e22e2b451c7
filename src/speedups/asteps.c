/* callmetrics._engine._speedups: the step proxy of tracked async generators.
 * Part of one translation unit: included by speedups.c (after steps.c, before
 * stepping.c), never compiled on its own.
 *
 *   AsyncGenSteps  the proxy of an async generator: a StepsObject (steps.c) whose
 *             __aiter__ returns it and whose __anext__(), asend(v), athrow(...) and
 *             aclose() call the original's and return its awaitable in an AsyncStep.
 *   AsyncStep the awaitable: each time it is stepped (am_send, __next__, send, throw,
 *             close: the event loop resuming the generator) is one step, timed with
 *             the function on the thread's stack of tracked calls, as a coroutine's.
 *             (Their type objects are in stepping.c.)
 *
 * The call starts at the first step of any of its awaitables and ends at the step that
 * finishes the generator: StopAsyncIteration (it returned), GeneratorExit or a
 * completed aclose() (closed early: a success), or any other exception (a failure).
 * An awaitable's StopIteration is a value yielded: the call goes on.  Python lets one
 * awaitable at a time run the generator ("already running" otherwise): while one is
 * mid-way (`flying`), the others are the original's to answer, untimed.  A proxy
 * dropped while started is recorded then, as a success from untracked code; its
 * generator is released after, and the asyncgen hooks (asyncio's) finalize it as
 * they would have, its cleanup untimed.
 */

enum { AWAIT_NEXT, AWAIT_THROW, AWAIT_CLOSE };   /* what an AsyncStep does */
enum { GOES_ON, ENDED, FAILED };                  /* what its step did to the call */

typedef struct {
    PyObject_HEAD
    PyObject *inner;      /* the original's awaitable (__anext__, asend, athrow, aclose) */
    StepsObject *gen;     /* the proxy of the generator it resumes */
    int what;             /* AWAIT_NEXT (also asend), AWAIT_THROW or AWAIT_CLOSE */
    int flying;           /* it runs the generator: began, not completed */
    int done;             /* it completed: the original answers what follows */
} AStepObject;

static PyTypeObject AsyncStep_Type;
static PyTypeObject AsyncGenSteps_Type;
static PyObject *str_asend;     /* "asend" */
static PyObject *str_athrow;    /* "athrow" */
static PyObject *str_aclose;    /* "aclose" */
static PyObject *str_anext;     /* "__anext__" */
static PyObject *str_ag_frame;  /* "ag_frame" */
static PyObject *str_ag_running;  /* "ag_running" */

/* Whether the async generator has finished (its ag_frame is None); no error set. */
static int
agen_finished(PyObject *agen)
{
    PyObject *frame = PyObject_GetAttr(agen, str_ag_frame);
    if (frame == NULL) {
        PyErr_Clear();
        return 0;
    }
    int finished = frame == Py_None;
    Py_DECREF(frame);
    return finished;
}

/* Whether the async generator is still running (ag_running: after its awaitable was
   closed mid-way, it is on 3.11 and 3.12, and refuses every resume); no error set. */
static int
agen_running(PyObject *agen)
{
    PyObject *running = PyObject_GetAttr(agen, str_ag_running);
    if (running == NULL) {
        PyErr_Clear();
        return 0;
    }
    int answer = PyObject_IsTrue(running);
    Py_DECREF(running);
    if (answer < 0) {
        PyErr_Clear();
        return 0;
    }
    return answer;
}

/* What a step that completed the awaitable (`status` not PYGEN_NEXT) did to the call. */
static int
astep_outcome(AStepObject *self, int how, PySendResult status)
{
    if (status == PYGEN_RETURN) {
        if (how == HOW_CLOSE) {   /* the awaitable closed: the generator too on 3.13+ */
            return agen_finished(self->gen->inner) ? ENDED : GOES_ON;
        }
        return self->what == AWAIT_CLOSE ? ENDED : GOES_ON;   /* else: a value yielded */
    }
    if (PyErr_ExceptionMatches(PyExc_StopAsyncIteration)
        || PyErr_ExceptionMatches(PyExc_GeneratorExit)) {
        return ENDED;
    }
    return FAILED;
}

/* One step of the awaitable: resume it, timed, with the function on the thread's
   stack.  Returns as PyIter_Send does. */
static PySendResult
astep_step(AStepObject *self, int how, PyObject *arg, PyObject **presult)
{
    StepsObject *gen = self->gen;
    PyObject *inner = self->inner;
    if (inner == NULL || gen == NULL || gen->inner == NULL || gen->sink == NULL
        || gen->idle == NULL || !sink_ready(gen->sink)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "callmetrics: tracking state was cleared");
        }
        *presult = NULL;
        return PYGEN_ERROR;
    }
    if (self->done || gen->state == STEPS_DONE || gen->running
        || (gen->flying && !self->flying)) {   /* the original answers */
        return steps_resume(inner, how, arg, presult);
    }
    if (gen->state == STEPS_NEW && (how == HOW_CLOSE || self->what == AWAIT_CLOSE)) {
        /* closed before it started: no call */
        PySendResult status = steps_resume(inner, how, arg, presult);
        if (self->what == AWAIT_CLOSE || (status != PYGEN_ERROR && agen_finished(gen->inner))) {
            gen->state = STEPS_DONE;
        }
        return status;
    }
    SinkObject *sink = gen->sink;
    Frames *fr = frames_here();
    double began = monotonic_seconds();
    if (gen->state == STEPS_NEW) {
        gen->start = began;
        gen->state = STEPS_STARTED;
    }
    gen->running = 1;
    int at = frames_enter(fr, sink->key);
    Py_INCREF(self);   /* the step may drop every other reference to it (it holds gen) */
    PySendResult status = steps_resume(inner, how, arg, presult);
    double end = monotonic_seconds();
    gen->running = 0;
    gen->active += end - began;
    frames_leave(fr, at);
    if (status == PYGEN_NEXT) {   /* suspended in an await: this awaitable goes on */
        self->flying = 1;
        gen->flying = 1;
        Py_DECREF(self);
        return status;
    }
    self->flying = 0;
    gen->flying = 0;
    self->done = 1;
    int outcome = astep_outcome(self, how, status);
    if (outcome == GOES_ON && how == HOW_CLOSE) {   /* closed mid-way: maybe still running */
        gen->flying = agen_running(gen->inner);
    }
    if (outcome != GOES_ON) {
        gen->state = STEPS_DONE;
        if (outcome == FAILED) {
            steps_failed(gen, fr, at);
        }
        else if (status == PYGEN_ERROR) {   /* StopAsyncIteration or GeneratorExit */
            steps_end_raised(gen, fr, at, end);
        }
        else if (steps_end(gen, fr, at, end) < 0) {
            Py_CLEAR(*presult);
            status = PYGEN_ERROR;
        }
    }
    Py_DECREF(self);
    return status;
}

static PySendResult
AsyncStep_am_send(PyObject *self, PyObject *arg, PyObject **presult)
{
    return astep_step((AStepObject *)self, HOW_SEND, arg, presult);
}

static PyObject *
AsyncStep_iternext(PyObject *self)
{
    PyObject *result;
    PySendResult status = astep_step((AStepObject *)self, HOW_SEND, Py_None, &result);
    if (status == PYGEN_RETURN && result == Py_None) {   /* None yielded: no exception needed */
        Py_DECREF(result);
        return NULL;
    }
    return steps_answer(status, result);
}

static PyObject *
AsyncStep_send(PyObject *self, PyObject *value)
{
    PyObject *result;
    PySendResult status = astep_step((AStepObject *)self, HOW_SEND, value, &result);
    return steps_answer(status, result);
}

static PyObject *
AsyncStep_throw(PyObject *self, PyObject *args)
{
    PyObject *result;
    PySendResult status = astep_step((AStepObject *)self, HOW_THROW, args, &result);
    return steps_answer(status, result);
}

static PyObject *
AsyncStep_close(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *result;
    PySendResult status = astep_step((AStepObject *)self, HOW_CLOSE, NULL, &result);
    return status == PYGEN_ERROR ? NULL : result;
}

static PyObject *
AsyncStep_repr(AStepObject *self)
{
    if (self->inner == NULL) {
        return PyUnicode_FromFormat("<tracked %s at %p>", Py_TYPE(self)->tp_name, self);
    }
    return PyUnicode_FromFormat("<tracked %R>", self->inner);
}

static int
AsyncStep_traverse(AStepObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->inner);
    Py_VISIT(self->gen);
    return 0;
}

/* Dropped or cleared mid-way: the generator is no longer held by this awaitable. */
static int
AsyncStep_clear(AStepObject *self)
{
    if (self->flying && self->gen != NULL) {
        self->gen->flying = 0;
    }
    self->flying = 0;
    Py_CLEAR(self->inner);
    Py_CLEAR(self->gen);
    return 0;
}

static void
AsyncStep_dealloc(PyObject *op)
{
    PyObject_GC_UnTrack(op);
    AsyncStep_clear((AStepObject *)op);
    Py_TYPE(op)->tp_free(op);
}

/* An AsyncStep around `awaitable` (a new reference, stolen; NULL: an error is set). */
static PyObject *
astep_new(StepsObject *gen, PyObject *awaitable, int what)
{
    if (awaitable == NULL) {
        return NULL;
    }
    AStepObject *step = PyObject_GC_New(AStepObject, &AsyncStep_Type);
    if (step == NULL) {
        Py_DECREF(awaitable);
        return NULL;
    }
    step->inner = awaitable;   /* the reference handed over */
    step->gen = (StepsObject *)Py_NewRef(gen);
    step->what = what;
    step->flying = 0;
    step->done = 0;
    PyObject_GC_Track(step);
    return (PyObject *)step;
}

/* The original async generator of a proxy (borrowed); NULL with an error: cleared. */
static PyObject *
agen_inner(StepsObject *self)
{
    if (self->inner == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "callmetrics: tracking state was cleared");
    }
    return self->inner;
}

static PyObject *
AGen_anext(PyObject *op)
{
    StepsObject *self = (StepsObject *)op;
    PyObject *inner = agen_inner(self);
    if (inner == NULL) {
        return NULL;
    }
    PyAsyncMethods *am = Py_TYPE(inner)->tp_as_async;
    PyObject *awaitable = (am != NULL && am->am_anext != NULL)
        ? am->am_anext(inner) : PyObject_CallMethodNoArgs(inner, str_anext);
    return astep_new(self, awaitable, AWAIT_NEXT);
}

static PyObject *
AGen_asend(PyObject *op, PyObject *value)
{
    StepsObject *self = (StepsObject *)op;
    PyObject *inner = agen_inner(self);
    if (inner == NULL) {
        return NULL;
    }
    return astep_new(self, PyObject_CallMethodOneArg(inner, str_asend, value), AWAIT_NEXT);
}

static PyObject *
AGen_athrow(PyObject *op, PyObject *args)
{
    StepsObject *self = (StepsObject *)op;
    PyObject *inner = agen_inner(self);
    if (inner == NULL) {
        return NULL;
    }
    PyObject *meth = PyObject_GetAttr(inner, str_athrow);
    if (meth == NULL) {
        return NULL;
    }
    PyObject *awaitable = PyObject_Call(meth, args, NULL);
    Py_DECREF(meth);
    return astep_new(self, awaitable, AWAIT_THROW);
}

static PyObject *
AGen_aclose(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    StepsObject *self = (StepsObject *)op;
    PyObject *inner = agen_inner(self);
    if (inner == NULL) {
        return NULL;
    }
    return astep_new(self, PyObject_CallMethodNoArgs(inner, str_aclose), AWAIT_CLOSE);
}

/* Dropped while started: its call ends now, a success with no caller (the generator,
   released next, is finalized by Python and the asyncgen hooks, untimed). */
static void
AGen_finalize(PyObject *op)
{
    StepsObject *self = (StepsObject *)op;
    if (self->state != STEPS_STARTED || self->running || self->sink == NULL
        || self->idle == NULL) {
        return;
    }
    PyObject *saved = PyErr_GetRaisedException_compat();
    self->state = STEPS_DONE;
    if (!sink_ready(self->sink)
        || steps_end(self, frames_here(), -1, monotonic_seconds()) < 0) {
        PyErr_WriteUnraisable(op);
    }
    PyErr_SetRaisedException_compat(saved);
}
