"""A web page with the live overlay (MJPEG over HTTP), the class legend and live stats.

Three routes on the pipeline's ``HttpServer``, under ``/`` or, for one stream of several,
under a prefix such as ``/streams/cam1/``:

- ``GET /``: the page: the overlay as ``<img src="stream.mjpg">``, the legend, and fps,
  latency and drop counts refreshed from ``stats.json`` twice a second. The links are
  relative, so the same page works under any prefix.
- ``GET /stream.mjpg``: ``multipart/x-mixed-replace`` JPEGs of the newest overlay, at most
  ``max_fps`` a second per client.
- ``GET /stats.json``: what the ``snapshot`` callable returns (``MetricsMonitor.snapshot``).

The pipeline's ``write`` only keeps a reference to the newest overlay. JPEG encoding runs
on the viewers' request threads, once per frame however many viewers there are, and only
while someone watches; a slow viewer skips frames instead of slowing anything down.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from streamseg.frame import Frame
from streamseg.http.server import HttpServer, Request, Response, StreamWriter
from streamseg.label_sets import CAMVID, LabelSet
from streamseg.sinks.base import Sink

_BOUNDARY = "streamsegframe"
_IDLE_WAKE_S = 0.5  # how often a waiting viewer thread looks whether the sink or server closed


class WebPreviewSink(Sink):
    """Serves the live overlay and stats of a running pipeline on ``server``.

    Args:
        server: the HTTP server to add the routes to; it stays the caller's to close.
        snapshot: returns the stats to show, a JSON-serialisable dict with ``fps``,
            ``latency_s``, ``frames`` and ``dropped`` (reason -> count), as
            ``MetricsMonitor.snapshot()`` does.
        max_fps: the most JPEGs a second sent to one viewer.
        jpeg_quality: 0-100; lower sends smaller frames to slow viewers.
        title: the page's title and heading.
        prefix: the path the routes go under, e.g. ``/streams/cam1/`` (a missing trailing
            slash is added); ``""`` puts them at the root. A prefixed preview belongs to
            a stream that may go away before the server does, so ``close`` removes its
            routes.
        label_set: the classes the legend names, the run's model's (``backend.label_set``).

    Raises:
        ValueError: ``max_fps`` or ``jpeg_quality`` out of range, or a prefix not starting with ``/``.
    """

    name = "web_preview"

    def __init__(
        self,
        server: HttpServer,
        snapshot: Callable[[], dict[str, Any]],
        *,
        max_fps: float = 15.0,
        jpeg_quality: int = 80,
        title: str = "streamseg live preview",
        prefix: str = "",
        label_set: LabelSet = CAMVID,
    ) -> None:
        if not max_fps > 0:
            raise ValueError(f"max_fps must be positive, got {max_fps}")
        if not 0 <= jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [0, 100], got {jpeg_quality}")
        if prefix and not prefix.startswith("/"):
            raise ValueError(f"prefix must start with '/', got {prefix!r}")
        self.server = server
        self.prefix = prefix.rstrip("/")  # "/" alone is the root, as "" is
        base = self.prefix + "/"  # where the page is; the other routes sit beside it
        self._paths = (base, base + "stats.json", base + "stream.mjpg")
        self.snapshot = snapshot
        self.max_fps = float(max_fps)
        self.jpeg_quality = int(jpeg_quality)
        self._page = _render_page(title, label_set).encode()
        self._new_frame = threading.Condition()  # guards the fields up to _closed
        self._latest: np.ndarray | None = None
        self._sequence = 0  # counts frames written; a viewer compares it to what it sent last
        self._viewers = 0
        self._closed = False
        self._encode_lock = threading.Lock()  # one encode per frame, shared by all viewers
        self._jpeg = b""
        self._jpeg_sequence = -1
        self.jpegs_encoded = 0
        page_path, stats_path, stream_path = self._paths
        server.add_route(page_path, self._serve_page)
        server.add_route(stats_path, self._serve_stats)
        server.add_stream_route(stream_path, self._serve_stream)

    @property
    def url(self) -> str:
        return f"{self.server.url}{self._paths[0]}"

    @property
    def viewers(self) -> int:
        """Clients watching the MJPEG stream now."""
        with self._new_frame:
            return self._viewers

    def write(self, frame: Frame) -> None:
        """Keeps the newest overlay for the viewers; never waits for them."""
        image = frame.overlay if frame.overlay is not None else frame.image
        with self._new_frame:
            self._latest = image
            self._sequence += 1
            self._new_frame.notify_all()

    def close(self) -> None:
        """Ends every open MJPEG stream. Without a prefix the page and stats routes stay until
        the server closes; with one, every route goes, so a removed stream's preview is 404."""
        with self._new_frame:
            self._closed = True
            self._latest = None
            self._new_frame.notify_all()
        if self.prefix:
            for path in self._paths:
                self.server.remove_route(path)

    # --- routes ------------------------------------------------------------------------

    def _serve_page(self, request: Request) -> Response:
        return 200, "text/html; charset=utf-8", self._page

    def _serve_stats(self, request: Request) -> Response:
        body = json.dumps(self.snapshot(), default=str).encode()
        return 200, "application/json", body

    def _serve_stream(self, request: Request, writer: StreamWriter) -> None:
        with self._new_frame:
            if self._closed:
                return  # the server answers 204: nothing more will come
            self._viewers += 1
        try:
            writer.start(200, f"multipart/x-mixed-replace; boundary={_BOUNDARY}", {"Pragma": "no-cache"})
            sent = -1
            interval = 1.0 / self.max_fps
            next_at = 0.0
            while not writer.closing:
                with self._new_frame:
                    self._new_frame.wait_for(
                        lambda: self._closed or self._sequence != sent,  # noqa: B023 (waited on right here)
                        timeout=_IDLE_WAKE_S,
                    )
                    if self._closed:
                        return
                    if self._sequence == sent:
                        continue
                wait = next_at - time.monotonic()
                if wait > 0 and writer.wait_closing(wait):
                    return
                jpeg, sequence = self._newest_jpeg()
                if sequence == sent or not jpeg:
                    continue
                next_at = time.monotonic() + interval
                header = f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                writer.write(header.encode() + jpeg + b"\r\n")
                sent = sequence
        finally:
            with self._new_frame:
                self._viewers -= 1

    def _newest_jpeg(self) -> tuple[bytes, int]:
        """The newest overlay as JPEG, encoded at most once per frame."""
        with self._encode_lock:
            with self._new_frame:
                image, sequence = self._latest, self._sequence
            if image is None:
                return b"", sequence
            if sequence != self._jpeg_sequence:
                bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
                ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
                if not ok:
                    return b"", sequence
                self._jpeg, self._jpeg_sequence = encoded.tobytes(), sequence
                self.jpegs_encoded += 1
            return self._jpeg, self._jpeg_sequence


