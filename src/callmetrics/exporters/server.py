"""The ``/metrics`` HTTP server: a WSGI app in a background thread, and its handle."""

from __future__ import annotations

import socket
import threading
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

__all__ = ["MetricsServer", "start"]


class _QuietHandler(WSGIRequestHandler):
    """Serves requests without printing a line for each on stderr."""

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        """Say nothing: a scrape every few seconds must not fill the terminal."""


def start(app: WSGIApplication, addr: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``app`` on ``addr:port`` from a daemon thread, one thread per request."""
    family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM,
                                flags=socket.AI_PASSIVE)[0][0]

    class Server(ThreadingMixIn, WSGIServer):
        """One thread per request (a slow scrape never blocks the next), IPv4 or IPv6."""

        daemon_threads = True
        address_family = family

    server = make_server(addr, port, app, Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="callmetrics-metrics",
                              daemon=True)
    thread.start()
    return server, thread


class MetricsServer:
    """A running ``/metrics`` endpoint; ``close()`` (or leaving ``with``) stops it.

    It answers ``/metrics`` only (``/`` links to it; any other path is 404).
    """

    def __init__(self, server: WSGIServer, thread: threading.Thread, registry: Any) -> None:
        """Wrap the running server, its thread and the registry it serves."""
        self._server = server
        self._thread = thread
        self.registry = registry

    @property
    def addr(self) -> str:
        """The address the endpoint listens on."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The port the endpoint listens on (the real one when 0 was asked for)."""
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """The endpoint's ``http://addr:port/metrics`` address."""
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and free the port; safe to call twice."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        """Return self; leaving the block stops the server."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.close()

    def __repr__(self) -> str:
        """Show where it serves."""
        return f"MetricsServer({self.url})"
