"""``callmetrics run [options] (SCRIPT | -m MODULE) [ARGS...]``: track a program unchanged.

The program runs in this process as ``python SCRIPT`` / ``python -m MODULE`` would
run it: same ``sys.argv``, ``__main__``, standard streams, exit code and traceback.
The functions of its own modules are tracked (see ``_instrument``); at exit the
summary goes to stderr (the program's stdout stays its own), the HTML report is
written, and with ``--store`` the run is saved.  Ctrl-C stops the program and the
calls recorded so far are still summarised, reported and stored; the process then
ends as python's does, killed by SIGINT (so that a shell loop around it stops too).
"""

from __future__ import annotations

import argparse
import atexit
import builtins
import contextlib
import os
import runpy
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics
    from callmetrics._zerocode.instrument import Instrumentation
    from callmetrics._zerocode.monitored import MonitoredInstrumentation
    from callmetrics._zerocode.prune import Pruner

__all__ = ["add_commands", "run_program"]

_RUNPY = os.path.realpath(runpy.__file__)
_FROZEN_RUNPY = "<frozen runpy>"  # runpy's frames' file name when it is frozen (3.11+)
_HERE = str(Path(__file__).resolve().parents[1])
_INTERRUPTED = 130  # what a shell reports for a program stopped by SIGINT
# Frames of ours under the program's first one (launcher, CLI, runpy): room for them.
_OUR_FRAMES = 50


class _Run:
    """What the exit handler needs: the instance, the report's path, the pruner if any."""

    def __init__(self, analytics: Analytics, report: Path | None) -> None:
        self.analytics = analytics
        self.report = report
        self.pruner: Pruner | None = None
        self.inst: Instrumentation | MonitoredInstrumentation | None = None
        self.interrupted = False  # the program stopped on KeyboardInterrupt (Ctrl-C)


def _dropped_note(pruner: Pruner, counts: dict[str, int]) -> str:
    from callmetrics._format import count, duration, printable  # noqa: PLC0415

    shown = ", ".join(f"{printable(name)} (median {duration(median)}, tracked for its first "
                      f"{count(counts.get(name, calls))} calls)"
                      for name, (calls, median) in sorted(pruner.dropped.items())[:10])
    more = len(pruner.dropped) - 10
    return (f"callmetrics: stopped tracking {len(pruner.dropped)} function(s) whose median call "
            f"took under {duration(pruner.below)}, where tracking would cost more than the "
            f"call: {shown}{f' and {more} more' if more > 0 else ''}. Their counts stop there; "
            "--exact tracks every call.")


def _finish(run: _Run) -> None:
    """Summarise to stderr, write the report, close the store; never raise."""
    from rich.console import Console  # noqa: PLC0415  # loads rich only at exit

    from callmetrics._cli.common import collector_paused  # noqa: PLC0415  # _cli imports this module
    from callmetrics._format import printable  # noqa: PLC0415

    analytics, report = run.analytics, run.report
    err = Console(stderr=True)
    try:
        if run.pruner is not None:
            run.pruner.stop()
        if run.inst is not None:
            run.inst.flush()  # generators closed without an event (see _zerocode.monitor)
        analytics.print_summary(err)
        if run.pruner is not None and run.pruner.dropped:
            print(_dropped_note(run.pruner, analytics.call_counts), file=sys.stderr)
        if report is not None:
            # The process ends: nothing to give back.  The report reads the settings.
            analytics.enable_gc_collect = False
            analytics.settings = analytics.settings.replace(enable_gc_collect=False)
            with collector_paused():  # its many new objects make no garbage cycle to find
                written = analytics.generate_reports(force_mode=True, path=report)
            if written is not None:
                print(f"callmetrics: HTML report: {printable(str(written.resolve()))}",
                      file=sys.stderr)
        analytics.close()
    except Exception as exc:  # noqa: BLE001  # the program's own exit status must stand
        print(f"callmetrics: could not finish the run ({type(exc).__name__}: "
              f"{printable(str(exc))})", file=sys.stderr)
    if run.interrupted:
        _end_as_interrupted()


