"""Real servers and programs for the live tests, started by the tests on 127.0.0.1.

Each fixture skips its test with the reason when the program it needs is missing; they
are Debian packages that ``tools/install_test_deps.sh`` installs (``make test`` runs it).
Every process started here is ended by its process id when the test ends.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

from streamseg.config import RunConfig
from streamseg.pipeline.assemble import Assembly, assemble
from streamseg.pipeline.runner import PipelineResult, Runner

LIVE_DIR = Path(__file__).resolve().parent
SHARED_DATA = LIVE_DIR.parents[1].parent / "shared" / "data"
ROAD_VIDEO = SHARED_DATA / "video" / "solidWhiteRight.mp4"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which has PyGObject; the project's venv does not
INSTALL_HINT = "run tools/install_test_deps.sh (as root) to install it"
# Small and fast on two busy cores: the live tests check plumbing, not segmentation quality.
FAST_MODEL = {"model": "erfnet-half", "backend": "torch", "input_size": (180, 240)}


def require_program(name: str) -> str:
    """The path of program ``name``, or a skip naming the Debian package that brings it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed; {INSTALL_HINT}")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_process(process: subprocess.Popen) -> None:
    """Ends a process this test started: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def road_video() -> Path:
    if not ROAD_VIDEO.is_file():
        pytest.skip(f"{ROAD_VIDEO} is absent (../shared/data is absent in a fresh clone)")
    return ROAD_VIDEO


@pytest.fixture(scope="session")
def looped_road_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The road clip ten times over (about 88 s), joined without re-encoding by ffmpeg.

    GStreamer's file pipeline ends at the end of the file; a long file lets the RTSP
    server stream without ending during a test, so every loss the client sees is one the
    test caused.
    """
    if not ROAD_VIDEO.is_file():
        pytest.skip(f"{ROAD_VIDEO} is absent (../shared/data is absent in a fresh clone)")
    ffmpeg = require_program("ffmpeg")
    looped = tmp_path_factory.mktemp("rtsp") / "road_looped.mp4"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-stream_loop", "9", "-i", str(ROAD_VIDEO), "-an", "-c", "copy", str(looped)],
        check=True, timeout=60,
    )
    return looped


@dataclass
class RtspTestServer:
    """GStreamer's rtsp-server serving one file, in a subprocess that can be killed and restarted."""

    video: Path
    port: int = field(default_factory=free_port)
    mount: str = "road"
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{self.mount}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(LIVE_DIR / "rtsp_server.py"), str(self.port), self.mount, str(self.video)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.process.stdout.readline()  # the server prints "ready ..." once it listens
        if not line.startswith("ready"):
            stop_process(self.process)
            raise RuntimeError(f"the RTSP test server did not start: {line!r} {self.process.stderr.read()[-2000:]}")

    def kill(self) -> None:
        """Kills the server at once, as a crash or a power cut would: no RTSP TEARDOWN."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def _gst_rtsp_server_missing() -> str | None:
    if not Path(SYSTEM_PYTHON).is_file():
        return f"{SYSTEM_PYTHON} is absent"
    check = subprocess.run(
        [SYSTEM_PYTHON, "-c",
         "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
         "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
         "missing = [e for e in ('qtdemux', 'h264parse', 'rtph264pay') if Gst.ElementFactory.find(e) is None];"
         "print(' '.join(missing))"],
        capture_output=True, text=True, timeout=30,
    )
    if check.returncode != 0:
        return "GStreamer's RTSP server for the system python3 (gir1.2-gst-rtsp-server-1.0, python3-gi) is missing"
    if check.stdout.strip():
        return f"GStreamer elements {check.stdout.strip()} are missing (gstreamer1.0-plugins-good/bad)"
    return None


@pytest.fixture
def rtsp_server(looped_road_video: Path) -> Iterator[RtspTestServer]:
    """A running RTSP server at ``rtsp_server.url`` that streams the road clip in real time."""
    missing = _gst_rtsp_server_missing()
    if missing is not None:
        pytest.skip(f"{missing}; {INSTALL_HINT}")
    server = RtspTestServer(looped_road_video)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class BackgroundRun:
    """A pipeline from ``assemble`` running on a thread, stopped and joined when the test ends."""

    def __init__(self, assembly: Assembly, pipeline: Runner) -> None:
        self.assembly = assembly
        self.pipeline = pipeline
        self.result: PipelineResult | None = None
        self._thread = threading.Thread(target=self._run, name="test-pipeline", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.result = self.pipeline.run()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> PipelineResult | None:
        self.pipeline.stop()
        self._thread.join(timeout=60)
        return self.result


@pytest.fixture
def demo_run() -> Iterator[Callable[..., BackgroundRun]]:
    """Starts the endless demo through the real stages with /metrics on a free port.

    ``demo_run(extra_sinks=lambda assembly: [...])`` adds sinks built from the assembly
    (its HTTP server, its monitor). The run is stopped and everything closed afterwards.
    """
    opened: list[tuple[object, BackgroundRun]] = []

    def start(extra_sinks: Callable[[Assembly], list] = lambda assembly: []) -> BackgroundRun:
        config = RunConfig(source="demo", metrics_port=0, **FAST_MODEL).validate()
        context = assemble(config)
        assembly = context.__enter__()
        try:
            sinks = list(assembly.sinks) + extra_sinks(assembly)
            run = BackgroundRun(assembly, assembly.pipeline(sinks=sinks))
        except BaseException:
            context.__exit__(*sys.exc_info())
            raise
        opened.append((context, run))
        return run

    try:
        yield start
    finally:
        for context, run in reversed(opened):
            run.stop()
            context.__exit__(None, None, None)


# Helpers the test modules use, handed over as fixtures so that no test imports this file.


@pytest.fixture
def fast_model() -> dict:
    """Model options that keep inference quick: erfnet-half at 240x180 on torch."""
    return dict(FAST_MODEL)


@pytest.fixture(name="free_port")
def free_port_fixture() -> Callable[[], int]:
    return free_port


@pytest.fixture
def program() -> Callable[[str], str]:
    """``program(name)``: the path of a program, or a skip that says how to install it."""
    return require_program


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen]]:
    """``spawn(args, **popen_kwargs)`` starts a process that is ended (by its pid) when the test ends."""
    started: list[subprocess.Popen] = []

    def start(args: list[str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(args, **kwargs)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in reversed(started):
            stop_process(process)
