"""Test helpers for the exporters: the Prometheus protobuf exposition, real servers.

The messages are decoded with the real ``protobuf`` package against a descriptor of
``io.prometheus.client``'s ``metrics.proto`` built here field by field (the fields
callmetrics writes, numbered as in Prometheus's file), so the tests check the
hand-written encoder against an independent decoder.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from conftest import require_program

T = TypeVar("T")

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_MESSAGES: dict[str, list[tuple[str, int, int, int, str]]] = {
    "Timestamp": [("seconds", 1, _F.TYPE_INT64, _OPT, ""), ("nanos", 2, _F.TYPE_INT32, _OPT, "")],
    "LabelPair": [("name", 1, _F.TYPE_STRING, _OPT, ""), ("value", 2, _F.TYPE_STRING, _OPT, "")],
    "Gauge": [("value", 1, _F.TYPE_DOUBLE, _OPT, "")],
    "Exemplar": [("label", 1, _F.TYPE_MESSAGE, _REP, "LabelPair"),
                 ("value", 2, _F.TYPE_DOUBLE, _OPT, ""),
                 ("timestamp", 3, _F.TYPE_MESSAGE, _OPT, "Timestamp")],
    "Counter": [("value", 1, _F.TYPE_DOUBLE, _OPT, ""),
                ("exemplar", 2, _F.TYPE_MESSAGE, _OPT, "Exemplar")],
    "Bucket": [("cumulative_count", 1, _F.TYPE_UINT64, _OPT, ""),
               ("upper_bound", 2, _F.TYPE_DOUBLE, _OPT, ""),
               ("exemplar", 3, _F.TYPE_MESSAGE, _OPT, "Exemplar")],
    "BucketSpan": [("offset", 1, _F.TYPE_SINT32, _OPT, ""),
                   ("length", 2, _F.TYPE_UINT32, _OPT, "")],
    "Histogram": [("sample_count", 1, _F.TYPE_UINT64, _OPT, ""),
                  ("sample_sum", 2, _F.TYPE_DOUBLE, _OPT, ""),
                  ("bucket", 3, _F.TYPE_MESSAGE, _REP, "Bucket"),
                  ("schema", 5, _F.TYPE_SINT32, _OPT, ""),
                  ("zero_threshold", 6, _F.TYPE_DOUBLE, _OPT, ""),
                  ("zero_count", 7, _F.TYPE_UINT64, _OPT, ""),
                  ("positive_span", 12, _F.TYPE_MESSAGE, _REP, "BucketSpan"),
                  ("positive_delta", 13, _F.TYPE_SINT64, _REP, "")],
    "Metric": [("label", 1, _F.TYPE_MESSAGE, _REP, "LabelPair"),
               ("gauge", 2, _F.TYPE_MESSAGE, _OPT, "Gauge"),
               ("counter", 3, _F.TYPE_MESSAGE, _OPT, "Counter"),
               ("histogram", 7, _F.TYPE_MESSAGE, _OPT, "Histogram")],
    "MetricFamily": [("name", 1, _F.TYPE_STRING, _OPT, ""), ("help", 2, _F.TYPE_STRING, _OPT, ""),
                     ("type", 3, _F.TYPE_INT32, _OPT, ""),
                     ("metric", 4, _F.TYPE_MESSAGE, _REP, "Metric")],
}


def _family_class() -> Any:
    file = descriptor_pb2.FileDescriptorProto(name="callmetrics_test_metrics.proto",
                                              package="io.prometheus.client", syntax="proto2")
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field, number, kind, label, type_name in fields:
            added = message.field.add(name=field, number=number, type=kind, label=label)
            if type_name:
                added.type_name = f".io.prometheus.client.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("io.prometheus.client.MetricFamily"))


MetricFamily = _family_class()


def decode_delimited(data: bytes) -> dict[str, Any]:
    """Return the MetricFamily messages of a delimited stream, by name."""
    found: dict[str, Any] = {}
    at = 0
    while at < len(data):
        length = shift = 0
        while True:
            byte = data[at]
            at += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        family = MetricFamily()
        family.ParseFromString(data[at:at + length])
        at += length
        found[family.name] = family
    return found


def labels_of(metric: Any) -> dict[str, str]:
    """Return a decoded Metric's labels."""
    return {pair.name: pair.value for pair in metric.label}


