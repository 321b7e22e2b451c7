"""The shipped monitoring assets: a Grafana dashboard and Prometheus rules.

Both are installed with the package (``callmetrics/assets/``).  Print one with
``callmetrics metrics-asset dashboard`` (or ``rules``), or find its path here::

    from callmetrics.exporters.assets import asset_path
    asset_path("rules")
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["ASSETS", "asset_path", "asset_text"]

ASSETS = {
    "dashboard": "grafana-dashboard.json",
    "rules": "prometheus-rules.yml",
}


def _file(name: str) -> resources.abc.Traversable:
    if name not in ASSETS:
        raise ValueError(f"asset must be one of {', '.join(ASSETS)}, got {name!r}")
    return resources.files("callmetrics").joinpath("assets", ASSETS[name])


def asset_path(name: str) -> Path:
    """Return the installed file of asset ``name`` (``"dashboard"`` or ``"rules"``)."""
    return Path(str(_file(name)))


def asset_text(name: str) -> str:
    """Return the text of asset ``name``."""
    return _file(name).read_text(encoding="utf-8")