def _end_as_interrupted() -> None:
    """Have the interpreter end the process by SIGINT, as python does after Ctrl-C.

    CPython (3.8+) finishes its exit handlers and then kills itself with SIGINT when
    the last code it ran from source ended with an uncaught ``KeyboardInterrupt``;
    each ``exec`` of a string (a ``namedtuple`` made while the report is written, say)
    resets that flag.  One more ``KeyboardInterrupt``, raised the same way and caught,
    sets it again.  Called last, at exit.
    """
    with contextlib.suppress(KeyboardInterrupt):
        exec("raise KeyboardInterrupt")  # noqa: S102  # a fixed statement: sets the flag above


def _without_our_frames(exc: BaseException, seen: set[int] | None = None) -> BaseException:
    """Drop callmetrics' and runpy's frames from the traceback, as ``python`` shows none.

    Chained exceptions (``__cause__``, ``__context__``) are cleaned the same way.
    """
    seen = set() if seen is None else seen
    if id(exc) in seen:
        return exc
    seen.add(id(exc))
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        filename = os.path.realpath(tb.tb_frame.f_code.co_filename)
        if not (filename.startswith(_HERE) or filename == _RUNPY
                or tb.tb_frame.f_code.co_filename == _FROZEN_RUNPY):
            frames.append(tb)
        tb = tb.tb_next
    rebuilt: types.TracebackType | None = None
    for tb in reversed(frames):
        rebuilt = types.TracebackType(rebuilt, tb.tb_frame, tb.tb_lasti, tb.tb_lineno)
    exc.__traceback__ = rebuilt
    for chained in (exc.__cause__, exc.__context__):
        if chained is not None:
            _without_our_frames(chained, seen)
    return exc


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    with contextlib.suppress(Exception):  # what python does: print the object, status 1
        print(code, file=sys.stderr)
    return 1


def _main_code(source: bytes, filename: str, inst: Instrumentation | MonitoredInstrumentation,
               main: types.ModuleType) -> types.CodeType:
    """The script's code: unchanged with its functions tracked (sys.monitoring), or hooked."""
    from callmetrics._zerocode.hooks import MAIN_HOOK, MainHook, main_code  # noqa: PLC0415
    from callmetrics._zerocode.monitored import MonitoredInstrumentation  # noqa: PLC0415

    if isinstance(inst, MonitoredInstrumentation):
        code = compile(source, filename, "exec", dont_inherit=True)
        return inst.prepare(code, "__main__") if inst.matcher("__main__", None) else code
    main.__dict__[MAIN_HOOK] = MainHook(inst)
    return main_code(source, filename)


def _run_script(target: str, args: list[str],
                inst: Instrumentation | MonitoredInstrumentation) -> None:
    from importlib.machinery import SourceFileLoader  # noqa: PLC0415

    source = Path(target).read_bytes()
    # python (3.9+) names its main script by the path joined to the working directory,
    # unnormalised: the program's __file__ and tracebacks read the same here.
    filename = target if os.path.isabs(target) else os.path.join(os.getcwd(), target)  # noqa: PTH109, PTH117, PTH118  # exactly python's join, which Path would normalise
    main = types.ModuleType("__main__")
    main.__file__ = filename
    main.__loader__ = SourceFileLoader("__main__", filename)
    main.__dict__.update(__builtins__=builtins, __spec__=None, __cached__=None,
                         __package__=None)
    code = _main_code(source, filename, inst, main)
    sys.modules["__main__"] = main
    sys.argv[:] = [target, *args]
    sys.path[0] = str(Path(target).resolve().parent)
    exec(code, main.__dict__)  # noqa: S102  # running the user's program is the point


