"""Which exposition a scraper asked for, from its ``Accept`` header.

Three are offered: the protobuf one (``application/vnd.google.protobuf;
proto=io.prometheus.client.MetricFamily; encoding=delimited``: native histograms),
OpenMetrics (``application/openmetrics-text``: exemplars) and the text format 0.0.4
(everything else).  The media range with the highest ``q`` that we offer wins; on a
tie, the order above.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["Format", "choose"]

Format = Literal["protobuf", "openmetrics", "text"]
_PREFERENCE: dict[Format, int] = {"protobuf": 3, "openmetrics": 2, "text": 1}


def _kind(media: str, params: dict[str, str]) -> Format | None:
    if media == "application/vnd.google.protobuf":
        if (params.get("proto") == "io.prometheus.client.MetricFamily"
                and params.get("encoding") == "delimited"):
            return "protobuf"
        return None
    if media == "application/openmetrics-text":
        return "openmetrics"
    if media in ("text/plain", "text/*", "*/*"):
        return "text"
    return None


def choose(accept: str | None) -> Format:
    """Return the format to answer ``accept`` with (text when nothing else fits)."""
    best: Format = "text"
    best_rank = (0.0, 0)
    for item in (accept or "").split(","):
        media, *raw = (part.strip() for part in item.split(";"))
        params: dict[str, str] = {}
        for param in raw:
            name, _, value = param.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        kind = _kind(media.lower(), params)
        if kind is None:
            continue
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            continue
        rank = (quality, _PREFERENCE[kind])
        if quality > 0 and rank > best_rank:
            best, best_rank = kind, rank
    return best
