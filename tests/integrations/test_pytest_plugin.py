"""The pytest plugin, run on real test sessions with ``pytester``."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from callmetrics import load
from callmetrics._store.runs import list_runs

pytest_plugins = ["pytester"]

TESTS = """
    import pytest
    from shop import price

    def test_ok():
        assert price(2) == 4

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_many(n):
        assert price(n) == 2 * n

    def test_fails():
        assert price(1) == 3

    @pytest.fixture
    def broken():
        raise RuntimeError("fixture broke")

    def test_errors(broken):
        pass

    @pytest.mark.skip(reason="not today")
    def test_skipped():
        pass

    @pytest.mark.xfail(reason="known bug")
    def test_known_bug():
        assert price(1) == 3
"""

SHOP = """
    def price(n):
        return 2 * n
"""


@pytest.fixture
def session(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_shop=textwrap.dedent(TESTS), shop=textwrap.dedent(SHOP))
    pytester.syspathinsert()
    return pytester


def test_off_unless_asked(session: pytest.Pytester) -> None:
    result = session.runpytest_subprocess()
    result.assert_outcomes(passed=4, failed=1, errors=1, skipped=1, xfailed=1)
    assert "plugins: callmetrics" in result.stdout.str()  # loaded by its entry point
    assert "- callmetrics -" not in result.stdout.str()  # and idle


def test_idle_without_the_option_registers_no_per_test_hook(pytester: pytest.Pytester) -> None:
    idle = pytester.parseconfigure()
    assert idle.pluginmanager.get_plugin("callmetrics-recorder") is None
    enabled = pytester.parseconfigure("--callmetrics")
    assert enabled.pluginmanager.get_plugin("callmetrics-recorder") is not None


def test_every_test_is_a_call_and_the_summary_is_printed(session: pytest.Pytester) -> None:
    store = session.path / "perf.db"
    result = session.runpytest_subprocess(f"--callmetrics={store}", "--callmetrics-label",
                                          "main", "--callmetrics-track", "shop")
    result.assert_outcomes(passed=4, failed=1, errors=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(["*- callmetrics -*", "Slowest 8 of 8 tests*",
                                 "*Duration*Outcome*Test*"])
    out = result.stdout.str()
    outcomes = {line.split()[-1]: line.split()[2] for line in out.splitlines()
                if "test_shop.py::" in line and len(line.split()) == 4}
    assert outcomes == {"test_shop.py::test_ok": "passed", "test_shop.py::test_many[1]": "passed",
                        "test_shop.py::test_many[2]": "passed",
                        "test_shop.py::test_many[3]": "passed",
                        "test_shop.py::test_fails": "failed",
                        "test_shop.py::test_errors": "error",
                        "test_shop.py::test_skipped": "skipped",
                        "test_shop.py::test_known_bug": "xfailed"}
    # Then the tracked functions, not one row per test.
    result.stdout.fnmatch_lines(["*callmetrics summary*", "*shop.price*"])
    summary = out[out.index("callmetrics summary"):out.index("short test summary")]
    assert "test_shop.py::" not in summary
    view = load(store, label="main")
    counts, successes = view.call_counts, view.success_counts
    tests = {name: n for name, n in counts.items() if name.startswith("test_shop.py::")}
    assert len(tests) == 8
    assert all(n == 1 for n in tests.values())
    assert successes["test_shop.py::test_fails"] == 0
    assert successes["test_shop.py::test_errors"] == 0
    assert successes["test_shop.py::test_many[2]"] == 1
    assert successes["test_shop.py::test_known_bug"] == 1  # xfailed: as expected
    assert successes["test_shop.py::test_skipped"] == 1
    assert counts["shop.price"] == 6  # the tracked function the tests called
    assert {c.event_type for c in view.retained() if c.name.startswith("test_")} == {"test"}
    errors = {c.name: c.error for c in view.retained() if c.error}
    assert errors == {"test_shop.py::test_fails": "TestFailed",
                      "test_shop.py::test_errors": "TestFailed"}
    with contextlib.closing(sqlite3.connect(store)) as conn:  # the messages, as stored
        stored = set(conn.execute("SELECT function, message FROM events WHERE error IS NOT NULL"))
    assert stored == {("test_shop.py::test_fails", "call failed"),
                      ("test_shop.py::test_errors", "setup errored")}
    runs = list_runs(store)
    assert [run.label for run in runs] == ["main"]


def test_two_sessions_are_two_runs_that_diff_compares(session: pytest.Pytester) -> None:
    store = session.path / "perf.db"
    for label in ("before", "after"):
        session.runpytest_subprocess(f"--callmetrics={store}", "--callmetrics-label", label,
                                     "--callmetrics-track", "shop")
    assert sorted(run.label or "" for run in list_runs(store)) == ["after", "before"]
    diff = subprocess.run([sys.executable, "-m", "callmetrics", "diff", str(store),
                           "--base", "before", "--head", "after", "--json"],
                          capture_output=True, text=True, check=False, timeout=120)
    assert diff.returncode == 0, diff.stderr
    rows = {row["function"]: row for row in json.loads(diff.stdout)["functions"]}
    tests = {name for name in rows if name.startswith("test_shop.py::")}
    assert len(tests) == 8  # every test of both sessions, side by side
    ok = rows["test_shop.py::test_ok"]
    assert (ok["event_type"], ok["base_calls"], ok["head_calls"]) == ("test", 1, 1)
    assert ok["ratio"] > 0  # one call a side: compared, too few to judge
    assert (rows["shop.price"]["base_calls"], rows["shop.price"]["head_calls"]) == (6, 6)


def test_without_a_store_only_the_summary(session: pytest.Pytester) -> None:
    result = session.runpytest_subprocess("--callmetrics")
    result.assert_outcomes(passed=4, failed=1, errors=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(["*- callmetrics -*", "Slowest 8 of 8 tests*",
                                 "No tracked function was called*"])
    assert not list(Path(session.path).glob("*.db"))


def test_top_sets_how_many_slow_tests_are_listed(session: pytest.Pytester) -> None:
    result = session.runpytest_subprocess("--callmetrics", "--callmetrics-top", "2")
    result.stdout.fnmatch_lines(["Slowest 2 of 8 tests*"])
    listed = [line for line in result.stdout.str().splitlines()
              if "test_shop.py::" in line and len(line.split()) == 4]
    assert len(listed) == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--callmetrics-label", "x", "--callmetrics"], "--callmetrics=STORE too"),
    (["--callmetrics", "."], "write --callmetrics=STORE"),
])
def test_usage_errors_are_named(session: pytest.Pytester, args: list[str],
                                message: str) -> None:
    result = session.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