def legend_html(label_set: LabelSet) -> str:
    """The legend's list items: a colour swatch and the name of each of ``label_set``'s classes."""
    rows = []
    for name, (red, green, blue) in zip(label_set.names, label_set.palette.tolist()):
        rows.append(
            f'<li><span class="swatch" style="background: rgb({red}, {green}, {blue})"></span>'
            f"{_escape(name)}</li>"
        )
    return "\n        ".join(rows)


def _escape(text: str) -> str:
    """``text`` for HTML, its braces too: a name from a model file must not read as one of the pages' placeholders."""
    return html.escape(text).replace("{", "&#123;").replace("}", "&#125;")


def _render_page(title: str, label_set: LabelSet) -> str:
    return _PAGE.replace("{title}", html.escape(title)).replace("{legend}", legend_html(label_set))


# Plain HTML, CSS and a few lines of JavaScript: no build step, nothing fetched from elsewhere.
# The start every page shares, up to its own styles.
_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <style>
    body { margin: 0; padding: 16px; background: #111; color: #eee; font: 15px/1.4 system-ui, sans-serif; }
    h1 { font-size: 18px; margin: 0 0 12px; font-weight: 600; }
"""

_PAGE = _HEAD + """    main { display: flex; gap: 20px; align-items: flex-start; flex-wrap: wrap; }
    #overlay { max-width: min(960px, 100%); background: #000; display: block; }
    aside { min-width: 200px; }
    #stats { font-variant-numeric: tabular-nums; margin: 0 0 16px; padding: 0; list-style: none; }
    #stats li { margin: 2px 0; }
    #state.down { color: #f66; }
    /* A label set of a hundred classes or more scrolls in its own box rather than lengthening the page. */
    ul.legend { list-style: none; margin: 0; padding: 0; max-height: 70vh; overflow-y: auto; }
    ul.legend li { display: flex; align-items: center; gap: 8px; margin: 3px 0; }
    .swatch { width: 16px; height: 16px; border-radius: 3px; display: inline-block; flex: none; }
  </style>
</head>
<body>
  <h1>{title}</h1>
  <main>
    <img id="overlay" src="stream.mjpg" alt="live segmentation overlay">
    <aside>
      <ul id="stats">
        <li id="fps">- fps</li>
        <li id="latency">latency -</li>
        <li id="dropped">dropped -</li>
        <li id="frames">frames -</li>
        <li id="state">waiting for stats</li>
      </ul>
      <ul class="legend">
        {legend}
      </ul>
    </aside>
  </main>
  <script>
    const show = (id, text) => { document.getElementById(id).textContent = text; };
    async function refresh() {
      try {
        const response = await fetch("stats.json", { cache: "no-store" });
        const stats = await response.json();
        const dropped = Object.values(stats.dropped || {}).reduce((a, b) => a + b, 0);
        show("fps", `${(stats.fps || 0).toFixed(1)} fps`);
        show("latency", stats.latency_s == null ? "latency -" : `latency ${Math.round(stats.latency_s * 1000)} ms`);
        show("dropped", `dropped ${dropped}`);
        show("frames", `frames ${stats.frames || 0}`);
        const info = stats.info || {};
        show("state", (stats.source_up ? "source up" : "source down") + (info.model ? ` \u00b7 ${info.model} / ${info.backend}` : ""));
        document.getElementById("state").className = stats.source_up ? "" : "down";
      } catch (error) {
        show("state", "pipeline not reachable");
        document.getElementById("state").className = "down";
      }
    }
    refresh();
    setInterval(refresh, 500);
  </script>
</body>
</html>
"""


def serve_preview_index(
    server: HttpServer, names: Callable[[], list[str]], title: str = "streamseg", label_set: LabelSet = CAMVID
) -> None:
    """``GET /`` on ``server``: every stream's live overlay in a grid, each linking to its own page,
    and the legend of ``label_set`` (the streams share one model, so one legend serves them all).

    The grid follows ``GET /streams`` every two seconds, so streams added or removed while the
    run goes on appear and disappear without a reload. ``names`` gives the streams at request time.
    """
    legend = legend_html(label_set)

    def page(request: Request) -> Response:
        tiles = "\n    ".join(_tile(name) for name in names())
        body = _INDEX.replace("{title}", html.escape(title)).replace("{tiles}", tiles).replace("{legend}", legend)
        return 200, "text/html; charset=utf-8", body.encode()

    server.add_route("/", page)


def _tile(name: str) -> str:
    quoted = html.escape(name, quote=True)
    return (
        f'<figure data-stream="{quoted}"><a href="streams/{quoted}/"><img src="streams/{quoted}/stream.mjpg" '
        f'alt="{quoted}"></a><figcaption>{quoted}</figcaption></figure>'
    )


_INDEX = _HEAD + """    #grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 12px; }
    figure { margin: 0; } img { width: 100%; background: #000; display: block; }
    figcaption { margin-top: 4px; } a { color: inherit; }
    ul.legend { list-style: none; margin: 16px 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 16px; }
    ul.legend li { display: flex; align-items: center; gap: 6px; }
    .swatch { width: 14px; height: 14px; border-radius: 3px; display: inline-block; flex: none; }
  </style>
</head>
<body>
  <h1>{title}</h1>
  <div id="grid">
    {tiles}
  </div>
  <ul class="legend">
    {legend}
  </ul>
  <script>
    async function follow() {
      try {
        const response = await fetch("streams", { cache: "no-store" });
        const names = (await response.json()).streams.map(stream => stream.name);
        const grid = document.getElementById("grid");
        for (const figure of [...grid.children]) {
          if (!names.includes(figure.dataset.stream)) figure.remove();
        }
        const shown = [...grid.children].map(figure => figure.dataset.stream);
        for (const name of names.filter(name => !shown.includes(name))) {
          const figure = document.createElement("figure");
          figure.dataset.stream = name;
          const link = Object.assign(document.createElement("a"), { href: `streams/${encodeURIComponent(name)}/` });
          link.append(Object.assign(document.createElement("img"), { src: `streams/${encodeURIComponent(name)}/stream.mjpg`, alt: name }));
          const caption = Object.assign(document.createElement("figcaption"), { textContent: name });
          figure.append(link, caption);
          grid.append(figure);
        }
      } catch (error) { /* the run has ended: leave the last grid */ }
    }
    setInterval(follow, 2000);
  </script>
</body>
</html>
"""
