"""Signals sent to a real `streamseg run` process: during an engine build, and twice during a run."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

FAST = ["--model", "erfnet-half", "--input-size", "160x120"]
WAIT_S = 120.0  # generous bounds on waits that usually end in seconds


class Run:
    """``streamseg run …`` in a subprocess, its stderr collected line by line on a thread."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamseg", "run", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]

    def wait_for(self, condition, timeout: float = WAIT_S) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if condition():
                return True
            time.sleep(0.05)
        return condition()

    def finish(self) -> tuple[int, str]:
        code = self.process.wait(timeout=WAIT_S)
        self._reader.join(timeout=10)
        return code, "\n".join(self.lines)

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def runs():
    started: list[Run] = []

    def start(args: list[str]) -> Run:
        started.append(Run(args))
        return started[-1]

    yield start
    for run in started:
        run.end()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def health_detail(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return json.loads(response.read())["detail"]
    except urllib.error.HTTPError as error:
        return json.loads(error.read())["detail"]
    except OSError:
        return None


def test_sigterm_during_an_engine_build_cleans_up(tmp_path: Path, runs) -> None:
    """SIGTERM as the ONNX export starts: one line, exit 130 (as for Ctrl-C), no staging directory left."""
    engines = tmp_path / "engines"
    run = runs(["demo", *FAST, "--backend", "onnxruntime", "--precision", "fp32", "--engine-dir", str(engines),
                "--max-frames", "3"])
    assert run.wait_for(lambda: run.said("building ")), "\n".join(run.lines)
    run.process.send_signal(signal.SIGTERM)
    code, stderr = run.finish()
    assert code == 130, stderr
    assert run.said("streamseg: interrupted (SIGTERM)") == ["streamseg: interrupted (SIGTERM)"], stderr
    assert "Traceback" not in stderr
    assert [path.name for path in engines.iterdir() if path.name.startswith(".")] == []


def test_a_second_ctrl_c_aborts_with_one_line_and_exit_130(runs) -> None:
    """Sync CRF on the full-size demo takes seconds a frame, so the graceful drain is still going at the second Ctrl-C."""
    port = free_port()
    run = runs(["demo", *FAST, "--backend", "torch", "--crf", "sync", "--metrics-port", str(port)])
    assert run.wait_for(lambda: health_detail(port) == "ok"), "\n".join(run.lines)  # the pipeline runs
    run.process.send_signal(signal.SIGINT)
    assert run.wait_for(lambda: run.said("SIGINT: finishing the frames in flight")), "\n".join(run.lines)
    run.process.send_signal(signal.SIGINT)
    code, stderr = run.finish()
    assert code == 130, stderr
    assert run.said("streamseg: interrupted again: aborting") == ["streamseg: interrupted again: aborting"], stderr
    assert "pipeline failed" not in stderr and "RuntimeError" not in stderr and "Traceback" not in stderr