def native_buckets(histogram: Any) -> dict[int, int]:
    """Return a decoded native histogram's ``{index: count}`` from its spans and deltas."""
    counts: dict[int, int] = {}
    deltas = iter(histogram.positive_delta)
    index = 0
    count = 0
    for n, span in enumerate(histogram.positive_span):
        index = span.offset if n == 0 else index + span.offset
        for _ in range(span.length):
            count += next(deltas)
            if count:
                counts[index] = count
            index += 1
    return counts


def native_quantile(q: float, schema: int, zero_count: int, buckets: dict[int, int]) -> float:
    """Return the q-quantile as Prometheus 2.42 computes it: linear within the bucket."""
    total = zero_count + sum(buckets.values())
    rank = q * total
    if rank <= zero_count:
        return 0.0
    seen = zero_count
    base = 2.0 ** (2.0 ** -schema)
    for index in sorted(buckets):
        if seen + buckets[index] >= rank:
            low, high = base ** (index - 1), base ** index
            return float(low + (high - low) * (rank - seen) / buckets[index])
        seen += buckets[index]
    return float(base ** max(buckets))


def exact_quantile(q: float, values: list[float]) -> float:
    """Return the q-quantile Prometheus estimates: the value at rank q * n (n sorted values)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


# -- real servers: Prometheus, the Pushgateway, serve-metrics --------------------------

STARTUP_DEADLINE = 60.0  # seconds for a server to start and a first scrape to land


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, accept: str | None = None) -> bytes:
    """Return the body at ``url`` (loopback http), asking for ``accept``."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})  # noqa: S310  # loopback http
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # loopback http
        return bytes(response.read())


@dataclass
class Server:
    """A server process started for one test, with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    base_url: str

    def wait_for(self, what: str, probe: Callable[[], T | None],
                 deadline: float = STARTUP_DEADLINE) -> T:
        """Poll ``probe`` until it returns a value, failing at the deadline or if we exit."""
        until = time.monotonic() + deadline
        last_error: Exception | None = None
        while time.monotonic() < until:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode} while waiting "
                            f"for {what}:\n{self.log.read_text()[-3000:]}")
            try:
                found = probe()
            except OSError as exc:  # not listening yet
                last_error = exc
            else:
                if found is not None:
                    return found
            time.sleep(0.2)  # poll interval, not a tuned wait: the deadline bounds it
        pytest.fail(f"{self.name}: no {what} within {deadline:.0f} s (last error: {last_error})"
                    f"\n{self.log.read_text()[-3000:]}")


class Launcher:
    """Starts server processes in a folder; ``stop()`` terminates every one."""

    def __init__(self, folder: Path) -> None:
        """Start servers in ``folder`` (their logs and data go there)."""
        self.folder = folder
        self.started: list[Server] = []

    def __call__(self, name: str, argv: list[str], base_url: str) -> Server:
        """Start ``argv`` as the server ``name``, its output in ``name.log``."""
        log = self.folder / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                       cwd=self.folder)
        server = Server(name, process, log, base_url)
        self.started.append(server)
        return server

    def prometheus(self, targets: list[str], *, native: bool = False,
                   name: str = "prometheus", features: tuple[str, ...] = ()) -> Server:
        """Start Debian's prometheus scraping ``targets`` every second."""
        binary = require_program("prometheus", "the Prometheus end-to-end tests scrape with it")
        config = self.folder / f"{name}.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": "callmetrics",
                                "static_configs": [{"targets": targets}]}],
        }))
        port = free_port()
        return self(name, [
            binary, f"--config.file={config}", f"--storage.tsdb.path={self.folder / name}",
            f"--web.listen-address=127.0.0.1:{port}",
            *(["--enable-feature=native-histograms"] if native else []),
            *(f"--enable-feature={feature}" for feature in features),
        ], f"http://127.0.0.1:{port}")

    def stop(self) -> None:
        """Terminate every server started, killing those that do not stop in 20 s."""
        for server in self.started:
            server.process.terminate()
        for server in self.started:
            try:
                server.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


def query(prometheus: Server, promql: str) -> list[dict[str, Any]]:
    """Run an instant PromQL query and return its result vector."""
    url = f"{prometheus.base_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    answer = json.loads(get(url))
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def scalar(prometheus: Server, promql: str) -> float | None:
    """Return the one value a query answers, or None while it answers nothing."""
    found = query(prometheus, promql)
    if not found:
        return None
    assert len(found) == 1, found
    return float(found[0]["value"][1])
