"""The report templates' compiled code kept between processes: same report, never a failure."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from jinja2 import Environment

import callmetrics._outputs.report as report_module
from callmetrics import Analytics, AnalyticsConfig
from callmetrics._outputs.report import make_environment, render_report
from callmetrics._outputs.template_cache import TemplateCache, user_cache_dir

TEMPLATES = ("report.html.j2", "_functions.html.j2")


def recorded() -> Analytics:
    """Real calls: nested, failing, slow and fast, with a fixed wall time."""
    analytics = Analytics(AnalyticsConfig(max_events=500))

    @analytics.track("work", name="leaf <b>")
    def leaf(i: int) -> int:
        if i % 7 == 3:
            raise ValueError(f"bad item {i}")
        return sum(range(i % 50 * 20))

    @analytics.track("work", name="outer")
    def outer(n: int) -> None:
        for i in range(n):
            with contextlib.suppress(ValueError):
                leaf(i)

    for _ in range(8):
        outer(40)
    analytics.restore([], [], wall_time=2.5)  # the wall time shown: fixed
    return analytics


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's "Generated" time, fixed so that two renderings can be compared."""
    monkeypatch.setattr(report_module, "time", types.SimpleNamespace(time=lambda: 1.7e9))


def rendered(monkeypatch: pytest.MonkeyPatch, env: Environment, analytics: Analytics) -> str:
    with monkeypatch.context() as patch:
        patch.setattr(report_module, "environment", lambda: env)
        return render_report(analytics, force_mode=True)


class Compiles:
    """Counts the templates an environment compiles from source."""

    def __init__(self, env: Environment) -> None:
        """Count ``env``'s compilations from now on."""
        self.names: list[str | None] = []
        original = env.compile

        def compile_(source: str, name: str | None = None, filename: str | None = None,
                     raw: bool = False, defer_init: bool = False) -> object:
            self.names.append(name)
            return original(source, name, filename, raw, defer_init)  # type: ignore[call-overload]

        env.compile = compile_  # type: ignore[method-assign,assignment]  # counted, then compiled


@pytest.fixture
def analytics() -> Iterator[Analytics]:
    found = recorded()
    yield found
    found.close()


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.j2c"))


@pytest.mark.usefixtures("fixed_clock")
def test_cached_code_renders_the_same_report_without_compiling(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, analytics: Analytics) -> None:
    """The first environment compiles and writes; a later one compiles nothing, same bytes."""
    plain = rendered(monkeypatch, make_environment(None), analytics)
    cache = tmp_path / "cache"
    first = make_environment(TemplateCache(cache))
    first_compiles = Compiles(first)
    assert rendered(monkeypatch, first, analytics) == plain
    assert sorted(map(str, first_compiles.names)) == sorted(TEMPLATES)
    assert len(entries(cache)) == len(TEMPLATES)
    later = make_environment(TemplateCache(cache))
    later_compiles = Compiles(later)
    assert rendered(monkeypatch, later, analytics) == plain
    assert later_compiles.names == []
    assert "leaf &lt;b&gt;" in plain  # the dataset's names escaped, through the cache too


@pytest.mark.usefixtures("fixed_clock")
@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "empty"])
def test_a_damaged_entry_is_compiled_afresh_and_rewritten(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, analytics: Analytics,
        damage: str) -> None:
    plain = rendered(monkeypatch, make_environment(None), analytics)
    cache = tmp_path / "cache"
    rendered(monkeypatch, make_environment(TemplateCache(cache)), analytics)
    for entry in entries(cache):
        data = entry.read_bytes()
        entry.write_bytes({"garbage": b"\x00not a template" * 50, "truncated": data[:-100],
                           "flipped": data[:-50] + bytes([data[-50] ^ 1]) + data[-49:],
                           "empty": b""}[damage])
    env = make_environment(TemplateCache(cache))
    compiles = Compiles(env)
    assert rendered(monkeypatch, env, analytics) == plain
    assert sorted(map(str, compiles.names)) == sorted(TEMPLATES)
    again = make_environment(TemplateCache(cache))
    again_compiles = Compiles(again)
    assert rendered(monkeypatch, again, analytics) == plain
    assert again_compiles.names == []  # rewritten whole


