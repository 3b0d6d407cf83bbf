"""HttpServer and its built-in routes, exercised with real requests on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.error
import urllib.request
from typing import Callable, ContextManager, Iterator

import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter

from streamseg.errors import ConfigError, OutputError
from streamseg.server import (
    HttpServer,
    Request,
    StreamWriter,
    serve_health,
    serve_metrics,
)

# Never go through a proxy the environment may name, even for 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Returns (status, headers, body), error statuses included."""
    try:
        with OPENER.open(urllib.request.Request(url, method=method), timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


@pytest.fixture
def server() -> Iterator[HttpServer]:
    with HttpServer() as running:
        yield running


def hello(request: Request) -> tuple[int, str, bytes]:
    return 200, "text/plain", b"hello"


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/hello", 200, b"hello"),
        ("/hello?verbose=1", 200, b"hello"),
        ("/hello/", 404, b"not found\n"),
        ("/", 404, b"not found\n"),
        ("/missing", 404, b"not found\n"),
    ],
)
def test_routes_answer_by_path(server: HttpServer, path: str, status: int, body: bytes) -> None:
    server.add_route("/hello", hello)
    assert fetch(server.url + path)[::2] == (status, body)


def test_handler_sees_the_query(server: HttpServer) -> None:
    server.add_route("/echo", lambda request: (200, "application/json", json.dumps(request.query).encode()))
    status, _, body = fetch(server.url + "/echo?a=1&a=2&b=x")
    assert (status, json.loads(body)) == (200, {"a": ["1", "2"], "b": ["x"]})


def test_head_sends_headers_without_body(server: HttpServer) -> None:
    server.add_route("/hello", hello)
    status, headers, body = fetch(server.url + "/hello", method="HEAD")
    assert (status, headers["Content-Length"], body) == (200, "5", b"")


def test_failing_handler_gives_500_and_server_keeps_serving(server: HttpServer) -> None:
    def broken(request: Request) -> tuple[int, str, bytes]:
        raise RuntimeError("bug")

    server.add_route("/broken", broken)
    server.add_route("/hello", hello)
    assert fetch(server.url + "/broken")[0] == 500
    assert fetch(server.url + "/hello")[::2] == (200, b"hello")


def test_metrics_route_serves_the_registry(server: HttpServer) -> None:
    registry = CollectorRegistry()
    Counter("streamseg_test_events", "Events.", registry=registry).inc(3)
    serve_metrics(server, registry)

    status, headers, body = fetch(server.url + "/metrics")
    assert (status, headers["Content-Type"]) == (200, CONTENT_TYPE_LATEST)
    assert "streamseg_test_events_total 3.0" in body.decode()


def test_health_turns_from_200_to_503(server: HttpServer) -> None:
    state = {"healthy": True, "detail": "frames flowing"}
    serve_health(server, lambda: (state["healthy"], state["detail"]))

    status, headers, body = fetch(server.url + "/healthz")
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert json.loads(body) == {"status": "ok", "detail": "frames flowing"}

    state.update(healthy=False, detail="source down")
    status, _, body = fetch(server.url + "/healthz")
    assert status == 503
    assert json.loads(body) == {"status": "unhealthy", "detail": "source down"}


def test_health_check_that_raises_is_unhealthy(server: HttpServer) -> None:
    def check() -> tuple[bool, str]:
        raise OSError("camera gone")

    serve_health(server, check)
    status, _, body = fetch(server.url + "/healthz")
    assert status == 503
    assert json.loads(body)["detail"] == "health check failed: camera gone"


def test_stream_route_writes_its_own_response(server: HttpServer) -> None:
    def count(request: Request, writer: StreamWriter) -> None:
        writer.start(200, "text/plain", {"X-Chunks": "3"})
        for index in range(3):
            writer.write(f"chunk {index}\n".encode())

    server.add_stream_route("/count", count)
    status, headers, body = fetch(server.url + "/count")
    assert (status, headers["X-Chunks"], body) == (200, "3", b"chunk 0\nchunk 1\nchunk 2\n")


def test_close_ends_an_open_stream(server: HttpServer) -> None:
    handler_done = threading.Event()

    def wait_for_close(request: Request, writer: StreamWriter) -> None:
        writer.write(b"hello\n")
        writer.wait_closing()
        writer.write(b"bye\n")
        handler_done.set()

    server.add_stream_route("/live", wait_for_close)
    with OPENER.open(server.url + "/live", timeout=10) as response:
        assert response.readline() == b"hello\n"
        server.close()
        assert response.read() == b"bye\n"
    assert handler_done.wait(10)


@contextlib.contextmanager
def plain_listening_socket() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@contextlib.contextmanager
def another_server() -> Iterator[int]:
    with HttpServer() as other:
        yield other.port


@pytest.mark.parametrize("occupy", [plain_listening_socket, another_server])
def test_port_in_use_is_an_input_error(occupy: Callable[[], ContextManager[int]]) -> None:
    with occupy() as port:
        with pytest.raises(OutputError, match=f"^cannot listen on 127.0.0.1:{port}: "):
            HttpServer("127.0.0.1", port)


@pytest.mark.parametrize("port", [-1, 65536])
def test_impossible_port_is_an_input_error(port: int) -> None:
    with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}: port must be"):
        HttpServer("127.0.0.1", port)


@pytest.mark.parametrize("raise_inside", [False, True])
def test_leaving_the_block_stops_the_server(raise_inside: bool) -> None:
    class Boom(Exception):
        pass

    try:
        with HttpServer() as server:
            server.add_route("/hello", hello)
            assert fetch(server.url + "/hello")[0] == 200
            if raise_inside:
                raise Boom
    except Boom:
        pass

    assert not any(thread.name == f"http-{server.port}" for thread in threading.enumerate())
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    server.close()  # a second close is harmless


def test_port_zero_picks_a_real_port(server: HttpServer) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_requests_are_not_logged_to_stderr(server: HttpServer, capfd: pytest.CaptureFixture[str]) -> None:
    server.add_route("/hello", hello)
    fetch(server.url + "/hello")
    fetch(server.url + "/missing")
    assert capfd.readouterr().err == ""
