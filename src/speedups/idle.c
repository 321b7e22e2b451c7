/* callmetrics._engine._speedups: Idle, a function's suspended seconds (see steps.c).
 * Part of one translation unit: included by speedups.c (before steps.c), never compiled
 * on its own. */

typedef struct {
    PyObject_HEAD
    double inactive;
    double gap;
} IdleObject;

static PyTypeObject Idle_Type;
static PyObject *str_idle;    /* "idle" */
static PyObject *str_throw;   /* "throw" */
static PyObject *str_close;   /* "close" */

static PyObject *
Idle_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, ":Idle", kwlist)) {
        return NULL;
    }
    return type->tp_alloc(type, 0);   /* zeroed: both sums start at 0.0 */
}

static PyMemberDef Idle_members[] = {
    {"inactive", T_DOUBLE, offsetof(IdleObject, inactive), 0,
     "Seconds the function's coroutine/generator calls were suspended."},
    {"gap", T_DOUBLE, offsetof(IdleObject, gap), 0,
     "inactive less the suspended seconds of the tracked calls it made directly."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject Idle_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "callmetrics._engine._speedups.Idle",
    .tp_basicsize = sizeof(IdleObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Idle(): a function's suspended seconds (see callmetrics._engine.steps).",
    .tp_members = Idle_members,
    .tp_new = Idle_new,
};

/* Credit `inactive` seconds of a call that ended to its function, and take them off
   its nearest tracked caller's gap (borrowed; NULL: none).  Never fails: a caller
   without an Idle (not a FunctionStats) is skipped. */
static void
steps_credit(IdleObject *idle, PyObject *caller, double inactive)
{
    idle->inactive += inactive;
    idle->gap += inactive;
    if (caller == NULL || inactive == 0.0) {
        return;
    }
    PyObject *theirs = PyObject_GetAttr(caller, str_idle);
    if (theirs == NULL) {
        PyErr_Clear();
        return;
    }
    if (Py_IS_TYPE(theirs, &Idle_Type)) {
        ((IdleObject *)theirs)->gap -= inactive;
    }
    Py_DECREF(theirs);
}
