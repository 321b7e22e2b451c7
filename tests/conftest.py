"""Shared fixtures: a fresh Analytics per test, and real parts that must exist in CI."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from typing import NoReturn

import pytest
from hypothesis import HealthCheck, settings

from callmetrics import Analytics, LoggerContainer
from callmetrics._engine import accel as _accel
from callmetrics._engine import sinks

IN_CI = os.environ.get("CI") == "true"

# Under valgrind (.ci/run sets CALLMETRICS_EXAMPLES) every call is tens of times
# slower: fewer examples, no deadline, and no failure for slow data generation.
if "CALLMETRICS_EXAMPLES" in os.environ:
    settings.register_profile(
        "valgrind", max_examples=int(os.environ["CALLMETRICS_EXAMPLES"]), deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.load_profile("valgrind")


def require_program(name: str, why: str) -> str:
    """Return the path of a program; skip locally, fail in CI (``CI=true``) when absent."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed ({why}); `bash scripts/test` installs it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def missing_module(exc: ImportError, why: str) -> NoReturn:
    """Skip locally, fail in CI (``CI=true``), for a test dependency that did not import.

    Use it around the imports of a test module (``except ImportError as exc:``), or
    inside a test.
    """
    message = (f"{exc.name or exc} is not installed ({why}); "
               "pip install -e '.[test]' installs it")
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message, allow_module_level=True)


def make_calls(analytics: Analytics, ok: int, failing: int, name: str = "work") -> None:
    """Make ``ok`` successful and ``failing`` failing calls of a function recorded as ``name``."""

    @analytics.track("unit", name=name)
    def work(fail: bool) -> None:
        if fail:
            raise ValueError("bad input")

    for _ in range(ok):
        work(False)
    for _ in range(failing):
        with pytest.raises(ValueError, match="bad input"):
            work(True)


@pytest.fixture
def loggers() -> Iterator[LoggerContainer]:
    """Three loggers private to the test, at DEBUG, that propagate to caplog."""
    names = ("test.console", "test.error", "test.analytics")
    made = [logging.getLogger(f"{name}.{os.getpid()}.{id(names)}") for name in names]
    for logger in made:
        logger.setLevel(logging.DEBUG)
    yield LoggerContainer(*made)
    for logger in made:
        logger.setLevel(logging.NOTSET)


@pytest.fixture
def analytics() -> Analytics:
    """A fresh instance with default settings."""
    return Analytics()


def pytest_report_header() -> str:
    """Say which hot path the suite runs against (``CALLMETRICS_PURE_PYTHON=1`` forces Python)."""
    from callmetrics._engine import accel as _accel  # noqa: PLC0415  # after pytest has set up paths

    reason = f" ({_accel.REASON})" if _accel.REASON else ""
    return f"callmetrics hot path: {_accel.IMPLEMENTATION}{reason}"

@pytest.fixture
def quiet() -> Iterator[LoggerContainer]:
    """Private loggers that drop everything below CRITICAL (for bulk calls that fail)."""
    made = [logging.getLogger(f"test.quiet.{role}") for role in ("console", "error", "analytics")]
    for logger in made:
        logger.setLevel(logging.CRITICAL)
    yield LoggerContainer(*made)
    for logger in made:
        logger.setLevel(logging.NOTSET)


@pytest.fixture(params=["c", "python"])
def step_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The hot path of the step proxies a test's wrappers use: the C one, or the twin.

    ``python`` makes ``sinks.stepping`` answer None, as it does without the extension;
    ``c`` skips when the accelerator is not in use.
    """
    if request.param == "c":
        if _accel.IMPLEMENTATION != "c":
            pytest.skip(f"the C accelerator is not in use ({_accel.REASON})")
    else:
        monkeypatch.setattr(sinks, "stepping", lambda *_args: None)
    return str(request.param)
