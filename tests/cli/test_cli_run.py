"""``callmetrics run``: a real program run unchanged in a subprocess, its functions tracked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from callmetrics import load
from callmetrics._cli import main

HELPERS = """
def double(x):
    return 2 * x

class Counter:
    def __init__(self):
        self.n = 0

    def add(self, k):
        self.n += k
        return self.n
"""

PROGRAM = """
import sys
import threading
from helpers import Counter, double

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def work(i):
    if i % 4 == 3:
        raise ValueError(f"bad {i}")
    return double(i)

def main():
    line = sys.stdin.readline().strip()
    print("argv:", sys.argv[1:], "name:", __name__, "stdin:", line)
    counter = Counter()
    for i in range(8):
        try:
            counter.add(work(i))
        except ValueError:
            pass
    print("fib:", fib(7), "total:", counter.n)
    worker = threading.Thread(target=lambda: [double(i) for i in range(5)])
    worker.start()
    if "--crash" in sys.argv:
        raise RuntimeError("crashed on purpose")
    return int(sys.argv[-1]) if sys.argv[-1].isdigit() else 0

if __name__ == "__main__":
    sys.exit(main())
"""


@pytest.fixture
def program(tmp_path: Path) -> Path:
    folder = tmp_path / "prog"
    folder.mkdir()
    (folder / "helpers.py").write_text(textwrap.dedent(HELPERS))
    script = folder / "prog.py"
    script.write_text(textwrap.dedent(PROGRAM))
    return script


def _python(*args: str | Path, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("CALLMETRICS_RUN_LABEL", None)
    return subprocess.run([sys.executable, *map(str, args)], input=stdin, capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120, check=False)


def test_behaves_like_python_and_tracks_the_programs_functions(program: Path,
                                                               tmp_path: Path) -> None:
    plain = _python(program, "a", "b", "3", cwd=tmp_path, stdin="hello\n")
    store = tmp_path / "runs.db"
    tracked = _python("-m", "callmetrics", "run", "--store", store, "--label", "v1",
                      "--report", tmp_path / "r.html", program, "a", "b", "3",
                      cwd=tmp_path, stdin="hello\n")
    assert plain.returncode == 3
    assert tracked.returncode == 3
    assert tracked.stdout == plain.stdout  # the program's output, untouched
    assert "argv: ['a', 'b', '3'] name: __main__ stdin: hello" in plain.stdout
    assert "fib" in tracked.stderr  # the summary goes to stderr
    assert (tmp_path / "r.html").is_file()
    view = load(store, label="v1")
    counts, successes = view.call_counts, view.success_counts
    assert counts["fib"] == 41
    assert counts["work"] == 8
    assert successes["work"] == 6
    assert counts["helpers.double"] == 6 + 5  # the non-daemon thread's calls are in too
    assert counts["helpers.Counter.add"] == 6
    assert counts["helpers.Counter.__init__"] == 1
    assert counts["main"] == 1


def test_an_uncaught_exception_shows_pythons_traceback(program: Path) -> None:
    """Run by a relative path, as people do: the same file names, lines and exit code."""
    where = program.parent
    plain = _python("./prog.py", "--crash", cwd=where, stdin="x\n")
    tracked = _python("-m", "callmetrics", "run", "--report", "", "./prog.py", "--crash",
                      cwd=where, stdin="x\n")
    assert plain.returncode == tracked.returncode == 1
    expected = plain.stderr[plain.stderr.index("Traceback"):]
    assert f'File "{where}/./prog.py", line' in expected  # python's own spelling
    assert tracked.stderr.startswith(expected)  # then the summary
    assert "callmetrics" not in expected
    assert "argv: ['--crash'] name: __main__" in tracked.stdout


PROGRAM_FACTS = """
import sys

def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)

