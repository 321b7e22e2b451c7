"""Pushgateway pushes: the protobuf exposition (native histograms) or the text format."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from urllib.parse import quote

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from callmetrics.exporters import protobuf
from callmetrics.exporters.model import Family

__all__ = ["group_path", "push_families"]


def _segment(name: str, value: str) -> str:
    # The Pushgateway's path encoding: base64url for a value that is empty or has a '/'.
    if not value or "/" in value:
        encoded = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii") or "="
        return f"{name}@base64/{encoded}"
    return f"{name}/{quote(value, safe='')}"


def group_path(job: str, grouping_key: Mapping[str, str]) -> str:
    """Return the gateway path of the group ``job`` + ``grouping_key``."""
    return "/metrics/" + "/".join(
        _segment(name, value) for name, value in [("job", job), *grouping_key.items()])


def push_families(gateway: str, job: str, grouping_key: Mapping[str, str],
                  read: Callable[[], list[Family]], registry: CollectorRegistry, *,
                  native: bool, timeout: float | None,
                  handler: Callable[..., Callable[[], None]]) -> None:
    """PUT the metrics to the gateway's group, replacing what it held.

    Raises:
        OSError: when the gateway cannot be reached or refuses the push.

    """
    base = gateway if "://" in gateway else f"http://{gateway}"
    url = base.rstrip("/") + group_path(job, grouping_key)
    if native:
        data, content_type = protobuf.encode(read()), protobuf.CONTENT_TYPE
    else:
        data, content_type = bytes(generate_latest(registry)), str(CONTENT_TYPE_LATEST)
    handler(url=url, method="PUT", timeout=timeout,
            headers=[("Content-Type", content_type)], data=data)()
