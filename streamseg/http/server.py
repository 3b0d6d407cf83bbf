"""One small HTTP server for everything the pipeline exposes: metrics, health, previews.

Routes are plugged in by path. A plain route returns the whole response at once; a
stream route writes its response itself for as long as it likes (an MJPEG preview),
through a ``StreamWriter`` that also says when the server is closing.

    with HttpServer("127.0.0.1", 0) as server:
        serve_metrics(server, metrics.registry)
        serve_health(server, lambda: (True, "running"))
        print(server.url)

A plain route may also answer POST, PUT or DELETE, and may match every path under a
prefix (``/streams/`` for ``/streams/cam1``), so that streams added and removed while
the server runs can be managed over HTTP and their routes taken away again.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streamseg.errors import ConfigError, OutputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """What a route handler gets to know about the request."""

    method: str  # "GET", "HEAD", "POST", "PUT" or "DELETE"
    path: str  # without the query string; the whole path for a prefix route too
    query: dict[str, list[str]]
    headers: Message
    body: bytes = b""  # of POST, PUT and DELETE requests; empty without a valid Content-Length


Response = tuple[int, str, bytes]  # (status, content type, body)
RouteHandler = Callable[[Request], Response]

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})  # what a route can answer
MAX_BODY_BYTES = 64 * 1024  # larger request bodies get 413: routes take small JSON, not uploads
_BODY_METHODS = frozenset({"POST", "PUT", "DELETE"})
# An oversized body is read and dropped up to this much, so the client gets to read the 413
# rather than a connection reset; past it the connection is simply closed.
_MAX_DISCARD_BYTES = 1024 * 1024


class StreamWriter:
    """The response of a stream route, written piece by piece.

    ``write`` raises ``ConnectionError`` once the client has gone; the server treats
    that as the normal end of a stream. Long-running handlers should also stop when
    ``closing`` turns true, or wait on it with ``wait_closing``.
    """

    def __init__(self, handler: BaseHTTPRequestHandler, closing: threading.Event) -> None:
        self._handler = handler
        self._closing = closing
        self.started = False

    @property
    def closing(self) -> bool:
        """True once the server is shutting down."""
        return self._closing.is_set()

    def wait_closing(self, timeout: float | None = None) -> bool:
        """Sleeps until the server shuts down or ``timeout`` passes; returns ``closing``."""
        return self._closing.wait(timeout)

    def start(
        self,
        status: int = 200,
        content_type: str = "application/octet-stream",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Sends the status line and headers. Once only, before the first ``write``."""
        if self.started:
            raise RuntimeError("the response has already started")
        self.started = True
        self._handler.send_response(status)
        self._handler.send_header("Content-Type", content_type)
        # No Content-Length: the body ends when the connection closes (HTTP/1.0).
        self._handler.send_header("Cache-Control", "no-cache, no-store")
        for name, value in (headers or {}).items():
            self._handler.send_header(name, value)
        self._handler.end_headers()

    def write(self, data: bytes) -> None:
        """Sends ``data`` now; starts a 200 octet-stream response if ``start`` was not called."""
        if not self.started:
            self.start()
        self._handler.wfile.write(data)
        self._handler.wfile.flush()


StreamHandler = Callable[[Request, StreamWriter], None]


