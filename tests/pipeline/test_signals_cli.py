"""Signals sent to a real `streamseg run` process: during an engine build, and twice during a run."""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

FAST = ["--model", "erfnet-half", "--input-size", "160x120"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def health_detail(port: int) -> dict | None:
    """Each stream's state, as /healthz gives it; None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return json.loads(response.read())["detail"]
    except urllib.error.HTTPError as error:
        return json.loads(error.read())["detail"]
    except OSError:
        return None


def frames_waiting(port: int) -> float:
    """Frames waiting in the run's queues, from its /metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("streamseg_queue_depth{"))


@pytest.mark.slow
def test_sigterm_during_an_engine_build_cleans_up(tmp_path: Path, streamseg_process) -> None:
    """SIGTERM as the ONNX export starts: one line, exit 130 (as for Ctrl-C), no staging directory left."""
    engines = tmp_path / "engines"
    run = streamseg_process(["demo", *FAST, "--backend", "onnxruntime", "--precision", "fp32", "--engine-dir", str(engines),
                "--max-frames", "3"])
    assert run.wait_for(lambda: run.said("building ")), "\n".join(run.lines)
    run.process.send_signal(signal.SIGTERM)
    code, stderr = run.finish()
    assert code == 130, stderr
    assert run.said("streamseg: interrupted (SIGTERM)") == ["streamseg: interrupted (SIGTERM)"], stderr
    assert "Traceback" not in stderr
    assert [path.name for path in engines.iterdir() if path.name.startswith(".")] == []


@pytest.mark.slow
def test_a_second_ctrl_c_aborts_with_one_line_and_exit_130(streamseg_process) -> None:
    """Sync CRF on the full-size demo takes seconds a frame, so the graceful drain is still going at the second Ctrl-C."""
    port = free_port()
    run = streamseg_process(["demo", *FAST, "--backend", "torch", "--crf", "sync", "--metrics-port", str(port)])
    assert run.wait_for(lambda: health_detail(port) == {"demo": "ok"}), "\n".join(run.lines)  # the pipeline runs
    # Frames queued behind the CRF make the drain last several CRF frames: the second Ctrl-C lands inside it.
    # (Sent as soon as the run was healthy, the first could find one frame in flight, drained before the second.)
    assert run.wait_for(lambda: frames_waiting(port) >= 3), "\n".join(run.lines)
    run.process.send_signal(signal.SIGINT)
    assert run.wait_for(lambda: run.said("SIGINT: finishing the frames in flight")), "\n".join(run.lines)
    run.process.send_signal(signal.SIGINT)
    code, stderr = run.finish()
    assert code == 130, stderr
    assert run.said("streamseg: interrupted again: aborting") == ["streamseg: interrupted again: aborting"], stderr
    assert "pipeline failed" not in stderr and "RuntimeError" not in stderr and "Traceback" not in stderr
