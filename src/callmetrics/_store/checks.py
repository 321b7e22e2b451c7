"""Checking the values of stored rows: types, ranges, finiteness and sums that must agree.

A value that breaks a rule raises ``StoreError`` naming the file, the run, the table,
the field and the value (cut to 60 characters); the file is never changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from callmetrics._engine.environment import ENVIRONMENT_KEYS
from callmetrics._engine.records import Event
from callmetrics._engine.sketch import DurationSketch
from callmetrics._engine.state import CallerEdge, FunctionSnapshot
from callmetrics._engine.view import RetainedCall
from callmetrics._store.failure_types import parse_failure_types
from callmetrics._store.limits import (
    MAX_COUNT,
    MAX_DURATION,
    MAX_PID,
    MAX_RUN_ID,
    MAX_TEXT,
    MAX_TIME,
)
from callmetrics._store.schema import StoreError

__all__ = ["Row", "check_call", "check_environment", "check_function", "check_run"]


def _short(value: object) -> str:
    """``repr(value)``, cut to 60 characters: enough to recognise it, never a whole field."""
    shown = repr(value[:61] if isinstance(value, str | bytes) else value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


class Row:
    """Checks the values of one stored row, naming the run and the field at fault."""

    def __init__(self, path: Path, table: str, run_id: object, what: str = "") -> None:
        self.path, self.table, self.run_id, self.what = path, table, run_id, what

    def damaged(self, field: str, value: object, rule: str) -> StoreError:
        shown = _short(value)
        of = f" of {_short(self.what)}" if self.what else ""
        return StoreError(f"{self.path} is damaged: run {self.run_id}: {self.table}.{field}"
                          f"{of} is {shown} ({rule}); the file was left as it is")

    def integer(self, field: str, value: object, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.damaged(field, value, f"must be an integer from {low} to {high}")
        return value

    def real(self, field: str, value: object, low: float, high: float) -> float:
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not low <= value <= high):  # also rejects NaN
            raise self.damaged(field, value, f"must be a number from {low:g} to {high:g}")
        return float(value)

    def text(self, field: str, value: object, *, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or len(value) > MAX_TEXT or not (value or optional):
            rule = "text" if optional else "non-empty text"
            raise self.damaged(field, value, f"must be {rule} of at most {MAX_TEXT} "
                                             "characters" + (" or NULL" if optional else ""))
        return value

    def name(self, field: str, value: object) -> str:
        result = self.text(field, value)
        assert result is not None  # noqa: S101  # not optional
        return result


def check_run(path: Path, row: tuple[Any, ...]) -> tuple[
        int, str | None, int, str, str, float, float, bool]:
    run_id = row[0]
    check = Row(path, "runs", run_id)
    check.integer("id", run_id, 1, MAX_RUN_ID)
    started = check.real("started", row[5], 0.0, MAX_TIME)
    return (run_id, check.text("label", row[1], optional=True),
            check.integer("pid", row[2], 0, MAX_PID), check.name("host", row[3]),
            check.name("program", row[4]), started,
            check.real("ended", row[6], 0.0, MAX_TIME),
            bool(check.integer("closed", row[7], 0, 1)))


# The environment's JSON text, and each of its values, are at most this long.
_ENVIRONMENT_TEXT = 10_000
_ENVIRONMENT_VALUE = 1_000


def check_environment(path: Path, run_id: object, value: object) -> dict[str, str | None] | None:
    """A run's stored environment (``runs.environment``): None when not recorded (NULL).

    A JSON object of short texts (or nulls); keys this version does not know are
    left out.
    """
    if value is None:
        return None
    check = Row(path, "runs", run_id)
    rule = (f"must be a JSON object of texts of at most {_ENVIRONMENT_VALUE} characters, "
            "or NULL")
    if not isinstance(value, str) or len(value) > _ENVIRONMENT_TEXT:
        raise check.damaged("environment", value, rule)
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        raise check.damaged("environment", value, rule) from None
    if not isinstance(data, dict) or not all(
            item is None or (isinstance(item, str) and len(item) <= _ENVIRONMENT_VALUE)
            for item in data.values()):
        raise check.damaged("environment", value, rule)
    return {key: data.get(key) for key in ENVIRONMENT_KEYS}


def check_call(path: Path, row: tuple[Any, ...]) -> RetainedCall:
    run_id, start, duration, error, function, message, location = row
    check = Row(path, "events", run_id, function if isinstance(function, str) else "")
    return RetainedCall(
        check.real("start", start, 0.0, MAX_TIME),
        check.real("duration", duration, 0.0, MAX_DURATION),
        check.name("function", function), "unknown", check.text("error", error, optional=True),
        check.text("message", message, optional=True),
        check.text("location", location, optional=True))


def check_function(path: Path, row: tuple[Any, ...], time_format: str,
                    compact: bool) -> FunctionSnapshot:
    (run_id, name, event_type, module, calls, successes, failures, total, fast, medium,
     slow, overhead, sketch, s_start, s_duration, s_error, f_start, f_duration,
     f_error) = row[:19]
    check = Row(path, "functions", run_id, name if isinstance(name, str) else "")
    name = check.name("name", name)
    event_type = check.name("event_type", event_type)
    calls = check.integer("calls", calls, 0, MAX_COUNT)
    successes = check.integer("successes", successes, 0, calls)
    check.integer("failures", failures, calls - successes, calls - successes)
    total = check.real("total", total, 0.0, calls * MAX_DURATION)
    fast = check.integer("fast", fast, 0, calls)
    medium = check.integer("medium", medium, 0, calls - fast)
    slow = check.integer("slow", slow, calls - fast - medium, calls - fast - medium)
    try:
        data = json.loads(check.name("sketch", sketch))
        parsed = DurationSketch.from_dict(data if isinstance(data, dict) else {})
    except (TypeError, ValueError, RecursionError) as exc:
        raise check.damaged("sketch", sketch, f"not a duration sketch: {exc}") from None
    if parsed.count != calls:
        raise check.damaged("sketch", f"count {parsed.count}", f"must count calls = {calls}")

    def extreme(prefix: str, start: object, duration: object, error: object,
                details: tuple[object, ...]) -> Event | None:
        if start is None and duration is None:
            return None
        stored = (*details, None, None)  # a version-1 store has neither column
        message = check.text(f"{prefix}_message", stored[0], optional=True)
        location = check.text(f"{prefix}_location", stored[1], optional=True)
        return Event(name, event_type, check.real(f"{prefix}_start", start, 0.0, MAX_TIME),
                     check.real(f"{prefix}_duration", duration, 0.0, MAX_DURATION),
                     check.text(f"{prefix}_error", error, optional=True), time_format,
                     compact=compact, message=message, location=location)

    self_time, inclusive, active, active_self, callers = _attribution(check, total,
                                                                      row[23:28])
    types, cpu = (*row[28:30], None, None)[:2]  # NULL, or a store before version 4
    try:
        by_type = parse_failure_types(types, calls - successes)
    except (TypeError, ValueError) as exc:
        raise check.damaged("failure_types", types, str(exc)) from None
    return FunctionSnapshot(
        name=name, event_type=event_type, module=check.name("module", module), calls=calls,
        successes=successes, total=total, fast=fast, medium=medium, slow=slow,
        overhead=check.real("overhead", overhead, 0.0, calls * MAX_DURATION),
        sketch=parsed,
        slowest=extreme("slowest", s_start, s_duration, s_error, row[19:21]),
        fastest=extreme("fastest", f_start, f_duration, f_error, row[21:23]),
        self_time=self_time, inclusive_time=inclusive, active_time=active,
        active_self_time=active_self, callers=callers, failures_by_type=by_type,
        cpu_time=None if cpu is None else check.real("cpu_time", cpu, 0.0,
                                                      calls * MAX_DURATION),
    )


def _attribution(check: Row, total: float, stored: tuple[object, ...]) -> tuple[
        float | None, float | None, float | None, float | None, tuple[CallerEdge, ...]]:
    """Self, inclusive, active, active self time and callers (None: unknown, old store)."""
    self_time, inclusive, active, active_self, callers = (*stored, None, None, None, None,
                                                          None)[:5]
    # Each is at most the total (a sum of the same durations less some), give or take
    # the rounding of that subtraction.
    bound = total * (1 + 1e-9) + 1e-9

    def seconds(field: str, value: object) -> float | None:
        return None if value is None else check.real(field, value, 0.0, bound)

    if self_time is None:
        return None, None, None, None, ()
    edges: list[CallerEdge] = []
    try:
        data = json.loads(check.name("callers", callers))
    except (TypeError, ValueError, RecursionError) as exc:
        raise check.damaged("callers", callers, f"not JSON: {exc}") from None
    if not isinstance(data, list):
        raise check.damaged("callers", callers, "must be a list")
    for item in data:
        if not (isinstance(item, list) and len(item) == 3):
            raise check.damaged("callers", item, "must be [name, calls, seconds]")
        edges.append(CallerEdge(check.name("callers name", item[0]),
                                check.integer("callers calls", item[1], 0, MAX_COUNT),
                                check.real("callers time", item[2], 0.0, bound)))
    return (seconds("self_time", self_time), seconds("inclusive_time", inclusive),
            seconds("active_time", active), seconds("active_self_time", active_self),
            tuple(edges))
