"""The shipped Grafana dashboard and Prometheus rules: installed, valid, and right.

The rules go through Debian's ``promtool``: ``check rules``, and ``test rules`` with
series written here (one function failing 10 % of its calls with a slow p99, one
healthy), so the recording rules' values and which alerts fire are checked.  The
dashboard's queries run against real Prometheus servers in test_exporters_live.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from callmetrics._cli import main
from callmetrics.exporters.assets import ASSETS, asset_path, asset_text
from conftest import require_program

LABELS = 'job="app", instance="a:1", event_type="api"'


def series(function: str, calls: str, failures: dict[str, str],
           buckets: dict[str, str]) -> list[dict[str, str]]:
    """Counter series growing by the given amounts per minute (promtool's notation).

    ``failures`` by ``error_type`` ("": the one untyped series of a function without any).
    """
    where = f'{LABELS}, function="{function}", module="app.views"'
    found = [{"series": f"callmetrics_calls_total{{{where}}}", "values": f"0+{calls}x40"}]
    found += [{"series": f'callmetrics_failures_total{{{where}, error_type="{kind}"}}'
               if kind else f"callmetrics_failures_total{{{where}}}",
               "values": f"0+{per_minute}x40"} for kind, per_minute in failures.items()]
    found += [{"series": f'callmetrics_call_duration_seconds_bucket{{{where}, le="{le}"}}',
               "values": f"0+{per_minute}x40"} for le, per_minute in buckets.items()]
    return found


def rule_tests(rules: Path) -> dict[str, Any]:
    """A promtool test file: `slow` fails 10 % of 600 calls a minute, p99 2.47 s; `ok` is fine.

    `slow` fails with two types: TimeoutError 45 times a minute, ValueError 15.
    """
    slow = series("slow", "600", {"TimeoutError": "45", "ValueError": "15"},
                  {"0.5": "300", "1": "300", "2.5": "600", "+Inf": "600"})
    healthy = series("ok", "600", {"": "0"}, {"0.01": "590", "0.1": "600", "+Inf": "600"})
    where = 'event_type="api", function="{f}", module="app.views"'
    return {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [*slow, *healthy,
                             {"series": f'callmetrics_source_up{{{LABELS}}}', "values": "1x40"}],
            "promql_expr_test": [
                {"expr": "callmetrics:calls:rate5m", "eval_time": "20m",
                 "exp_samples": [{"labels": f"callmetrics:calls:rate5m{{{where.format(f=f)}}}",
                                  "value": 10} for f in ("ok", "slow")]},
                {"expr": "callmetrics:error_ratio:rate5m", "eval_time": "20m",
                 "exp_samples": [
                     {"labels": f"callmetrics:error_ratio:rate5m{{{where.format(f=f)}}}",
                      "value": v} for f, v in (("ok", 0), ("slow", 0.1))]},
                {"expr": "callmetrics:failures_by_type:rate5m", "eval_time": "20m",
                 "exp_samples": [
                     {"labels": "callmetrics:failures_by_type:rate5m"
                                f"{{{where.format(f='slow')}, error_type=\"{kind}\"}}",
                      "value": value} for kind, value in (("TimeoutError", 0.75),
                                                          ("ValueError", 0.25))]},
                {"expr": 'callmetrics:call_duration_seconds:p99_rate5m{function="slow"}',
                 "eval_time": "20m",
                 "exp_samples": [{"labels": "callmetrics:call_duration_seconds:p99_rate5m"
                                            f"{{{where.format(f='slow')}}}", "value": 2.47}]},
                {"expr": 'callmetrics:call_duration_seconds:p50_rate5m{function="slow"}',
                 "eval_time": "20m",
                 "exp_samples": [{"labels": "callmetrics:call_duration_seconds:p50_rate5m"
                                            f"{{{where.format(f='slow')}}}", "value": 0.5}]},
            ],
            "alert_rule_test": [
                {"alertname": "CallmetricsHighErrorRatio", "eval_time": "10m", "exp_alerts": []},
                {"alertname": "CallmetricsHighErrorRatio", "eval_time": "20m", "exp_alerts": [{
                    "exp_labels": {"severity": "warning", "function": "slow",
                                   "module": "app.views", "event_type": "api"},
                    "exp_annotations": {
                        "summary": "app.views.slow fails in 10% of its calls",
                        "description": "More than 5% of the calls of slow (app.views) raised "
                                       "over the last 5 minutes, for 10 minutes."}}]},
                {"alertname": "CallmetricsSlowP99", "eval_time": "20m", "exp_alerts": [{
                    "exp_labels": {"severity": "warning", "function": "slow",
                                   "module": "app.views", "event_type": "api"},
                    "exp_annotations": {
                        "summary": "app.views.slow: p99 2.47s",
                        "description": "The 99th percentile of the duration of slow (app.views) "
                                       "has been over the objective of 1 s for 10 minutes."}}]},
                {"alertname": "CallmetricsSourceDown", "eval_time": "20m", "exp_alerts": []},
            ],
        }],
    }


def test_assets_are_installed_with_the_package() -> None:
    """Both assets are files of the installed package, and the CLI prints them."""
    for name in ASSETS:
        assert asset_path(name).is_file()
        assert asset_text(name).strip()
    json.loads(asset_text("dashboard"))


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_metrics_asset_command_prints_the_asset(name: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`callmetrics metrics-asset NAME` prints the asset, exactly."""
    assert main(["metrics-asset", name]) == 0
    assert capsys.readouterr().out == asset_text(name)


def test_metrics_asset_command_writes_the_asset(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`--output FILE` writes the asset there and says so; an unwritable path exits 2."""
    target = tmp_path / "rules.yml"
    assert main(["metrics-asset", "rules", "--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == asset_text("rules")
    assert str(target) in capsys.readouterr().out
    assert main(["metrics-asset", "rules", "--output", str(tmp_path / "no" / "x.yml")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_unknown_asset_is_refused() -> None:
    """Asking for an asset that does not exist names the choices."""
    with pytest.raises(ValueError, match="dashboard, rules"):
        asset_path("alerts")


def test_rules_pass_promtool_check() -> None:
    """`promtool check rules` accepts the shipped rules file."""
    promtool = require_program("promtool", "it checks the shipped Prometheus rules")
    result = subprocess.run([promtool, "check", "rules", str(asset_path("rules"))],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_pass_promtool_unit_tests(tmp_path: Path) -> None:
    """`promtool test rules`: the recorded values and the alerts that fire are the expected."""
    promtool = require_program("promtool", "it runs the rules' unit tests")
    tests = tmp_path / "rules_test.yml"
    tests.write_text(json.dumps(rule_tests(asset_path("rules"))))  # JSON is YAML
    result = subprocess.run([promtool, "test", "rules", str(tests)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dashboard_panel_has_a_prometheus_query() -> None:
    """Each panel queries the dashboard's Prometheus data source through the variable."""
    dashboard = json.loads(asset_text("dashboard"))
    assert dashboard["uid"] == "callmetrics-functions"
    names = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert names == {"datasource", "function"}
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["expr"].strip()