def _run_module(name: str, args: list[str],
                inst: Instrumentation | MonitoredInstrumentation) -> None:
    from callmetrics._zerocode.hooks import MAIN_HOOK, MainHook, run_targets  # noqa: PLC0415
    from callmetrics._zerocode.monitored import MonitoredInstrumentation  # noqa: PLC0415

    run_targets((name, f"{name}.__main__"))
    sys.argv[:] = [name, *args]  # runpy puts the module's file in argv[0]
    sys.path[0] = str(Path.cwd())
    hooks = None if isinstance(inst, MonitoredInstrumentation) else {MAIN_HOOK: MainHook(inst)}
    runpy.run_module(name, init_globals=hooks, run_name="__main__", alter_sys=True)


def _room_for_wrappers() -> None:
    """Raise the recursion limit so that the program recurses as deep as under python.

    A pure-Python wrapper runs a Python frame of its own under each tracked call, and
    callmetrics' own frames sit under the program's.  The C wrapper of a sync
    function has no frame: there the limit is left as the program set it (as it reads
    it); generator and coroutine wrappers still have one (see the README).
    """
    from callmetrics._engine.accel import IMPLEMENTATION  # noqa: PLC0415  # keep --help fast

    if IMPLEMENTATION != "c":
        sys.setrecursionlimit(2 * sys.getrecursionlimit() + _OUR_FRAMES)


def run_program(run: _Run, target: str, args: list[str], *, module: bool,
                track: list[str], exclude: list[str], exact: bool = False) -> int:
    """Run the program with its functions tracked; return its exit code."""
    from callmetrics._zerocode.instrument import (  # noqa: PLC0415
        Instrumentation,
        Matcher,
        make_instrumentation,
        start,
    )
    from callmetrics._zerocode.prune import Pruner  # noqa: PLC0415

    if module:
        top = target.split(".", maxsplit=1)[0]
        matcher = Matcher(["__main__", *(track or [top, f"{top}.*"])], exclude)
    else:
        roots = [] if track else [Path(target).resolve().parent]
        matcher = Matcher(["__main__", *track], exclude, roots)
    inst = run.inst = make_instrumentation(run.analytics, matcher, "function")
    start(inst)
    if isinstance(inst, Instrumentation):  # sys.monitoring adds no frame
        _room_for_wrappers()
    if not exact:
        run.pruner = Pruner(run.analytics, inst)
        run.pruner.start()
    try:
        if module:
            _run_module(target, args, inst)
        else:
            _run_script(target, args, inst)
    except SystemExit as exc:
        return _exit_code(exc)
    except BaseException as exc:  # noqa: BLE001  # shown as python shows an uncaught one
        _without_our_frames(exc)
        sys.excepthook(type(exc), exc, exc.__traceback__)
        if isinstance(exc, KeyboardInterrupt):
            run.interrupted = True  # _finish ends the process by SIGINT, as python would
            return _INTERRUPTED
        return 1
    return 0


_DEFAULT_REPORT = "analytics/analytics_full.html"


def _settings(args: argparse.Namespace) -> dict[str, int | bool]:
    """Fill defaults from pyproject.toml's [tool.callmetrics]; return the instance's limits."""
    from callmetrics._cli.run_config import apply_config  # noqa: PLC0415  # only for run

    apply_config(args, Path.cwd())
    if args.no_report:
        args.report = ""
    elif args.report is None:
        args.report = _DEFAULT_REPORT
    limits = {field: getattr(args, field) for field in ("max_events", "max_functions")
              if getattr(args, field) is not None}
    return {**limits, "cpu_time": True} if args.cpu_time else limits


