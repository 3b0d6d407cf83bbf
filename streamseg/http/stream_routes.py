"""The HTTP face of a multi-stream run: list, add and remove streams while it runs.

    GET    /streams        every stream: name, source, state, frames, fps
    GET    /streams/NAME   one of them (its live preview, with --serve, is at /streams/NAME/)
    POST   /streams        {"source": ..., "name": ..., "out": ...}: opens and starts a stream (201)
    DELETE /streams/NAME   stops it; its outputs are closed, whole, before the answer (200)

The server binds where the run's ``--metrics-host`` or ``--serve`` says, 127.0.0.1 unless told
otherwise: whoever can reach these routes can make the run read files and write them. What they
write is kept under the run's output root (``--output-root``, ``streamseg.outputs.output_root``):
an output named in a POST that lies outside it (an absolute path elsewhere, ``..``, a symlink
leading out) is refused with 400 before anything opens, and a relative one is taken from the root.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from streamseg.config import named_stream, stream_entry
from streamseg.errors import StreamsegError
from streamseg.outputs import confine_to_root
from streamseg.pipeline.streams import StreamNameTaken, StreamSet, UnknownStream
from streamseg.http.server import HttpServer, Request, Response

log = logging.getLogger(__name__)

_JSON = "application/json"


def serve_streams(server: HttpServer, streams: StreamSet, output_root: Path | None = None) -> None:
    """Adds the /streams routes for ``streams`` to ``server``; outputs named in a POST must lie under
    ``output_root`` (None: the working folder now)."""
    root = (output_root or Path.cwd()).resolve()

    def listing(request: Request) -> Response:
        if request.method == "POST":
            return _add(streams, request.body, root)
        return _answer(200, {"streams": streams.describe()})

    def one(request: Request) -> Response:
        name = request.path.removeprefix("/streams/").strip("/")
        if request.method != "DELETE":
            described = next((entry for entry in streams.describe() if entry["name"] == name), None)
            return _answer(200, described) if described else _answer(404, {"error": f"no stream called {name}"})
        try:
            result = streams.remove_stream(name)
        except UnknownStream as error:
            return _answer(404, {"error": str(error)})
        frames = result.frames if result is not None else None
        return _answer(200, {"removed": name, "frames": frames, "error": result.error if result is not None else None})

    server.add_route("/streams", listing, methods=("GET", "POST"))
    server.add_route("/streams/", one, methods=("GET", "DELETE"), prefix=True)


def _add(streams: StreamSet, body: bytes, root: Path) -> Response:
    try:
        request = json.loads(body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return _answer(400, {"error": f"the body is not JSON: {error}"})
    try:
        entry = confine_to_root(named_stream(stream_entry(request), set(streams.names())), root)
        stream = streams.add_stream(entry)
    except StreamsegError as error:  # what the caller can fix: a bad source, a name in use, an output in use
        return _answer(409 if isinstance(error, StreamNameTaken) else 400, {"error": str(error)})
    log.info("stream %s added over HTTP", stream.name)
    return _answer(201, stream.describe())


def _answer(status: int, body: Any) -> Response:
    return status, _JSON, json.dumps(body).encode() + b"\n"
