"""Analytics.instrument()/uninstrument(): modules wrapped without decorating them."""

from __future__ import annotations

import asyncio
import importlib
import importlib.resources
import inspect
import itertools
import pkgutil
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from callmetrics import Analytics
from callmetrics._zerocode.instrument import Matcher
from callmetrics._zerocode.tool import supported
from readme_examples import printed_as_commented, readme_example

_names = itertools.count()
# 3.12+: tracked through sys.monitoring, the functions untouched; 3.11: wrapped.
MONITORED = supported()
Importer = Callable[[str], types.ModuleType]

PACKAGE = '''
    import json
    from os.path import join

    def double(x):
        return 2 * x

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    def fails():
        raise KeyError("missing")

    async def fetch(x):
        await asyncio.sleep(0)
        return x

    def numbers(n):
        yield from range(n)

    async def anumbers(n):
        for i in range(n):
            yield i

    alias = double
    square = lambda x: x * x  # noqa: E731

    class Shape:
        def __init__(self, side):
            self.side = side

        def area(self):
            return self.side * self.side

        @property
        def perimeter(self):
            return 4 * self.side

        @classmethod
        def unit(cls):
            return cls(1)

        @staticmethod
        def sides():
            return 4

        def __repr__(self):
            return f"Shape({self.side})"

        borrowed = double

        class Inner:
            def hello(self):
                return "hi"

    import asyncio
'''


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Callable[[str], types.ModuleType]]:
    """Write a fresh uniquely named package; return a function importing one of its modules."""
    name = f"cmpkg{next(_names)}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "shapes.py").write_text(textwrap.dedent(PACKAGE))
    (root / "other.py").write_text("def elsewhere():\n    return 1\n")
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()

    def load(module: str) -> types.ModuleType:
        return importlib.import_module(f"{name}.{module}")

    load.package = name  # type: ignore[attr-defined]
    yield load
    sys.path.remove(str(tmp_path))
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def _pkg(load: Importer) -> str:
    name = getattr(load, "package", None)
    assert isinstance(name, str)
    return name


def test_modules_imported_later_are_tracked_exactly(analytics: Analytics,
                                                     package: Importer) -> None:
    pkg = _pkg(package)
    analytics.instrument(f"{pkg}.*")
    try:
        mod = package("shapes")
        assert [mod.double(i) for i in range(5)] == [0, 2, 4, 6, 8]
        assert mod.fib(6) == 8
        with pytest.raises(KeyError, match="missing"):
            mod.fails()
        shape = mod.Shape.unit()
        assert (shape.area(), shape.perimeter, mod.Shape.sides()) == (1, 4, 4)
        assert mod.Shape.Inner().hello() == "hi"
        counts = analytics.call_counts
        successes = analytics.success_counts
    finally:
        analytics.uninstrument()
    prefix = f"{pkg}.shapes."
    assert counts[prefix + "double"] == 5
    assert counts[prefix + "fib"] == 25  # every recursive call goes through the wrapper
    assert counts[prefix + "fails"] == 1
    assert successes[prefix + "fails"] == 0
    for name in ("Shape.unit", "Shape.__init__", "Shape.area", "Shape.perimeter",
                 "Shape.sides", "Shape.Inner.hello"):
        assert counts[prefix + name] == 1, name


def test_coroutines_and_generators_keep_their_semantics(analytics: Analytics,
                                                         package: Importer) -> None:
    pkg = _pkg(package)
    analytics.instrument(f"{pkg}.shapes")
    try:
        mod = package("shapes")

        async def consume() -> list[int]:
            return [i async for i in mod.anumbers(3)]

        assert asyncio.run(mod.fetch(7)) == 7
        assert list(mod.numbers(4)) == [0, 1, 2, 3]
        assert asyncio.run(consume()) == [0, 1, 2]
        gen = mod.numbers(10)
        assert next(gen) == 0
        gen.close()  # stopped early: still one successful call
        counts = analytics.call_counts
    finally:
        analytics.uninstrument()
    assert counts[f"{pkg}.shapes.fetch"] == 1
    assert counts[f"{pkg}.shapes.numbers"] == 2
    assert counts[f"{pkg}.shapes.anumbers"] == 1


def test_what_is_left_alone(analytics: Analytics, package: Importer) -> None:
    pkg = _pkg(package)
    analytics.instrument(f"{pkg}.shapes")
    try:
        mod = package("shapes")
        mod.square(3)  # a lambda
        mod.join("a", "b")  # imported from elsewhere
        mod.json.dumps(1)
        repr(mod.Shape(2))  # an implicit dunder
        mod.alias(1)  # the same function as double: one wrapper, one name
        mod.Shape.borrowed(1)  # a function from elsewhere stored in a class: not a method
        package("other").elsewhere()  # a module that does not match
        counts = analytics.call_counts
    finally:
        analytics.uninstrument()
    assert mod.alias is mod.double
    assert set(counts) == {f"{pkg}.shapes.double", f"{pkg}.shapes.Shape.__init__"}
    # sys.monitoring sees every call of double's code, through Shape.borrowed too
    assert counts[f"{pkg}.shapes.double"] == (2 if MONITORED else 1)
    assert counts[f"{pkg}.shapes.Shape.__init__"] == 1


