"""Generators tracked through ``sys.monitoring`` (3.12+): their steps, as the proxy's.

Iterated lazily, resumed on another thread, abandoned unfinished, recursing through
``yield from``; and the C callbacks against their pure-Python twin.  See
test_monitor_steps.py for what a call, a step and active time are.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from callmetrics._engine.accel import speedups
from monitor_helpers import (
    Loader,
    Window,
    callers_of,
    depth,
    monitoring,
    pure_param,
    steps_module,
    tracking,
)


@pytest.fixture
def module(tmp_path: Path) -> Iterator[Loader]:
    with steps_module(tmp_path) as load_module:
        yield load_module


@pytest.fixture(params=["c", "python"])
def pure(request: pytest.FixtureRequest) -> bool:
    """Whether the pure-Python callbacks are used (else the accelerator's)."""
    return pure_param(str(request.param))


@monitoring
def test_a_generator_iterated_lazily(module: Loader, pure: bool,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A generator is active while it computes an item, not while its consumer does."""
    spent: dict[str, list[list[float]]] = {}

    def run(mod: types.ModuleType) -> None:
        assert mod.consume(3) == 3
        spent.update(mod.SPENT)

    found = tracking(module, pure, monkeypatch, run)
    produce = found["produce"]
    cpu = sum(c for c, _ in spent["produce"])
    consumer = sum(w for _, w in spent["consume"])  # all of it while produce was suspended
    assert produce.active_time is not None
    assert cpu * 0.9 <= produce.active_time <= produce.total - consumer
    assert callers_of(produce) == {"consume": 1}
    # Work done during a step is the generator's; between steps, its consumer's.
    assert callers_of(found["spin_cpu"]) == {"produce": 3, "consume": 3}
    consume = found["consume"]
    assert consume.active_time == pytest.approx(consume.total)  # a plain function


@monitoring
def test_a_generator_resumed_on_another_thread(module: Loader,
                                               pure: bool,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Started on one thread, finished on another: one call, its steps on each."""
    spent: dict[str, list[list[float]]] = {}
    stepping = Window()

    def run(mod: types.ModuleType) -> None:
        gen = mod.produce(4)
        with stepping:
            assert next(gen) == 0
        assert depth() == 0
        rest: list[int] = []

        def finish() -> None:
            with stepping:
                rest.extend(gen)

        worker = threading.Thread(target=finish)
        worker.start()
        worker.join()
        assert rest == [1, 2, 3]
        spent.update(mod.SPENT)

    found = tracking(module, pure, monkeypatch, run)
    snap = found["produce"]
    assert (snap.calls, snap.successes) == (1, 1)
    cpu = sum(c for c, _ in spent["produce"])
    assert snap.active_time is not None
    assert cpu * 0.9 <= snap.active_time <= stepping.bound
    assert callers_of(found["spin_cpu"]) == {"produce": 4}


@monitoring
def test_generators_abandoned_unfinished(module: Loader, pure: bool,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropped while suspended: a success ending at its last step (or at its finally)."""
    spent: dict[str, list[list[float]]] = {}
    first, closing = Window(), Window()

    def run(mod: types.ModuleType) -> None:
        plain = mod.produce(10)
        with first:
            assert next(plain) == 0
            # Dropped: 3.13 never runs its frame again (no try block; swept, ending at
            # its last step), 3.12 closes it through its frame (a last short step).
            del plain
        with_finally = mod.guarded()
        with closing:
            assert next(with_finally) == 1
        with closing:
            del with_finally  # closed: GeneratorExit runs its finally (one more step)
            gc.collect()
        spent.update(mod.SPENT)

    found = tracking(module, pure, monkeypatch, run)
    produce, guarded = found["produce"], found["guarded"]
    assert (produce.calls, produce.successes) == (1, 1)
    assert (guarded.calls, guarded.successes) == (1, 1)
    first_cpu, _ = spent["produce"][0]
    assert produce.active_time is not None
    assert first_cpu * 0.9 <= produce.active_time <= first.bound
    assert produce.total <= first.bound  # it ends at its last step or at its close
    cpu, _ = spent["guarded"][0]
    assert guarded.active_time is not None
    assert cpu * 0.9 <= guarded.active_time <= closing.bound  # the finally ran in a step


@monitoring
def test_recursion_through_yield_from(module: Loader, pure: bool,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Each generator of a ``yield from`` tree is a call nested under the one delegating."""
    spent: dict[str, list[list[float]]] = {}
    iterating = Window()

    def run(mod: types.ModuleType) -> None:
        with iterating:
            assert list(mod.tree(3)) == [3, 2, 1, 0, 0, 1, 0, 0, 2, 1, 0, 0, 1, 0, 0]
        spent.update(mod.SPENT)

    found = tracking(module, pure, monkeypatch, run)
    tree = found["tree"]
    assert tree.calls == 15
    assert callers_of(tree) == {"tree": 14}
    assert tree.inclusive_time is not None
    nested = tree.callers[0].time
    assert tree.inclusive_time == pytest.approx(tree.total - nested, abs=1e-9)
    cpu = sum(c for c, _ in spent["tree"])
    # The outermost call's active time contains every step of the tree once.
    assert tree.active_time is not None
    assert tree.active_time >= cpu * 0.9
    assert tree.inclusive_time <= iterating.bound
    assert callers_of(found["spin_cpu"]) == {"tree": 15}


@monitoring
def test_the_c_and_python_callbacks_record_the_same_steps(
        module: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths: the same calls, callers, and every active time known."""
    if speedups is None:
        pytest.skip("the C accelerator is not built")

    def run(mod: types.ModuleType) -> None:
        asyncio.run(mod.handler())
        mod.consume(2)
        list(mod.tree(2))
        gen = mod.guarded()
        next(gen)
        gen.close()

    seen = [tracking(module, pure, monkeypatch, run) for pure in (False, True)]
    shapes = [{name: (s.calls, s.successes, sorted(callers_of(s).items()), s.active_time is None)
               for name, s in found.items()} for found in seen]
    assert shapes[0] == shapes[1]
    assert not any(unknown for *_, unknown in shapes[0].values())
