"""``callmetrics run``'s defaults from ``pyproject.toml``'s ``[tool.callmetrics]`` table.

The nearest ``pyproject.toml`` from the working directory up is read; its table
gives defaults that the command line overrides::

    [tool.callmetrics]
    track = ["myapp.*"]          # --track (a list of globs, or one glob)
    exclude = ["myapp.vendored.*"]
    store = "runs.db"            # relative to the pyproject.toml's folder
    label = "nightly"
    max-events = 50000
    max-functions = 2000
    report = ""                  # '' for none, as --report ''
    exact = false
    expected = ["StopIteration", "docutils.nodes.SkipNode"]   # --expected
    cpu-time = false             # --cpu-time

Bad configuration fails before the program starts, naming the file and the field.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from callmetrics._cli.common import CliError

__all__ = ["FIELDS", "apply_config", "find_pyproject", "read_config"]

# Field -> (argparse destination, expected type).
FIELDS: dict[str, tuple[str, type]] = {
    "track": ("track", list), "exclude": ("exclude", list), "store": ("store", str),
    "label": ("label", str), "max-events": ("max_events", int),
    "max-functions": ("max_functions", int), "report": ("report", str),
    "exact": ("exact", bool), "expected": ("expected", list),
    "cpu-time": ("cpu_time", bool),
}
_PATHS = ("store", "report")  # relative to the pyproject.toml's folder


def find_pyproject(start: Path) -> Path | None:
    """Return the nearest ``pyproject.toml`` at or above ``start``, or None."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _checked(path: Path, key: str, value: object) -> Any:
    where = f"{path} [tool.callmetrics] {key}"
    kind = FIELDS[key][1]
    if kind is list:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and i.strip()
                                                   for i in items):
            what = "an exception name" if key == "expected" else "a glob"
            raise CliError(f"{where}: must be {what} or a list of them, got {value!r}")
        return items
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CliError(f"{where}: must be a whole number >= 0, got {value!r}")
        return value
    if not isinstance(value, kind):
        raise CliError(f"{where}: must be a {kind.__name__}, got {value!r}")
    if key in _PATHS and value:
        return str(path.parent / str(value))
    return value


def read_config(path: Path) -> dict[str, Any]:
    """Return the checked ``[tool.callmetrics]`` fields of ``path`` by argparse name."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"{path}: cannot be read ({exc})") from None
    table = data.get("tool", {}).get("callmetrics", {})
    if not isinstance(table, dict):
        raise CliError(f"{path} [tool.callmetrics]: must be a table")
    unknown = sorted(set(table) - set(FIELDS))
    if unknown:
        raise CliError(f"{path} [tool.callmetrics]: unknown field(s) {', '.join(unknown)}; "
                       f"known: {', '.join(FIELDS)}")
    return {FIELDS[key][0]: _checked(path, key, value) for key, value in table.items()}


def apply_config(args: argparse.Namespace, start: Path) -> None:
    """Fill the options not given on the command line from the nearest pyproject.toml."""
    path = find_pyproject(start)
    if path is None:
        return
    for dest, value in read_config(path).items():
        if not hasattr(args, dest):
            raise CliError(f"{path} [tool.callmetrics] {dest}: this callmetrics has no "
                           f"--{dest.replace('_', '-')} option")
        if getattr(args, dest) in (None, False):
            setattr(args, dest, value)