print(__file__, sys.argv, sys.path[0], __name__, __package__, __spec__)
print(depth(700))  # past half python's limit (1,000): each tracked level is 2 frames
# (Not 990: on 3.12, CPython also counts each call through a C wrapper against its
# fixed C recursion limit, about 800 there; see the README.)
sys.exit("stopped: " + sys.argv[-1])
"""


def test_file_argv_path_recursion_and_exit_message_are_pythons(tmp_path: Path) -> None:
    """``__file__``, ``sys.argv``, ``sys.path[0]``, how deep it recurses, ``sys.exit(str)``."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "facts.py").write_text(PROGRAM_FACTS)
    args = ("../facts.py", "x y")
    plain = _python(*args, cwd=tmp_path / "sub")
    tracked = _python("-m", "callmetrics", "run", "--exact", "--report", "", *args,
                      cwd=tmp_path / "sub")
    assert plain.returncode == tracked.returncode == 1
    assert tracked.stdout == plain.stdout
    assert plain.stdout.startswith(f"{tmp_path}/sub/../facts.py ['../facts.py', 'x y'] "
                                   f"{tmp_path} __main__ None None\n")
    assert plain.stderr == "stopped: x y\n"
    assert tracked.stderr.startswith(plain.stderr)
    assert "depth " in tracked.stderr  # every level was tracked (--exact)


def test_run_a_module_with_dash_m(tmp_path: Path) -> None:
    pkg = tmp_path / "tool"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "core.py").write_text("def square(x):\n    return x * x\n")
    (pkg / "__main__.py").write_text(textwrap.dedent("""
        import sys
        from tool.core import square

        def cli(args):
            print(sys.argv[1:], __name__, [square(int(a)) for a in args])

        cli(sys.argv[1:])
    """))
    store = tmp_path / "m.db"
    plain = _python("-m", "tool", "2", "3", cwd=tmp_path)
    tracked = _python("-m", "callmetrics", "run", "--store", store, "--report", "",
                      "-m", "tool", "2", "3", cwd=tmp_path)
    assert tracked.returncode == plain.returncode == 0, tracked.stderr
    assert tracked.stdout == plain.stdout == "['2', '3'] __main__ [4, 9]\n"
    assert load(store).call_counts == {"cli": 1, "tool.core.square": 2}


DEFAULT_SIGINT_THEN_EXEC = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)  # kept across exec, unlike a handler
os.execv(sys.argv[1], sys.argv[1:])
"""


def test_ctrl_c_stops_the_program_and_keeps_what_was_recorded(tmp_path: Path) -> None:
    script = tmp_path / "forever.py"
    script.write_text(textwrap.dedent("""
        import time

        def step(i):
            return i + 1

        def loop():
            i = 0
            while True:
                i = step(i)
                if i == 100:
                    print("ready", flush=True)
                time.sleep(0.001)

        loop()
    """))
    store = tmp_path / "int.db"
    # As from an interactive shell: SIGINT at its default, whatever this process has
    # (a job started in the background by a non-interactive shell ignores SIGINT, and
    # python then installs no KeyboardInterrupt handler at all).
    command = [sys.executable, "-m", "callmetrics", "run", "--store", str(store),
               "--report", "", str(script)]
    proc = subprocess.Popen([sys.executable, "-c", DEFAULT_SIGINT_THEN_EXEC, *command],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    # As python ends: killed by SIGINT once its exit handlers ran (a shell says 130 and,
    # seeing the signal, stops a loop that runs the program too).
    assert proc.returncode == -signal.SIGINT
    assert "KeyboardInterrupt" in err
    counts = load(store).call_counts
    assert counts["step"] >= 100
    assert counts["loop"] == 1


def test_track_and_exclude_choose_the_modules(program: Path, tmp_path: Path) -> None:
    store = tmp_path / "x.db"
    tracked = _python("-m", "callmetrics", "run", "--store", store, "--report", "",
                      "--exclude", "helpers", program, cwd=tmp_path, stdin="\n")
    assert tracked.returncode == 0, tracked.stderr
    names = set(load(store).call_counts)
    assert "fib" in names
    assert not any(name.startswith("helpers.") for name in names)


@pytest.mark.parametrize(("argv", "message"), [
    (["run"], "give a SCRIPT"),
    (["run", "--"], "give a SCRIPT"),
    (["run", "missing.py"], "no such file"),
    (["run", "--label", "x", "prog.py"], "--store"),
])
def test_bad_invocations_fail_in_one_line(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prog.py").write_text("")
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_file_that_is_not_a_store_is_refused_before_running(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a store")
    script = tmp_path / "s.py"
    script.write_text("print('ran')\n")
    result = _python("-m", "callmetrics", "run", "--store", bad, script, cwd=tmp_path)
    assert result.returncode == 2
    assert "ran" not in result.stdout
    assert bad.read_text() == "not a store"


PYTEST_PROJECT = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        filterwarnings = ["error"]

        [tool.callmetrics]
        track = ["mylib"]
        max-events = 5
        report = ""
    """,
    "mylib.py": """
        def add(a, b):
            return a + b
    """,
    "test_mylib.py": """
        from mylib import add

        def test_add():
            assert add(1, 2) == 3

        def test_many():
            assert [add(i, 1) for i in range(9)][-1] == 9
    """,
}


