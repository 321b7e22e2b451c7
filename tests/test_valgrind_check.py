"""scripts/valgrind_check.py: which memcheck reports count as errors of our C code."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def check() -> ModuleType:
    path = Path(__file__).parent.parent / "scripts" / "valgrind_check.py"
    spec = importlib.util.spec_from_file_location("valgrind_check", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["valgrind_check"] = module
    spec.loader.exec_module(module)
    return module


IN_OURS = """==1== Invalid read of size 8
==1==    at 0x1: Tracked_vectorcall (_speedups.c:335)
==1==    by 0x2: PyObject_Vectorcall (call.c:299)
==1==    by 0x3: _PyEval_EvalFrameDefault (ceval.c:4769)
"""
IN_PYTHON_WE_CALLED = """==1== Use of uninitialised value of size 8
==1==    at 0x1: _PyEval_EvalFrameDefault (ceval.c:2112)
==1==    by 0x2: PyObject_Vectorcall (call.c:299)
==1==    by 0x3: sink_success (_speedups.c:244)
==1==  Uninitialised value was created by a heap allocation
==1==    at 0x4: malloc (vgpreload_memcheck-amd64-linux.so)
==1==    by 0x5: pymain_init (main.c:67)
"""
CREATED_BY_OURS = """==1== Conditional jump or move depends on uninitialised value(s)
==1==    at 0x1: _PyEval_EvalFrameDefault (ceval.c:2112)
==1==  Uninitialised value was created by a heap allocation
==1==    at 0x4: malloc (vgpreload_memcheck-amd64-linux.so)
==1==    by 0x5: Sink_new (_speedups.c:120)
"""
LEAK_OURS = """==1== 48 bytes in 1 blocks are definitely lost in loss record 1 of 9
==1==    at 0x4: malloc (vgpreload_memcheck-amd64-linux.so)
==1==    by 0x6: PyFloat_FromDouble (floatobject.c:128)
==1==    by 0x7: sink_success (_speedups.c:190)
==1==    by 0x3: _PyEval_EvalFrameDefault (ceval.c:4769)
"""
NOT_SERIOUS = """==1== 16 bytes in 1 blocks are possibly lost in loss record 2 of 9
==1==    by 0x7: sink_success (_speedups.c:190)
"""


def test_errors_in_our_code_or_its_allocations_count(check: ModuleType) -> None:
    log = "\n".join([IN_OURS, IN_PYTHON_WE_CALLED, CREATED_BY_OURS, LEAK_OURS, NOT_SERIOUS])
    found = check.ours(check.error_blocks(log))
    assert [block.splitlines()[0] for block in found] == [
        "Invalid read of size 8",
        "Conditional jump or move depends on uninitialised value(s)",
        "48 bytes in 1 blocks are definitely lost in loss record 1 of 9",
    ]