@pytest.mark.usefixtures("fixed_clock")
def test_an_entry_of_another_template_source_is_not_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, analytics: Analytics) -> None:
    """An entry is keyed by template: one file swapped for another's is compiled afresh."""
    plain = rendered(monkeypatch, make_environment(None), analytics)
    cache = tmp_path / "cache"
    rendered(monkeypatch, make_environment(TemplateCache(cache)), analytics)
    big, small = sorted(entries(cache), key=lambda p: p.stat().st_size, reverse=True)
    big_bytes = big.read_bytes()
    big.write_bytes(small.read_bytes())
    small.write_bytes(big_bytes)
    env = make_environment(TemplateCache(cache))
    compiles = Compiles(env)
    assert rendered(monkeypatch, env, analytics) == plain
    assert sorted(map(str, compiles.names)) == sorted(TEMPLATES)


@pytest.mark.usefixtures("fixed_clock")
def test_a_cache_that_cannot_be_made_or_written_still_gives_the_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, analytics: Analytics) -> None:
    plain = rendered(monkeypatch, make_environment(None), analytics)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert rendered(monkeypatch, make_environment(TemplateCache(blocker / "cache")),
                    analytics) == plain
    assert rendered(monkeypatch, make_environment(TemplateCache(blocker)), analytics) == plain
    assert rendered(monkeypatch, make_environment(TemplateCache(None)), analytics) == plain
    full = tmp_path / "full"
    full.mkdir(mode=0o700)
    cache = TemplateCache(full)
    with monkeypatch.context() as patch:  # a disk that is full or read-only
        def refuse(*_: object, **__: object) -> None:
            raise OSError(28, "No space left on device")

        patch.setattr("tempfile.mkstemp", refuse)
        assert rendered(monkeypatch, make_environment(cache), analytics) == plain
    assert entries(full) == []


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX ownership and modes")
@pytest.mark.usefixtures("fixed_clock")
def test_a_directory_others_can_write_to_is_not_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, analytics: Analytics) -> None:
    """Code loaded from the cache runs: a directory others could write to is left alone."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    plain = rendered(monkeypatch, make_environment(None), analytics)
    assert rendered(monkeypatch, make_environment(TemplateCache(shared)), analytics) == plain
    assert entries(shared) == []
    private = tmp_path / "new" / "cache"
    rendered(monkeypatch, make_environment(TemplateCache(private)), analytics)
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert len(entries(private)) == len(TEMPLATES)


def test_the_cache_lives_in_the_users_cache_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.platform == "win32":  # pragma: no cover  # POSIX CI
        pytest.skip("XDG applies to POSIX systems")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert user_cache_dir() == tmp_path / "callmetrics" / "templates"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # XDG: to be ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "callmetrics" / "templates"


def test_a_report_written_in_a_fresh_process_uses_the_cache(tmp_path: Path) -> None:
    """Two processes writing a report: the first fills the cache, both write the report."""
    script = (
        "import sys\n"
        "from callmetrics import Analytics\n"
        "a = Analytics()\n"
        "f = a.track('work', name='job')(lambda: None)\n"
        "for _ in range(30): f()\n"
        "print(a.generate_reports(force_mode=True, path=sys.argv[1]))\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    for n in (1, 2):
        target = tmp_path / f"report{n}.html"
        subprocess.run([sys.executable, "-c", script, str(target)], env=env, check=True,
                       capture_output=True, timeout=120)
        assert "callmetrics report" in target.read_text("utf-8")
    assert len(entries(tmp_path / "xdg" / "callmetrics" / "templates")) == len(TEMPLATES)