def test_already_imported_modules_and_no_double_wrapping(analytics: Analytics,
                                                         package: Importer) -> None:
    pkg = _pkg(package)
    mod = package("shapes")
    original = mod.double
    other = Analytics()
    analytics.instrument(f"{pkg}.*")
    other.instrument(f"{pkg}.*")  # sees wrappers already there: leaves them
    analytics.instrument(f"{pkg}.shapes")  # the same module again: no second wrapper
    try:
        assert (mod.double is original) is MONITORED  # sys.monitoring replaces nothing
        mod.double(1)
        mod.Shape(3).area()
        counts = analytics.call_counts
    finally:
        other.uninstrument()
        analytics.uninstrument()
    assert counts[f"{pkg}.shapes.double"] == 1
    assert counts[f"{pkg}.shapes.Shape.area"] == 1
    assert other.call_counts == {}
    assert mod.double is original


def test_uninstrument_restores_everything(analytics: Analytics, package: Importer) -> None:
    pkg = _pkg(package)
    mod = package("shapes")
    before = {name: vars(mod.Shape)[name] for name in ("area", "perimeter", "unit", "sides")}
    hooks = list(sys.meta_path)
    analytics.instrument(f"{pkg}.*")
    replaced = vars(mod.Shape)["area"] is not before["area"]
    analytics.uninstrument()
    assert replaced is not MONITORED  # sys.monitoring replaces nothing
    assert sys.meta_path == hooks
    for name, value in before.items():
        assert vars(mod.Shape)[name] is value, name
    mod.double(2)
    package("other").elsewhere()  # imported after uninstrument: not wrapped
    assert analytics.call_counts == {}


def test_a_decorated_function_is_not_wrapped_again(analytics: Analytics, package: Importer,
                                                   tmp_path: Path) -> None:
    pkg = _pkg(package)
    (tmp_path / pkg / "decorated.py").write_text(textwrap.dedent("""
        from callmetrics import Analytics
        mine = Analytics()

        @mine.track("job")
        def job():
            return 1
    """))
    analytics.instrument(f"{pkg}.*")
    try:
        mod = package("decorated")
        mod.job()
    finally:
        analytics.uninstrument()
    assert mod.mine.call_counts == {"job": 1}
    assert analytics.call_counts == {}


def test_excluded_modules_are_left_alone(analytics: Analytics, package: Importer) -> None:
    pkg = _pkg(package)
    analytics.instrument(f"{pkg}.*", exclude=[f"{pkg}.other"])
    try:
        package("other").elsewhere()
        package("shapes").double(1)
        counts = analytics.call_counts
    finally:
        analytics.uninstrument()
    assert set(counts) == {f"{pkg}.shapes.double"}


@pytest.mark.parametrize(("args", "kwargs", "field"), [
    ((), {}, "patterns"),
    (("",), {}, "patterns"),
    ((3,), {}, "patterns"),
    (("x.*",), {"exclude": [None]}, "exclude"),
    (("x.*",), {"event_type": ""}, "event_type"),
])
def test_bad_arguments_fail_at_once_naming_the_field(analytics: Analytics, args: tuple[Any, ...],
                                                     kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises((TypeError, ValueError), match=field):
        analytics.instrument(*args, **kwargs)
    assert not any(type(f).__name__ == "_Finder" for f in sys.meta_path)


def test_folder_roots_never_match_installed_packages(tmp_path: Path) -> None:
    matcher = Matcher(["__main__"], [], [tmp_path])
    assert matcher("helpers", str(tmp_path / "helpers.py"))
    assert matcher("__main__", None)
    assert not matcher("rich", sys.modules["rich"].__file__ if "rich" in sys.modules else
                       str(Path(pytest.__file__)))
    assert not matcher("json", sys.modules["json"].__file__)
    assert not matcher("callmetrics._engine.wrap", str(tmp_path / "x.py"))
    assert not matcher("elsewhere", "/nowhere/elsewhere.py")
    assert Matcher(["app.*"])("app", None)
    assert not Matcher(["app.*"], ["app.slow*"])("app.slowpath", None)


def test_instrumented_modules_keep_their_loader_services(analytics: Analytics, package: Importer,
                                                         tmp_path: Path) -> None:
    pkg = _pkg(package)
    (tmp_path / pkg / "data.txt").write_text("payload")
    analytics.instrument(f"{pkg}.*")
    try:
        mod = package("shapes")
        assert importlib.resources.files(pkg).joinpath("data.txt").read_text() == "payload"
        assert pkgutil.get_data(pkg, "data.txt") == b"payload"
        assert "def double(x):" in inspect.getsource(mod)
        assert inspect.getsource(mod.double).startswith("def double(x):")
        assert importlib.reload(mod) is mod
        mod.double(1)  # the reloaded module is wrapped again
        counts = analytics.call_counts
    finally:
        analytics.uninstrument()
    assert counts == {f"{pkg}.shapes.double": 1}


def test_the_readme_instrument_example_prints_what_it_says() -> None:
    source = readme_example("import json", "## Track a program without decorating it")
    printed, promised = printed_as_commented(source)
    assert printed == promised
    assert len(promised) == 2
    assert not any(type(f).__name__ == "_Finder" for f in sys.meta_path)  # undone