class HttpServer:
    """A threaded HTTP server that runs in a background thread from construction to ``close``.

    Every request is answered on its own daemon thread; requests are not logged to
    stderr (they go to this module's logger at DEBUG level). Unknown paths get 404, a
    method the route does not answer 405 with an ``Allow`` header, and a request body
    over ``MAX_BODY_BYTES`` 413.

    Args:
        host: address to listen on; ``"0.0.0.0"`` or ``"::"`` for every interface.
        port: TCP port; 0 picks a free one (see ``port``).

    Raises:
        ConfigError: the port is out of range.
        OutputError: the address cannot be listened on (port in use, unknown host, ...).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"cannot listen on {host}:{port}: port must be between 0 and 65535")
        self._routes: dict[str, _Route] = {}
        self._routes_lock = threading.Lock()
        self._closing = threading.Event()
        try:
            self._server = _QuietServer((host, port), _RequestHandler, self)
        except OSError as error:
            raise OutputError(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},  # how soon close() is noticed
            name=f"http-{self.port}",
            daemon=True,
        )
        try:
            self._thread.start()
        except BaseException:
            self._server.server_close()
            raise

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:8080``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def add_route(
        self,
        path: str,
        handler: RouteHandler,
        methods: Iterable[str] = ("GET",),
        prefix: bool = False,
    ) -> None:
        """Answers ``methods`` on ``path`` with ``handler(request) -> (status, content_type, body)``.

        HEAD comes with GET. With ``prefix``, the route answers every path that starts
        with ``path``; the handler finds the rest in ``request.path``. An exact route
        wins over prefix routes, and the longest matching prefix over shorter ones. A
        route added on a path that has one replaces it.

        Raises:
            ValueError: a method outside ``METHODS``, or none at all.
        """
        allowed = frozenset(method.upper() for method in methods)
        if not allowed or not allowed <= METHODS:
            raise ValueError(f"methods must be some of {sorted(METHODS)}, got {sorted(allowed)}")
        if "GET" in allowed:
            allowed |= {"HEAD"}
        with self._routes_lock:
            self._routes[path] = _Route(handler, streaming=False, methods=allowed, prefix=prefix)

    def add_stream_route(self, path: str, handler: StreamHandler) -> None:
        """Answers GET on ``path`` with ``handler(request, writer)``, which writes the response itself."""
        with self._routes_lock:
            self._routes[path] = _Route(handler, streaming=True, methods=frozenset({"GET"}))

    def remove_route(self, path: str) -> None:
        """Stops answering ``path`` (a route of any kind, as it was added); unknown paths are ignored.

        Requests already being answered, an open stream included, finish as they would have.
        """
        with self._routes_lock:
            self._routes.pop(path, None)

    def close(self) -> None:
        """Stops serving, closes the socket and joins the server thread. Safe to call twice."""
        if self._closing.is_set():
            return
        self._closing.set()  # tells stream handlers to finish
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _route(self, path: str) -> _Route | None:
        """The exact route for ``path``, else the prefix route with the longest matching prefix."""
        with self._routes_lock:
            exact = self._routes.get(path)
            if exact is not None and not exact.prefix:
                return exact
            prefixes = [
                route_path
                for route_path, route in self._routes.items()
                if route.prefix and path.startswith(route_path)
            ]
            return self._routes[max(prefixes, key=len)] if prefixes else None


@dataclass(frozen=True)
class _Route:
    handler: RouteHandler | StreamHandler
    streaming: bool
    methods: frozenset[str]
    prefix: bool = False


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_port = False  # a second server on a busy port must fail, not share it

    def __init__(self, address: tuple[str, int], handler_class: type, owner: HttpServer) -> None:
        self.owner = owner
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler_class)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup that can hang for seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: object, client_address: object) -> None:
        # socketserver prints these to stderr; a client hanging up early is routine.
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("client %s hung up", client_address)
        else:
            logger.exception("request from %s failed", client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _QuietServer
    server_version = "streamseg"

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)

    def _answer(self) -> None:
        owner = self.server.owner
        send_body = self.command != "HEAD"
        parts = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            too_large = f"request body over {MAX_BODY_BYTES} bytes\n".encode()
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "text/plain; charset=utf-8", too_large, send_body)
            return
        request = Request(self.command, parts.path, parse_qs(parts.query), self.headers, body)
        route = owner._route(parts.path)
        if route is None:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n", send_body)
        elif self.command not in route.methods:
            allow = {"Allow": ", ".join(sorted(route.methods))}
            use = f"use {allow['Allow']}\n".encode()
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", use, send_body, allow)
        elif route.streaming:
            self._stream(route.handler, request, owner._closing)
        else:
            try:
                status, content_type, body = route.handler(request)
            except Exception:
                logger.exception("handler for %s failed", parts.path)
                status, content_type, body = 500, "text/plain; charset=utf-8", b"internal error\n"
            self._send(status, content_type, body, send_body)

    def _read_body(self) -> bytes | None:
        """The body of a POST, PUT or DELETE (else empty), or None when it is over ``MAX_BODY_BYTES``."""
        if self.command not in _BODY_METHODS:
            return b""
        length = _content_length(self.headers)
        if length <= MAX_BODY_BYTES:
            return self.rfile.read(length)
        left = min(length, _MAX_DISCARD_BYTES)
        while left > 0 and (chunk := self.rfile.read(min(left, MAX_BODY_BYTES))):
            left -= len(chunk)
        return None

    def _send(
        self,
        status: int,
        content_type: str,
        body: bytes,
        send_body: bool,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _stream(self, handler: StreamHandler, request: Request, closing: threading.Event) -> None:
        writer = StreamWriter(self, closing)
        try:
            handler(request, writer)
        except ConnectionError:
            return  # the client went away: the usual end of a stream
        except Exception:
            logger.exception("stream handler for %s failed", request.path)
            if not writer.started:
                self._send(500, "text/plain; charset=utf-8", b"internal error\n", True)
            return
        if not writer.started:
            self._send(HTTPStatus.NO_CONTENT, "text/plain; charset=utf-8", b"", False)


def _content_length(headers: Message) -> int:
    """The declared body length; a missing, malformed or negative Content-Length means no body."""
    try:
        return max(int(headers.get("Content-Length", "0")), 0)
    except ValueError:
        return 0


def serve_metrics(server: HttpServer, registry: CollectorRegistry, path: str = "/metrics") -> None:
    """Exposes ``registry`` in the Prometheus text format at ``path``."""
    server.add_route(path, lambda request: (200, CONTENT_TYPE_LATEST, generate_latest(registry)))


def serve_health(server: HttpServer, health: Callable[[], tuple[bool, str]], path: str = "/healthz") -> None:
    """Answers ``path`` with 200 and ``{"status": "ok", "detail": ...}`` while ``health()``
    says healthy, else 503 and ``{"status": "unhealthy", ...}``. A check that raises
    counts as unhealthy.
    """

    def answer(request: Request) -> Response:
        try:
            healthy, detail = health()
        except Exception as error:
            logger.exception("health check failed")
            healthy, detail = False, f"health check failed: {error}"
        body = {"status": "ok" if healthy else "unhealthy", "detail": detail}
        return (200 if healthy else 503), "application/json", json.dumps(body).encode() + b"\n"

    server.add_route(path, answer)
