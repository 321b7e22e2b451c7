"""The Prometheus protobuf exposition: ``io.prometheus.client.MetricFamily``, delimited.

Written by hand rather than with the ``protobuf`` package: the exposition needs six
small messages (MetricFamily, Metric, LabelPair, Counter/Gauge, Histogram with its
BucketSpan, Bucket and Exemplar), which take a few dozen lines of wire-format code;
the package would add a dependency of several megabytes, a generated module to keep
in step with Prometheus's ``metrics.proto``, and tens of milliseconds of import to
every process serving metrics.  The tests decode what this writes with the real
``protobuf`` package, against a descriptor of ``metrics.proto``, and a real
Prometheus ingests it.

Each family is one length-prefixed (varint) MetricFamily message.  A histogram
carries its classic buckets (with exemplars) and, alongside, the native histogram
built from the sketch (:mod:`callmetrics.exporters.native`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from operator import sub

from callmetrics.exporters.exemplars import Exemplar
from callmetrics.exporters.model import Family, Histogram, Labels
from callmetrics.exporters.native import SCHEMA, ZERO_THRESHOLD, native_histogram

__all__ = ["CONTENT_TYPE", "encode"]

CONTENT_TYPE = ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
                "encoding=delimited")

_TYPES = {"counter": 0, "gauge": 1, "histogram": 4}
_DOUBLE = struct.Struct("<d").pack
_VARINT, _FIXED64, _BYTES = 0, 1, 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


# The varint of each small zigzagged delta, made once: most bucket deltas are small.
_SMALL = {delta: _varint(_zigzag(delta)) for delta in range(-4096, 4097)}


def _delta_bytes(delta: int) -> bytes:
    found = _SMALL.get(delta)
    return found if found is not None else _varint(_zigzag(delta))


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _message(number: int, body: bytes) -> bytes:
    return _key(number, _BYTES) + _varint(len(body)) + body


def _double(number: int, value: float) -> bytes:
    return _key(number, _FIXED64) + _DOUBLE(value)


def _uint(number: int, value: int) -> bytes:
    return _key(number, _VARINT) + _varint(value)


def _string(number: int, text: str) -> bytes:
    return _message(number, text.encode("utf-8"))


def _labels(number: int, labels: Labels) -> bytes:
    return b"".join(_message(number, _string(1, name) + _string(2, value))
                    for name, value in labels)


def _exemplar(number: int, exemplar: Exemplar) -> bytes:
    seconds = int(exemplar.timestamp)
    nanos = int((exemplar.timestamp - seconds) * 1e9)
    stamp = _uint(1, seconds) + (_uint(2, nanos) if nanos else b"")
    body = (_labels(1, (("trace_id", exemplar.trace_id), ("span_id", exemplar.span_id)))
            + _double(2, exemplar.value) + _message(3, stamp))
    return _message(number, body)


def _histogram(histogram: Histogram) -> bytes:
    parts = [_uint(1, histogram.count), _double(2, histogram.total)]
    exemplars = histogram.exemplars
    for i, (bound, count) in enumerate(zip(histogram.bounds, histogram.cumulative,
                                           strict=True)):
        bucket = _uint(1, count) + _double(2, bound)
        if exemplars and exemplars[i] is not None:
            bucket += _exemplar(3, exemplars[i])  # type: ignore[arg-type]  # checked above
        parts.append(_message(3, bucket))
    native = native_histogram(histogram.sketch)
    parts += [_uint(5, _zigzag(SCHEMA)), _double(6, ZERO_THRESHOLD)]
    if native.zero_count:
        parts.append(_uint(7, native.zero_count))
    spans: list[bytes] = []
    every: list[int] = []
    previous_end = 0
    for first, counts in native.spans():
        # The first span's offset is its index; each next one's, the gap since the last.
        offset = first if not spans else first - previous_end
        spans.append(_message(12, _uint(1, _zigzag(offset)) + _uint(2, len(counts))))
        previous_end = first + len(counts)
        every += counts
    deltas = b"".join(map(_delta_bytes, map(sub, every, [0, *every[:-1]])))
    if not spans:  # a no-op span: says "native" even with no bucket yet
        spans.append(_message(12, b""))
    parts += spans
    if deltas:
        parts.append(_message(13, bytes(deltas)))  # packed sint64
    return b"".join(parts)


def _metric(kind: str, labels: Labels, value: float | Histogram) -> bytes:
    body = _labels(1, labels)
    if isinstance(value, Histogram):
        return body + _message(7, _histogram(value))
    number = 3 if kind == "counter" else 2
    return body + _message(number, _double(1, float(value)))


def encode(families: Iterable[Family]) -> bytes:
    """Return the families as delimited MetricFamily messages (families without series skipped)."""
    out = bytearray()
    for family in families:
        if not family.series:
            continue
        body = (_string(1, family.name) + _string(2, family.help)
                + _uint(3, _TYPES[family.kind])
                + b"".join(_message(4, _metric(family.kind, labels, value))
                           for labels, value in family.series))
        out += _varint(len(body)) + body
    return bytes(out)
