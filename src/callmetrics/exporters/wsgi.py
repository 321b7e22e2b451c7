"""The ``/metrics`` WSGI app: the exposition the scraper asked for, gzipped when it may be."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as _untyped_openmetrics

from callmetrics.exporters import protobuf
from callmetrics.exporters.model import Family
from callmetrics.exporters.negotiate import Format, choose

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["metrics_app", "render"]

_INDEX = (b'<!doctype html><meta charset="utf-8"><title>callmetrics</title>'
          b'<p>callmetrics: the metrics are at <a href="/metrics">/metrics</a>.</p>\n')
_NOT_FOUND = b"Not found: callmetrics serves its metrics at /metrics only.\n"
# The library's OpenMetrics writer (untyped upstream, hence the annotation).
generate_openmetrics: Callable[[CollectorRegistry], bytes] = _untyped_openmetrics
_GZIP_ABOVE = 1024  # bytes: smaller answers are not worth compressing


def render(kind: Format, read: Callable[[], list[Family]],
           registry: CollectorRegistry) -> tuple[bytes, str]:
    """Return the body and content type of one exposition of ``kind``."""
    if kind == "protobuf":
        return protobuf.encode(read()), protobuf.CONTENT_TYPE
    if kind == "openmetrics":
        return bytes(generate_openmetrics(registry)), str(OPENMETRICS_TYPE)
    return bytes(generate_latest(registry)), str(CONTENT_TYPE_LATEST)


def metrics_app(read: Callable[[], list[Family]], registry: CollectorRegistry,
                ) -> WSGIApplication:
    """Answer ``/metrics`` from ``read`` (protobuf) or ``registry`` (text formats).

    ``/`` links to ``/metrics``; any other path is 404.
    """

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            body, kind = render(choose(environ.get("HTTP_ACCEPT")), read, registry)
            headers = [("Content-Type", kind)]
            if len(body) > _GZIP_ABOVE and "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
                body = gzip.compress(body, compresslevel=1)
                headers.append(("Content-Encoding", "gzip"))
            headers.append(("Content-Length", str(len(body))))
            start_response("200 OK", headers)
            yield body
            return
        found = path == "/"
        body = _INDEX if found else _NOT_FOUND
        content = "text/html" if found else "text/plain"
        start_response("200 OK" if found else "404 Not Found",
                       [("Content-Type", f"{content}; charset=utf-8"),
                        ("Content-Length", str(len(body)))])
        yield body

    return app
