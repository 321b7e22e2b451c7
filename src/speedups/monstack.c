/* callmetrics._engine._speedups: the per-thread stacks of zero-code tracking's calls (3.12+).
 * Part of one translation unit: included by speedups.c right before monitor.c, never
 * compiled on its own.
 *
 * Each thread has a plain malloc'd stack of the tracked sync calls under way on it
 * (code, its Sink, the start, and the call's place on the attribution stack of
 * frames.c); a tracked code object carries its Sink in a code "extra" slot.  See
 * monitor.c for how the callbacks use them.
 */

#if PY_VERSION_HEX >= 0x030C0000

#include <pthread.h>
#include <stdlib.h>

#define MON_GEN_FLAGS (CO_GENERATOR | CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_ASYNC_GENERATOR)

static Py_ssize_t mon_extra = -1;   /* the code extra index holding a code's Sink */

static void
mon_free_sink(void *sink)
{
    Py_XDECREF((PyObject *)sink);
}

typedef struct {
    PyObject *code;     /* identity only (borrowed; the entry's sink keeps what matters) */
    SinkObject *sink;   /* strong */
    double start;
    int at;             /* where the call sits on the attribution stack (frames.c); -1: not */
} MonCall;

typedef struct {
    MonCall *calls;
    Py_ssize_t depth;
    Py_ssize_t capacity;
} MonStack;

/* One stack per thread, found by the thread's pthread id: the GIL-holding thread's
   stack is cached, so the common case is one pthread_self() and one comparison (a
   _Thread_local variable costs a __tls_get_addr call in a shared module).  The table
   only grows; an ended thread's empty stack is reused by a thread given its id. */
typedef struct {
    pthread_t owner;
    MonStack stack;
} MonThread;

static MonThread *mon_threads;
static Py_ssize_t mon_nthreads, mon_threads_capacity;
static pthread_t mon_cur_owner;
static MonStack *mon_cur;   /* the stack of mon_cur_owner, or NULL */

static MonStack *
mon_stack_switch(pthread_t me)
{
    for (Py_ssize_t i = 0; i < mon_nthreads; i++) {
        if (pthread_equal(mon_threads[i].owner, me)) {
            mon_cur_owner = me;
            return mon_cur = &mon_threads[i].stack;
        }
    }
    if (mon_nthreads == mon_threads_capacity) {
        Py_ssize_t capacity = mon_threads_capacity ? 2 * mon_threads_capacity : 8;
        MonThread *grown = realloc(mon_threads, (size_t)capacity * sizeof(MonThread));
        if (grown == NULL) {
            return NULL;
        }
        mon_threads = grown;
        mon_threads_capacity = capacity;
    }
    MonThread *made = &mon_threads[mon_nthreads++];
    made->owner = me;
    made->stack.calls = NULL;
    made->stack.depth = 0;
    made->stack.capacity = 0;
    mon_cur_owner = me;
    return mon_cur = &made->stack;
}

/* This thread's stack (NULL only when out of memory). */
static inline MonStack *
mon_stack(void)
{
    pthread_t me = pthread_self();
    if (mon_cur != NULL && pthread_equal(me, mon_cur_owner)) {
        return mon_cur;
    }
    return mon_stack_switch(me);
}

/* The Sink of `code` (borrowed), or NULL (untracked). */
static inline SinkObject *
mon_sink_of(PyObject *code)
{
    void *extra = NULL;
    if (mon_extra < 0 || PyUnstable_Code_GetExtra(code, mon_extra, &extra) < 0) {
        PyErr_Clear();
        return NULL;
    }
    return (SinkObject *)extra;
}

static int
mon_push(MonStack *st, PyObject *code, SinkObject *sink, double start, int at)
{
    if (st->depth == st->capacity) {
        Py_ssize_t capacity = st->capacity ? 2 * st->capacity : 64;
        MonCall *grown = realloc(st->calls, (size_t)capacity * sizeof(MonCall));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        st->calls = grown;
        st->capacity = capacity;
    }
    MonCall *call = &st->calls[st->depth++];
    call->code = code;
    call->sink = (SinkObject *)Py_NewRef(sink);
    call->start = start;
    call->at = at;
    return 0;
}

/* Pop the topmost call of `code` into *out (its sink reference passes to the caller);
   0 when `code` is not on the stack (then nothing is popped). */
static int
mon_pop(MonStack *st, PyObject *code, MonCall *out)
{
    Py_ssize_t at = st->depth - 1;
    while (at >= 0 && st->calls[at].code != code) {
        at--;
    }
    if (at < 0) {
        return 0;
    }
    *out = st->calls[at];
    for (Py_ssize_t i = at + 1; i < st->depth; i++) {   /* calls whose end was never seen */
        Py_DECREF(st->calls[i].sink);
    }
    st->depth = at;
    return 1;
}

#endif  /* PY_VERSION_HEX >= 0x030C0000 */
