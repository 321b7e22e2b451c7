"""What one Prometheus scrape of 1,000 functions costs, per exposition format.

Run: ``python benchmarks/scrape_cost.py [--functions N]``.  Builds an instance holding
``N`` functions (default 1,000), each with 2,000 durations spread log-uniformly from
100 ns to 1 s (the widest spread real functions show, hence the most buckets), then
times a whole ``/metrics`` answer through the exporter's WSGI app for each format the
exporter offers: the text format (classic histograms), OpenMetrics (classic, with
exemplars where calls carry trace ids), and the protobuf exposition (native
histograms with the classic buckets alongside).  Best of several rounds, in
milliseconds, with the answer's size.  Prints figures; never fails on them.

Measured on the shared 2-core machine (issue 23): before, prometheus_client's text
exposition of the old collector (14 fixed buckets) took 2.9 s (2.0 MB); after, the
text format 1.8 s (91 derived buckets, 13 MB), OpenMetrics 3.3 s, and the protobuf
exposition with native histograms and the classic buckets 2.2 s (3.3 MB).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from callmetrics import Analytics
from callmetrics._engine.sketch import DurationSketch
from callmetrics._engine.state import FunctionSnapshot

ROUNDS = 5
FORMATS = {
    "text 0.0.4 (classic)": "text/plain",
    "OpenMetrics (classic)": "application/openmetrics-text; version=1.0.0",
    "protobuf (native + classic)": "application/vnd.google.protobuf; "
                                   "proto=io.prometheus.client.MetricFamily; encoding=delimited",
}


def snapshot(name: str, rng: random.Random, calls: int) -> FunctionSnapshot:
    """Return a function's aggregates with ``calls`` log-uniform durations, 100 ns to 1 s."""
    values = sorted(10 ** rng.uniform(-7, 0) for _ in range(calls))
    sketch = DurationSketch()
    sketch.add_sorted(values)
    return FunctionSnapshot(name=name, event_type="bench", module="bench.module",
                            calls=calls, successes=calls - calls // 50, total=sum(values),
                            fast=calls, medium=0, slow=0, overhead=0.0, sketch=sketch,
                            slowest=None, fastest=None)


def filled(functions: int) -> Analytics:
    """Return an instance holding ``functions`` functions' aggregates."""
    rng = random.Random(1)
    analytics = Analytics()
    analytics.restore([snapshot(f"function_{i:04d}", rng, 2000) for i in range(functions)], [])
    return analytics


def scrape(app: Callable[..., Iterable[bytes]], accept: str) -> bytes:
    """Return one whole answer of the WSGI ``app`` to ``GET /metrics``."""
    status: list[str] = []

    def start_response(line: str, _headers: list[tuple[str, str]], *_: Any) -> None:
        status.append(line)

    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics",
                         "QUERY_STRING": "", "HTTP_ACCEPT": accept}, start_response))
    assert status[0].startswith("200"), status
    return body


def app_for(analytics: Analytics) -> Callable[..., Iterable[bytes]]:
    """Return the exporter's WSGI app (the one serve-metrics runs) over ``analytics``."""
    from callmetrics.exporters.prometheus import metrics_app  # noqa: PLC0415  # after the data

    return metrics_app(analytics)


def main() -> None:
    """Print the scrape time and size for each format."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=1000)
    args = parser.parse_args()
    analytics = filled(args.functions)
    app = app_for(analytics)
    print(f"{args.functions} functions, 2,000 calls each (100 ns to 1 s, log-uniform)")
    for label, accept in FORMATS.items():
        best = float("inf")
        size = 0
        kind = ""
        for _ in range(ROUNDS):
            began = time.perf_counter()
            body = scrape(app, accept)
            best = min(best, time.perf_counter() - began)
            size = len(body)
            kind = body[:1].decode("latin-1")
        note = "" if kind != "#" or "protobuf" not in label else "  (answered as text: no protobuf)"
        print(f"  {label:30} {best * 1e3:8.1f} ms  {size / 1e6:6.2f} MB{note}")


if __name__ == "__main__":
    main()
