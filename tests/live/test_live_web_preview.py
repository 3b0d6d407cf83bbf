"""The web preview of a running pipeline: MJPEG to plain HTTP clients, the page in headless Chromium."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamseg.classes import CLASS_NAMES
from streamseg.frame import Frame
from streamseg.http.server import HttpServer
from streamseg.http.preview import WebPreviewSink

# Flags this machine's Chromium needs to run headless as root with no network beyond loopback.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture
def preview(demo_run, wait_until):
    """A demo run with a web preview; waits until frames went through."""
    sinks: list[WebPreviewSink] = []

    def with_preview(assembly):
        sinks.append(WebPreviewSink(assembly.server, assembly.monitor.snapshot))
        return sinks

    run = demo_run(extra_sinks=with_preview)
    assert wait_until(lambda: run.assembly.monitor.snapshot()["frames"] >= 3, timeout=60)
    return run, sinks[0]


def read_jpegs(response, count: int) -> list[bytes]:
    """The first ``count`` JPEG parts of a multipart/x-mixed-replace response."""
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("multipart/x-mixed-replace")
    boundary = re.search(r"boundary=(\S+)", content_type)[1].encode()
    jpegs = []
    while len(jpegs) < count:
        line = response.readline()
        if not line:
            raise AssertionError(f"the stream ended after {len(jpegs)} parts")
        if line.strip() != b"--" + boundary:
            continue
        headers = {}
        while (line := response.readline().strip()):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        jpegs.append(response.read(int(headers["content-length"])))
    return jpegs


def test_mjpeg_stream_delivers_frames_to_several_clients(preview) -> None:
    run, sink = preview
    url = f"{run.assembly.server.url}/stream.mjpg"
    with urllib.request.urlopen(url, timeout=30) as first, urllib.request.urlopen(url, timeout=30) as second:
        got_first = read_jpegs(first, 3)
        got_second = read_jpegs(second, 3)
        assert sink.viewers == 2
    for jpeg in got_first + got_second:
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (540, 960, 3)
    assert len(set(got_first)) == 3, "each part must be a newer frame"
    # Both clients have hung up; a new one is served as before and the pipeline never noticed.
    with urllib.request.urlopen(url, timeout=30) as third:
        assert len(read_jpegs(third, 3)) == 3
    assert run.running


def test_stats_json_is_the_monitor_snapshot(preview) -> None:
    run, sink = preview
    assert sink.jpegs_encoded == 0, "nobody watches yet: nothing should have been encoded"
    with urllib.request.urlopen(f"{run.assembly.server.url}/stats.json", timeout=10) as response:
        assert response.headers["Content-Type"] == "application/json"
        stats = json.load(response)
    assert stats["frames"] >= 3
    assert {"fps", "latency_s", "dropped", "source_up", "info"} <= stats.keys()


def test_page_in_headless_chromium_shows_overlay_legend_and_stats(preview, program, tmp_path: Path) -> None:
    run, _sink = preview
    chromium = program("chromium")
    url = f"{run.assembly.server.url}/"
    screenshot = tmp_path / "preview.png"

    def chromium_run(*extra: str, profile: str) -> subprocess.CompletedProcess:
        # --virtual-time-budget lets the page's timers (the stats refresh) run before the capture.
        return subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / profile}", "--window-size=1280,900",
             "--virtual-time-budget=3000", *extra, url],
            check=False, capture_output=True, text=True, timeout=90,
        )

    dom = chromium_run("--dump-dom", profile="dom").stdout
    assert re.search(r'<li id="fps">\d+\.\d fps</li>', dom), dom[-2000:]
    assert re.search(r'<li id="frames">frames [1-9]\d*</li>', dom)
    assert re.search(r'<li id="latency">latency \d+ ms</li>', dom)
    assert '<img id="overlay" src="stream.mjpg"' in dom
    for name in CLASS_NAMES:
        assert f"</span>{name}</li>" in dom

    shot = chromium_run(f"--screenshot={screenshot}", profile="shot")
    assert screenshot.is_file(), shot.stderr[-2000:]
    picture = cv2.imread(str(screenshot))
    assert picture.shape[:2] == (900, 1280)
    # The overlay sits top left under the heading; the page itself is a flat dark grey.
    overlay_region = picture[80:560, 40:940]
    page_background = picture[700:880, 40:940]
    assert overlay_region.std() > 20, "no picture where the overlay should be"
    assert page_background.std() < 2


def status_of(url: str) -> int:
    """The HTTP status of a GET, error statuses included, never through a proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        with error:
            return error.code


def test_prefixed_preview_serves_page_and_stream_under_its_prefix_until_closed() -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with HttpServer() as server:
        sink = WebPreviewSink(server, lambda: {"frames": 1}, prefix="/streams/cam1")
        base = f"{server.url}/streams/cam1/"
        assert sink.url == base

        with opener.open(base, timeout=10) as response:
            page = response.read().decode()
        # Relative links, so that the browser asks for them under the prefix.
        assert '<img id="overlay" src="stream.mjpg"' in page
        assert 'fetch("stats.json"' in page
        with opener.open(base + "stats.json", timeout=10) as response:
            assert json.load(response) == {"frames": 1}
        assert status_of(f"{server.url}/") == 404, "the root is not the stream's to take"

        overlay = np.zeros((48, 64, 3), np.uint8)
        overlay[:, :, 2] = 255  # pure blue in RGB
        sink.write(Frame(index=0, timestamp=0.0, image=np.zeros_like(overlay), overlay=overlay))
        with opener.open(base + "stream.mjpg", timeout=10) as response:
            (jpeg,) = read_jpegs(response, 1)
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (48, 64, 3)
        assert image.reshape(-1, 3).mean(axis=0) == pytest.approx([255, 0, 0], abs=8)  # BGR

        sink.close()
        for path in ("", "stats.json", "stream.mjpg"):
            assert status_of(base + path) == 404, path


@pytest.mark.parametrize("prefix", ["streams/cam1/", "cam1"])
def test_prefix_must_be_a_path(prefix: str) -> None:
    with HttpServer() as server, pytest.raises(ValueError, match="prefix must start with '/'"):
        WebPreviewSink(server, dict, prefix=prefix)
