"""diff's rates on real runs, as benchmarks/diff_rates.py measures them, fewer times.

Real processes on the real (shared, noisy) machine: the workload's base run alone,
its head run beside a CPU-bound process; and back-to-back pytest-plugin sessions of
a real library's own suite.  The benchmark runs each scenario 20 (10) times and
quotes the rates; here a few repetitions with a margin for a loaded machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import callmetrics
from callmetrics._cli import main
from conftest import IN_CI
from rates_helpers import LIBRARY, library_session, library_source, workload_pair

# The gate's rates are a property of diff, measured on the hot path users run: the
# pure-Python path (CI's second pass) only makes each run slower and noisier.
pytestmark = pytest.mark.skipif(callmetrics.implementation != "c",
                                reason="diff's rates are measured with the C accelerator")


def diff_json(store: Path, base: str, head: str,
              capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["diff", str(store), "--base", base, "--head", head, "--json"])
    return code, json.loads(capsys.readouterr().out)["regressed"]


def test_the_same_workload_beside_a_cpu_hog_passes(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Same code, the head run beside a busy process: exit 0 in at least 3 of 4 pairs."""
    passed = 0
    for i in range(4):
        store = tmp_path / f"same-{i}.db"
        workload_pair(store)
        passed += diff_json(store, "base", "head", capsys)[0] == 0
    assert passed >= 3


def test_one_function_1_3_times_slower_is_named_alone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Function crunch doing 1.3x the work, beside a busy process: exit 1 naming it alone.

    The benchmark measures 19-20 pairs in 20 on a loaded 2-core machine (17-18 before
    diff left out each run's slower stretches); three of four here keeps this test
    from failing on such a machine more than about once in 50.
    """
    caught = 0
    for i in range(4):
        store = tmp_path / f"slow-{i}.db"
        workload_pair(store, slow="crunch", factor=1.3)
        caught += diff_json(store, "base", "head", capsys) == (1, ["crunch"])
    assert caught >= 3


def test_back_to_back_sessions_of_a_real_suite_name_at_most_one_function(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two pytest-plugin sessions of boltons' own suite, diffed both ways.

    The goal is exit 0 both ways every time, which the benchmark measures (10 pairs
    in 10; 7 before diff left out the runs' slower stretches and stopped gating
    functions called in one moment or apart from all others).  A single pair here
    asserts, with a margin for a loaded machine, at most two of the forty-odd
    functions named in each direction (one failed here once at a load average of 14
    on two cores; before the gate left out slower stretches, five or more).
    """
    source = library_source([sys.executable, "-m", "pip"])
    if source is None:
        message = f"pip could not fetch {LIBRARY}'s source distribution (no network?)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    store = tmp_path / "sessions.db"
    library_session(source, store, "a")
    library_session(source, store, "b")
    for base, head in (("a", "b"), ("b", "a")):
        code = main(["diff", str(store), "--base", base, "--head", head, "--json"])
        result = json.loads(capsys.readouterr().out)
        named, tested = result["regressed"], len(result["functions"])
        assert tested >= 20
        assert len(named) <= 2, named
        assert code == (1 if named else 0)