@pytest.fixture
def pytest_project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    for name, text in PYTEST_PROJECT.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def test_pytest_runs_under_callmetrics_with_warnings_as_errors(pytest_project: Path) -> None:
    """Pytest must not see callmetrics (imported first) as a plugin it failed to rewrite."""
    plain = _python("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=pytest_project)
    store = pytest_project / "runs.db"
    tracked = _python("-m", "callmetrics", "run", "--store", store, "-m", "pytest", "-q",
                      "-p", "no:cacheprovider", cwd=pytest_project)
    assert plain.returncode == tracked.returncode == 0, tracked.stdout + tracked.stderr
    assert "2 passed" in tracked.stdout
    assert "PytestAssertRewriteWarning" not in tracked.stdout + tracked.stderr
    view = load(store)
    assert view.call_counts == {"mylib.add": 10}  # track = ["mylib"] from pyproject.toml
    assert len(view.events) == 5  # max-events = 5 from pyproject.toml
    assert not (pytest_project / "analytics").exists()  # report = "" from pyproject.toml
    with_plugin = _python("-m", "pytest", "-q", "-p", "no:cacheprovider", "--callmetrics",
                          cwd=pytest_project)
    assert with_plugin.returncode == 0, with_plugin.stdout
    assert "test_mylib.py::test_add" in with_plugin.stdout


def test_the_command_line_overrides_pyproject_and_bad_settings_fail_early(
        pytest_project: Path) -> None:
    (pytest_project / "prog.py").write_text("from mylib import add\nprint(add(1, 1))\n")
    both = _python("-m", "callmetrics", "run", "--max-events", "1", "--track", "prog*",
                   "--no-report", "prog.py", cwd=pytest_project)
    assert both.returncode == 0, both.stderr
    assert both.stdout == "2\n"
    assert "mylib.add" not in both.stderr  # --track replaced pyproject's track
    bad = _python("-m", "callmetrics", "run", "--max-events", "-1", "prog.py",
                  cwd=pytest_project)
    assert bad.returncode == 2
    assert "--max-events" in bad.stderr
    assert bad.stdout == ""  # the program never started
    config = pytest_project / "pyproject.toml"
    for line, field in (("max-functions = 'many'", "max-functions"),
                        ("trakc = ['x']", "trakc"), ("exact = 1", "exact")):
        config.write_text(textwrap.dedent(PYTEST_PROJECT["pyproject.toml"]) + line + "\n")
        failed = _python("-m", "callmetrics", "run", "prog.py", cwd=pytest_project)
        assert failed.returncode == 2, field
        assert field in failed.stderr
        assert str(config) in failed.stderr
        assert failed.stdout == ""


def test_the_exit_report_runs_no_full_garbage_collection(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """At exit the process ends: the report of many retained calls skips ``gc.collect()``."""
    import gc  # noqa: PLC0415  # only this test watches the collector

    from callmetrics import Analytics, AnalyticsConfig  # noqa: PLC0415
    from callmetrics._cli.run import _finish, _Run  # noqa: PLC0415  # the exit handler itself

    analytics = Analytics(AnalyticsConfig(max_events=6_000))
    job = analytics.track("work", name="job")(lambda: None)
    for _ in range(Analytics.GC_COLLECTION_THRESHOLD + 1):
        job()
    collections: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            collections.append(1)

    gc.disable()  # only an explicit collection may run
    gc.callbacks.append(watch)
    try:
        _finish(_Run(analytics, tmp_path / "report.html"))
    finally:
        gc.callbacks.remove(watch)
        gc.enable()
    assert (tmp_path / "report.html").is_file()
    assert "HTML report" in capsys.readouterr().err
    assert collections == []
