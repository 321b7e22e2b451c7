"""Metric names and labels: callmetrics' own, and the autometrics v1.0.0 specification's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from callmetrics import Analytics, DurationSketch, FunctionSnapshot
from callmetrics._cli import main
from callmetrics._engine.state import CallerEdge
from callmetrics.exporters.model import Naming, families, service_name
from callmetrics.exporters.prometheus import CallmetricsCollector, _to_client

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def snapshot(name: str, module: str, calls: int, failures: int = 0, event_type: str = "api",
             callers: tuple[CallerEdge, ...] = ()) -> FunctionSnapshot:
    sketch = DurationSketch()
    sketch.add_sorted([0.001] * calls)
    return FunctionSnapshot(
        name=name, event_type=event_type, module=module, calls=calls,
        successes=calls - failures, total=0.001 * calls, fast=calls, medium=0, slow=0,
        overhead=0.0, sketch=sketch, slowest=None, fastest=None, callers=callers)


class Snapshots:
    """A collector over snapshots built directly (callers and modules as given)."""

    def __init__(self, snapshots: list[FunctionSnapshot], **options: Any) -> None:
        """Hold the snapshots and the options of ``families``."""
        self.snapshots = snapshots
        self.options = options

    def collect(self) -> list[Any]:
        """Return the snapshots' families as prometheus_client metrics."""
        return [_to_client(family) for family in families(self.snapshots, **self.options)]


def samples(*snapshots: FunctionSnapshot, naming: Naming = "callmetrics",
            service: str = "") -> Samples:
    """Render snapshots built directly (no instance in between) in the text format."""
    registry = CollectorRegistry()
    registry.register(Snapshots(list(snapshots), naming=naming, service=service))
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for sample in family.samples}


def calls_of(got: Samples) -> dict[tuple[tuple[str, str], ...], float]:
    """function_calls_total by labels other than function, module and service_name."""
    return {tuple((k, v) for k, v in key if k not in ("function", "module", "service_name")):
            value for (name, key), value in got.items() if name == "function_calls_total"}


def test_default_naming_has_module_and_build_info() -> None:
    """Two functions of one name in two modules are two series; build info says the version."""
    got = samples(snapshot("get", "app.users", 3), snapshot("get", "app.orders", 5))
    calls = {dict(key)["module"]: value for (name, key), value in got.items()
             if name == "callmetrics_calls_total"}
    assert calls == {"app.users": 3, "app.orders": 5}
    info = [dict(key) for (name, key), _ in got.items() if name == "callmetrics_build_info"]
    assert len(info) == 1
    assert set(info[0]) == {"version", "hot_path"}


def test_autometrics_names_and_labels() -> None:
    """function_calls_total by result, the duration histogram and build_info, per spec v1.0.0."""
    got = samples(snapshot("checkout", "shop.cart", 10, failures=3), naming="autometrics",
                  service="shop")
    base = (("function", "checkout"), ("module", "shop.cart"), ("service_name", "shop"))
    assert got["function_calls_total", tuple(sorted((*base, ("result", "ok"))))] == 7
    assert got["function_calls_total", tuple(sorted((*base, ("result", "error"))))] == 3
    assert got["function_calls_duration_seconds_count", tuple(sorted(base))] == 10
    assert got["function_calls_duration_seconds_sum", tuple(sorted(base))] == pytest.approx(0.01)
    assert got["build_info", (("autometrics_version", "1.0.0"), ("service_name", "shop"))] == 1
    assert not any(name.startswith("callmetrics_calls") for name, _ in got)
    # No caller recorded: the caller labels are absent (the specification's MUST).
    assert all("caller_function" not in dict(key) for _, key in got)


def test_autometrics_buckets_include_the_specification_defaults() -> None:
    """The derived bounds hold the le values autometrics' latency objectives name."""
    got = samples(snapshot("f", "m", 4), naming="autometrics")
    bounds = {dict(key)["le"] for (name, key), _ in got.items()
              if name == "function_calls_duration_seconds_bucket"}
    assert {"0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0",
            "2.5", "5.0", "7.5", "10.0"} <= bounds


def test_callers_become_caller_labels_with_exact_totals() -> None:
    """Each caller's calls, and each result's, add up exactly; the caller's module is its own."""
    callee = snapshot("load", "app.db", 12, failures=1,
                      callers=(CallerEdge("main", 7, 0.1), CallerEdge("handle", 3, 0.05)))
    got = samples(callee, snapshot("main", "app.cli", 1), snapshot("handle", "app.web", 3),
                  naming="autometrics", service="svc")
    load = {key: value for (name, key), value in got.items()
            if name == "function_calls_total" and dict(key)["function"] == "load"}
    by_caller: dict[str, float] = {}
    by_result: dict[str, float] = {}
    for key, value in load.items():
        labels = dict(key)
        by_caller[labels.get("caller_function", "")] = \
            by_caller.get(labels.get("caller_function", ""), 0) + value
        by_result[labels["result"]] = by_result.get(labels["result"], 0) + value
        if "caller_function" in labels:
            assert labels["caller_module"] == {"main": "app.cli",
                                               "handle": "app.web"}[labels["caller_function"]]
    assert by_caller == {"": 2, "main": 7, "handle": 3}
    assert by_result == {"ok": 11, "error": 1}


def test_failures_beyond_the_untracked_calls_go_to_callers() -> None:
    """When every call had a tracked caller, the failures are put on callers, totals exact."""
    callee = snapshot("load", "app.db", 10, failures=2, callers=(CallerEdge("main", 10, 0.1),))
    got = calls_of(samples(callee, naming="autometrics", service="s"))
    assert got == {
        (("result", "error"),): 0, (("result", "ok"),): 0,
        (("caller_function", "main"), ("caller_module", ""), ("result", "error")): 2,
        (("caller_function", "main"), ("caller_module", ""), ("result", "ok")): 8,
    }


def test_one_function_under_two_event_types_is_one_autometrics_function() -> None:
    """Function and module identify a function: its event types add up."""
    got = samples(snapshot("f", "m", 3, event_type="a"), snapshot("f", "m", 4, event_type="b"),
                  naming="autometrics", service="s")
    assert calls_of(got) == {(("result", "ok"),): 7, (("result", "error"),): 0}
    count = [value for (name, _), value in got.items()
             if name == "function_calls_duration_seconds_count"]
    assert count == [7]


def test_service_name_comes_from_the_setting_then_the_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The setting wins, then AUTOMETRICS_SERVICE_NAME, then OTEL_SERVICE_NAME, then the store."""
    monkeypatch.delenv("AUTOMETRICS_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    assert service_name(None, tmp_path / "orders.sqlite") == "orders"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-otel")
    assert service_name(None, tmp_path / "orders.sqlite") == "from-otel"
    monkeypatch.setenv("AUTOMETRICS_SERVICE_NAME", "from-autometrics")
    assert service_name(None) == "from-autometrics"
    assert service_name("set") == "set"


def test_bad_naming_fails_early() -> None:
    """An unknown naming raises at once, naming the choices."""
    with pytest.raises(ValueError, match="callmetrics, autometrics"):
        CallmetricsCollector(Analytics(), naming="otel")  # type: ignore[arg-type]


def test_serve_metrics_refuses_an_unknown_naming(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    """`serve-metrics --naming` takes callmetrics or autometrics only (exit 2)."""
    with pytest.raises(SystemExit) as exit_:
        main(["serve-metrics", str(tmp_path / "s.sqlite"), "--port", "0", "--naming", "otel"])
    assert exit_.value.code == 2
    assert "--naming" in capsys.readouterr().err
