"""`streamseg run rtsp://…` as a user runs it: a camera that is not up yet, one that never answers, one that drops.

Each test starts the real command in a subprocess against GStreamer's RTSP server (or a
socket that never answers) and reads its stderr line by line as it comes.
"""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.error
import urllib.request
from typing import Iterator

import pytest

# Small and quick: the tests check connection handling, not segmentation.
FAST = ["--model", "erfnet-half", "--backend", "torch", "--input-size", "160x120"]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog does) and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def health(port: int) -> tuple[int, dict | str]:
    """(status, detail) of /healthz, or (0, why) when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status, json.loads(response.read())["detail"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())["detail"]
    except OSError as error:
        return 0, str(error)


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        return response.read().decode()


def test_a_server_that_starts_after_the_run_is_connected_to(rtsp_server, streamseg_process, wait_until) -> None:
    """A camera that boots after the computer: the run waits for it, then processes frames."""
    rtsp_server.stop()  # the fixture started it; this test starts it later
    started = time.monotonic()
    run = streamseg_process([rtsp_server.url, *FAST, "--max-frames", "20"])
    assert wait_until(lambda: run.said(" is down ("), timeout=60), "\n".join(run.lines)
    time.sleep(max(0.0, 5.0 - (time.monotonic() - started)))  # the server comes up 5 s after the run
    rtsp_server.start()
    code, stderr = run.finish()
    assert code == 0, stderr
    assert len(run.said(" is down (")) == 1, stderr  # one line for the outage, not one per try
    assert run.said(f"{rtsp_server.url} connected (960x540"), stderr
    assert run.said("20 frames in"), stderr
    assert "Traceback" not in stderr


def test_give_up_after_ends_a_run_whose_camera_never_comes(free_port, streamseg_process) -> None:
    url = f"rtsp://127.0.0.1:{free_port()}/cam"
    run = streamseg_process([url, *FAST, "--rtsp-give-up-after", "1"])
    code, stderr = run.finish()
    assert code == 2, stderr
    # The stream's one summary line, then what the source says.
    assert [line for line in run.said("streamseg: error: stream cam: 0 frames in ")
            if line.endswith(f"; {url}: could not connect within 1 s (Connection refused)")], stderr
    assert "Traceback" not in stderr


def test_ctrl_c_while_connecting_to_a_silent_port_ends_the_run(silent_port, streamseg_process, wait_until) -> None:
    """The connection attempt cannot be cut short inside FFmpeg; the run abandons it instead of waiting it out."""
    run = streamseg_process([f"rtsp://127.0.0.1:{silent_port}/cam", *FAST])
    # The summary of the model is the last line before the run starts connecting.
    assert wait_until(lambda: run.said("backend torch"), timeout=90), "\n".join(run.lines)
    run.process.send_signal(signal.SIGINT)
    code, stderr = run.finish(timeout=30)
    assert code == 130, stderr
    assert len(run.said("SIGINT: finishing the frames in flight")) == 1, stderr
    assert "Traceback" not in stderr and "error" not in stderr


def test_healthz_follows_the_source_and_every_port_serves_it(rtsp_server, streamseg_process, free_port, wait_until) -> None:
    """/healthz and /metrics on both the preview port and the metrics port; 503 while the camera is away."""
    preview_port, metrics_port = free_port(), free_port()
    run = streamseg_process([
        rtsp_server.url, *FAST, "--serve", f"127.0.0.1:{preview_port}", "--metrics-port", str(metrics_port),
    ])
    ports = (preview_port, metrics_port)
    try:
        # /healthz gives each stream's state: the one stream here is named after the URL's path.
        assert wait_until(lambda: all(health(port) == (200, {"road": "ok"}) for port in ports), timeout=90), (
            [health(port) for port in ports], run.lines)
        for port in ports:
            assert 'streamseg_source_up{stream="road"} 1.0' in metrics(port)

        rtsp_server.kill()
        assert wait_until(lambda: all(health(port) == (503, {"road": "degraded: source down"}) for port in ports), timeout=30), (
            [health(port) for port in ports], run.lines)
        assert 'streamseg_source_up{stream="road"} 0.0' in metrics(metrics_port)
        assert wait_until(lambda: run.said(f"{rtsp_server.url}: stream lost ("), timeout=10), run.lines

        rtsp_server.start()
        assert wait_until(lambda: all(health(port) == (200, {"road": "ok"}) for port in ports), timeout=60), (
            [health(port) for port in ports], run.lines)
        assert run.said(f"{rtsp_server.url}: reconnected after a drop of ")
    finally:
        run.process.send_signal(signal.SIGINT)
    code, stderr = run.finish()
    assert code == 130, stderr
    assert len(run.said("stream lost")) == 1 and len(run.said("reconnected")) == 1, stderr
    assert "Traceback" not in stderr
