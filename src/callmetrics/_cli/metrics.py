"""``callmetrics serve-metrics STORE [--port N]``: a Prometheus endpoint over a store.

``callmetrics metrics-asset dashboard|rules`` prints the shipped Grafana dashboard or
Prometheus rules.

It answers in the format the scraper asks for: the protobuf exposition with native
histograms (Prometheus with ``--enable-feature=native-histograms``), OpenMetrics, or
the text format.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from callmetrics._format import printable

__all__ = ["add_commands"]


# The default port: 9464, the one OpenTelemetry's Prometheus exporter listens on.
DEFAULT_PORT = 9464

def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--port must be a number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"--port must be between 0 and 65535, got {port}")
    return port


def _buckets(text: str) -> list[float]:
    from callmetrics.exporters.buckets import check_buckets  # noqa: PLC0415  # keep --help fast

    try:
        bounds = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--buckets must be comma-separated seconds, got {text!r}") from None
    try:
        check_buckets(bounds)  # checked before the store is opened
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--{exc}") from None
    return bounds


def _serve(args: argparse.Namespace) -> int:
    from callmetrics._cli.common import (  # noqa: PLC0415  # keep --help fast
        CliError,  # _cli imports this module
        list_store_runs,
        store_path,
    )

    try:
        from callmetrics.exporters.prometheus import serve_metrics  # noqa: PLC0415  # optional extra
    except ImportError as exc:
        raise CliError(str(exc)) from None
    # Checked like every other command (same words, exit 2): a missing file, a folder or
    # a file that is not a store never gets served as "callmetrics_source_up 0".
    store = store_path(args)
    if not store.is_file():
        raise CliError(f"not a callmetrics store: {store} is a folder")
    list_store_runs(store)
    try:
        server = serve_metrics(store, args.port, args.addr, buckets=args.buckets,
                               naming=args.naming, service=args.service_name)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot listen on {args.addr}:{args.port}: {exc.strerror or exc}") from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001  # signal API
        stop.set()

    previous: dict[int, Any] = {sig: signal.signal(sig, on_signal)
                                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        print(f"Serving the metrics of {printable(str(store))} at {printable(server.url)} "
              "(Ctrl-C stops)", flush=True)
        # A timed wait, so that signals are handled promptly on every platform.
        while not stop.wait(1.0):
            pass
    finally:
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _asset(args: argparse.Namespace) -> int:
    from callmetrics._cli.common import CliError  # noqa: PLC0415  # _cli imports this module
    from callmetrics.exporters.assets import asset_text  # noqa: PLC0415  # keep --help fast

    text = asset_text(args.asset)
    if args.output is None:
        print(text, end="")
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {printable(args.output)}: {exc.strerror or exc}") from None
    print(f"Wrote the {args.asset} to {printable(args.output)}")
    return 0


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``serve-metrics`` and ``metrics-asset`` to the CLI."""
    serve = commands.add_parser(
        "serve-metrics", help="serve a store's numbers on a Prometheus /metrics endpoint",
        description="Serve the numbers of a store (every process that writes to it, counted "
                    "once) on a Prometheus /metrics endpoint, until stopped.")
    serve.add_argument("store", metavar="STORE", help="the SQLite store the processes write to")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT,
                       help=f"TCP port to listen on (default {DEFAULT_PORT}, the port "
                            "registered for Prometheus exporters of this kind; 0 picks a free "
                            "one, printed at start)")
    serve.add_argument("--addr", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; 0.0.0.0 for every "
                            "interface)")
    serve.add_argument("--buckets", type=_buckets, default=None,
                       help="classic histogram bucket bounds in seconds, comma-separated "
                            "(default: derived from the data, ten per decade over the range "
                            "the calls span)")
    serve.add_argument("--naming", choices=("callmetrics", "autometrics"), default="callmetrics",
                       help="metric names and labels: callmetrics' own (default), or the "
                            "autometrics v1.0.0 specification's (function_calls_total, ...)")
    serve.add_argument("--service-name", default=None,
                       help="autometrics service_name (default: AUTOMETRICS_SERVICE_NAME, "
                            "OTEL_SERVICE_NAME, else the store's file name)")
    serve.set_defaults(handler=_serve)
    asset = commands.add_parser(
        "metrics-asset", help="print the shipped Grafana dashboard or Prometheus rules",
        description="Print one of the monitoring assets installed with callmetrics: the "
                    "Grafana dashboard (JSON, to import) or the Prometheus recording and "
                    "alerting rules (YAML, for rule_files).")
    asset.add_argument("asset", choices=("dashboard", "rules"),
                       help="dashboard: Grafana JSON; rules: Prometheus rules YAML")
    asset.add_argument("-o", "--output", default=None,
                       help="write it to this file (default: print it)")
    asset.set_defaults(handler=_asset)