def _run(args: argparse.Namespace) -> int:
    from callmetrics._cli.common import CliError  # noqa: PLC0415  # _cli imports this module

    limits = _settings(args)
    if args.target[:1] == ["--"]:  # `callmetrics run -- prog.py`: the options end there
        args.target = args.target[1:]
    if not args.target:
        raise CliError("give a SCRIPT, or -m MODULE, to run")
    if args.label is not None and args.store is None:
        raise CliError("--label names the stored run: give --store too")
    target, rest = args.target[0], args.target[1:]
    if not args.module and not Path(target).is_file():
        raise CliError(f"can't open file {target!r}: no such file")
    try:
        from callmetrics._session import make_analytics  # noqa: PLC0415  # keep --help fast

        analytics = make_analytics(args.store, args.label, limits)
    except (OSError, ValueError, TypeError) as exc:
        message = str(exc)
        for field in limits:  # name the option, not the config field behind it
            message = message.replace(f"AnalyticsConfig.{field}",
                                      f"--{field.replace('_', '-')}")
        raise CliError(message) from None
    except Exception as exc:
        if type(exc).__name__ == "StoreError":
            raise CliError(str(exc)) from None
        raise
    # At interpreter exit, after the program's non-daemon threads and its own atexit
    # handlers (atexit runs last-registered first), so every call is in.
    # The report's path is fixed now: the program may change directory.
    if args.expected:
        analytics.ends.expect_named(frozenset(args.expected))
    run = _Run(analytics, None if args.report == "" else Path(args.report).resolve())
    atexit.register(_finish, run)
    return run_program(run, target, rest, module=args.module, track=args.track or [],
                       exclude=args.exclude or [], exact=args.exact)


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``run`` to the CLI."""
    run = commands.add_parser(
        "run", help="run a Python program, tracking its own functions without changing it",
        description="Run SCRIPT (or -m MODULE) as python would, tracking every function and "
                    "method of the program's own modules. At exit the summary goes to stderr, "
                    "the HTML report is written and, with --store, the run is saved.")
    run.add_argument("--track", action="append", metavar="PATTERN",
                     help="track modules matching this glob (e.g. 'myapp.*'; repeatable); "
                          "default: the script's folder, or the -m module's top package")
    run.add_argument("--exclude", action="append", metavar="PATTERN",
                     help="do not track modules matching this glob (repeatable)")
    run.add_argument("--store", metavar="PATH", help="also save the run into this SQLite store")
    run.add_argument("--label", help="the stored run's label (with --store)")
    run.add_argument("--report", metavar="PATH",
                     help=f"where to write the HTML report (default {_DEFAULT_REPORT}; "
                          "'' for none)")
    run.add_argument("--no-report", action="store_true", help="write no HTML report")
    run.add_argument("--max-events", type=int, metavar="N",
                     help="keep the newest N calls for the report's timeline (default 10000; "
                          "0: all)")
    run.add_argument("--max-functions", type=int, metavar="N",
                     help="record at most N function names; later ones are counted together "
                          "(default 10000; 0: no cap)")
    run.add_argument("--exact", action="store_true",
                     help="keep tracking every call of every function; by default a function "
                          "whose median call takes under 5 us is no longer tracked after its "
                          "first 1,000 calls (tracking it would cost more than the call)")
    run.add_argument("--cpu-time", action="store_true",
                     help="also measure each call's thread CPU time (sync functions; costs a "
                          "few microseconds a call, and tracks by wrapping on 3.12+)")
    run.add_argument("--expected", action="append", metavar="EXC",
                     help="an exception the program raises as part of its normal work "
                          "(KeyError, or module.Class; subclasses too; repeatable): a call "
                          "raising it counts as a success noted 'expected EXC'")
    run.add_argument("-m", dest="module", action="store_true",
                     help="run a module, as python -m does (the next argument names it)")
    run.add_argument("target", nargs=argparse.REMAINDER, metavar="SCRIPT|MODULE [ARGS...]",
                     help="the program and its arguments")
    run.set_defaults(handler=_run)
    run.epilog = ("Defaults for these options may be written once in pyproject.toml's "
                  "[tool.callmetrics] table (track, exclude, store, label, max-events, "
                  "max-functions, report, exact, expected, cpu-time); the command line "
                  "overrides them.")
