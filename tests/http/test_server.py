"""HttpServer and its built-in routes, exercised with real requests on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter

from streamseg.errors import ConfigError, OutputError
from streamseg.http.server import (
    MAX_BODY_BYTES,
    HttpServer,
    Request,
    StreamWriter,
    serve_health,
    serve_metrics,
)

# Never go through a proxy the environment may name, even for 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(
    url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Returns (status, headers, body), error statuses included."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with OPENER.open(request, timeout=10) as response:
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
def test_port_in_use_is_an_input_error(occupy: Callable[[], AbstractContextManager[int]]) -> None:
    with occupy() as port, pytest.raises(OutputError, match=f"^cannot listen on 127.0.0.1:{port}: "):
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


def echo(request: Request) -> tuple[int, str, bytes]:
    """Answers with what the handler was given, as JSON."""
    seen = {"method": request.method, "path": request.path, "body": request.body.decode()}
    return 200, "application/json", json.dumps(seen).encode()


class Recorder:
    """A route handler that keeps every request it answers."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> tuple[int, str, bytes]:
        self.requests.append(request)
        return 200, "text/plain", b"ok"


def test_post_with_a_json_body_reaches_the_handler(server: HttpServer) -> None:
    server.add_route("/streams", echo, methods=("GET", "POST"))
    payload = json.dumps({"name": "cam1", "source": "rtsp://camera/1"}).encode()
    status, _, body = fetch(server.url + "/streams", "POST", payload, {"Content-Type": "application/json"})
    seen = json.loads(body)
    assert (status, seen["method"], seen["path"]) == (200, "POST", "/streams")
    assert json.loads(seen["body"]) == {"name": "cam1", "source": "rtsp://camera/1"}
    # The same route still answers GET, with an empty body.
    assert json.loads(fetch(server.url + "/streams")[2]) == {"method": "GET", "path": "/streams", "body": ""}


def test_delete_on_a_prefix_route_gives_the_rest_of_the_path(server: HttpServer) -> None:
    server.add_route("/streams/", echo, methods=("DELETE",), prefix=True)
    status, _, body = fetch(server.url + "/streams/cam1?force=1", "DELETE")
    seen = json.loads(body)
    assert (status, seen["method"], seen["path"]) == (200, "DELETE", "/streams/cam1")
    assert seen["path"].removeprefix("/streams/") == "cam1"


@pytest.mark.parametrize(
    ("methods", "method", "allow"),
    [
        (("POST",), "GET", "POST"),
        (("POST",), "HEAD", "POST"),
        (("GET",), "POST", "GET, HEAD"),
        (("GET",), "DELETE", "GET, HEAD"),
        (("GET", "DELETE"), "PUT", "DELETE, GET, HEAD"),
    ],
)
def test_a_method_the_route_does_not_answer_gets_405_with_allow(
    server: HttpServer, methods: tuple[str, ...], method: str, allow: str
) -> None:
    recorder = Recorder()
    server.add_route("/thing", recorder, methods)
    data = b"{}" if method in ("POST", "PUT") else None
    status, headers, _ = fetch(server.url + "/thing", method, data)
    assert (status, headers["Allow"]) == (405, allow)
    assert recorder.requests == []


def test_head_on_a_stream_route_gets_405_with_allow(server: HttpServer) -> None:
    server.add_stream_route("/live", lambda request, writer: writer.write(b"x"))
    status, headers, _ = fetch(server.url + "/live", "HEAD")
    assert (status, headers["Allow"]) == (405, "GET")


def test_unknown_method_cannot_be_routed(server: HttpServer) -> None:
    with pytest.raises(ValueError, match="methods must be some of"):
        server.add_route("/thing", hello, methods=("PATCH",))


@pytest.mark.parametrize(("size", "status"), [(MAX_BODY_BYTES, 200), (MAX_BODY_BYTES + 1, 413)])
def test_bodies_over_64_kib_get_413(server: HttpServer, size: int, status: int) -> None:
    recorder = Recorder()
    server.add_route("/upload", recorder, methods=("POST",))
    assert fetch(server.url + "/upload", "POST", b"x" * size)[0] == status
    assert [len(request.body) for request in recorder.requests] == ([size] if status == 200 else [])


@pytest.mark.parametrize("length_header", ["", "Content-Length: many\r\n", "Content-Length: -5\r\n"])
def test_post_without_valid_content_length_has_an_empty_body(server: HttpServer, length_header: str) -> None:
    server.add_route("/streams", echo, methods=("POST",))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"POST /streams HTTP/1.0\r\n{length_header}\r\n".encode())
        sock.shutdown(socket.SHUT_WR)
        response = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 ")
    assert json.loads(body)["body"] == ""


def test_exact_route_beats_prefix_and_longest_prefix_wins(server: HttpServer) -> None:
    server.add_route("/streams/", lambda request: (200, "text/plain", b"short prefix"), prefix=True)
    server.add_route("/streams/cam1/", lambda request: (200, "text/plain", b"long prefix"), prefix=True)
    server.add_route("/streams/cam1/stats.json", lambda request: (200, "text/plain", b"exact"))
    assert fetch(server.url + "/streams/cam1/stats.json")[::2] == (200, b"exact")
    assert fetch(server.url + "/streams/cam1/stream.mjpg")[::2] == (200, b"long prefix")
    assert fetch(server.url + "/streams/cam1/")[::2] == (200, b"long prefix")
    assert fetch(server.url + "/streams/cam2")[::2] == (200, b"short prefix")
    assert fetch(server.url + "/streams")[0] == 404


def test_remove_route_makes_a_path_404(server: HttpServer) -> None:
    server.add_route("/hello", hello)
    server.add_route("/streams/", echo, methods=("GET", "DELETE"), prefix=True)
    server.add_stream_route("/live", lambda request, writer: writer.write(b"x"))
    for path in ("/hello", "/streams/", "/live", "/never-added"):
        server.remove_route(path)
    for path in ("/hello", "/streams/cam1", "/live"):
        assert fetch(server.url + path)[0] == 404
    assert fetch(server.url + "/streams/cam1", "DELETE")[0] == 404
