"""Where the shared, third-party data lives; tests that need it skip when it is absent."""

import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

# OpenMP's threads (torch's) spin while they wait for each other. On a 2-core machine that also runs other work, a
# spinning thread waits for a partner that is not scheduled, and a test costs several times its CPU time.
# Set here, before anything imports torch, for this process and every process a test starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CAMVID = SHARED_DATA / "camvid"
ROAD_VIDEO = SHARED_DATA / "video" / "solidWhiteRight.mp4"


TESTS = Path(__file__).resolve().parent
# Whole folders of one kind, marked here rather than file by file, so that a test added there is marked too.
MARKED_FOLDERS = {TESTS / "live": "live", TESTS / "cluster": "ray"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks every test under tests/live/ ``live`` and every test under tests/cluster/ ``ray``."""
    for item in items:
        path = Path(item.path)
        for folder, marker in MARKED_FOLDERS.items():
            if path.is_relative_to(folder):
                item.add_marker(marker)


# Tests that touch what is the machine's, not the test's, run one at a time across pytest-xdist's workers (and across
# pytest runs that share the temporary folder's root): each ray module starts a Ray head of its own, and two heads at
# once contend for the machine's few cores and for Ray's session folder; the CRF pool's tests compare the segments in /dev/shm
# before and after, which another CRF pool would add to. A file lock, since xdist's own groups (--dist loadgroup) are
# silently ignored under pytest 9.2 (pytest-xdist issue 1386).
@contextlib.contextmanager
def _machine_lock(tmp_path_factory: pytest.TempPathFactory, name: str):
    with open(tmp_path_factory.getbasetemp().parent / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


@pytest.fixture(autouse=True, scope="module")
def _ray_modules_one_at_a_time(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if not Path(request.path).is_relative_to(TESTS / "cluster"):
        yield
        return
    with _machine_lock(tmp_path_factory, "ray-head"):
        yield


@pytest.fixture(autouse=True)
def _shared_memory_tests_one_at_a_time(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if not Path(request.path).is_relative_to(TESTS / "refine"):
        yield
        return
    with _machine_lock(tmp_path_factory, "shared-memory"):
        yield


def wait_until(condition, timeout: float, interval: float = 0.2) -> bool:
    """Polls ``condition`` until it is true or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@pytest.fixture(name="wait_until")
def wait_until_fixture():
    """``wait_until(condition, timeout)``: for tests that wait on a real process, server or stream."""
    return wait_until


@pytest.fixture(autouse=True, scope="session")
def _engine_cache_outside_home(tmp_path_factory):
    """The default engine cache ($XDG_CACHE_HOME/streamseg) of every test, and of the processes it starts, is a temporary folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture(autouse=True)
def _streamseg_logging_restored():
    """Undoes what a test's ``main()`` call did to the ``streamseg`` logger (the CLI's handler, its level, no
    propagation), so that the next test's ``caplog`` sees streamseg's records."""
    logger = logging.getLogger("streamseg")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.fixture
def camvid() -> Path:
    if not (CAMVID / "train").is_dir():
        pytest.skip(f"CamVid is not at {CAMVID} (../shared/data is absent in a fresh clone)")
    return CAMVID


@pytest.fixture
def road_video() -> Path:
    if not ROAD_VIDEO.is_file():
        pytest.skip(f"{ROAD_VIDEO} is absent (../shared/data is absent in a fresh clone)")
    return ROAD_VIDEO


TINY_CAMVID_SIZE = (48, 64)  # (height, width) of every frame in ``tiny_camvid``


@pytest.fixture
def tiny_camvid(tmp_path_factory) -> Path:
    """A CamVid-layout folder with four 64x48 train frames and two val frames, labels 0..11, made here.

    For tests of eval and train that need a real data folder but not real data.
    """
    import cv2
    import numpy as np

    root = tmp_path_factory.mktemp("camvid")
    rng = np.random.default_rng(0)
    height, width = TINY_CAMVID_SIZE
    for split, count in (("train", 4), ("val", 2), ("test", 2)):
        (root / split).mkdir()
        (root / f"{split}annot").mkdir()
        for index in range(count):
            image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
            labels = rng.integers(0, 12, size=(height, width), dtype=np.uint8)
            cv2.imwrite(str(root / split / f"f{index:03d}.png"), image)
            cv2.imwrite(str(root / f"{split}annot" / f"f{index:03d}.png"), labels)
    return root


class StreamsegProcess:
    """``streamseg run …`` in a subprocess, its stderr collected line by line on a thread as it comes."""

    WAIT_S = 120.0  # generous bounds on waits that usually end in seconds

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
        """True as soon as ``condition()`` is, while the process runs; its last value once it has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if condition():
                return True
            time.sleep(0.05)
        return condition()

    def finish(self, timeout: float = WAIT_S) -> tuple[int, str]:
        """Waits for the exit; (exit code, all of stderr)."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code, "\n".join(self.lines)

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def streamseg_process():
    """Starts ``streamseg run ARGS`` processes; any still running when the test ends is killed."""
    started: list[StreamsegProcess] = []

    def start(args: list[str]) -> StreamsegProcess:
        started.append(StreamsegProcess(args))
        return started[-1]

    yield start
    for process in started:
        process.end()


def _metric_families(url: str) -> set[str] | None:
    """The family names a /metrics address serves once a frame has gone through; None before that or while nothing listens."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = urllib.request.urlopen(url, timeout=2).read().decode()
    except OSError:
        return None
    families = {family.name: family for family in text_string_to_metric_families(text)}
    frames = families.get("streamseg_frames")
    if frames is None or not any(sample.name == "streamseg_frames_total" and sample.value > 0 for sample in frames.samples):
        return None
    return set(families)


@pytest.fixture
def metric_families():
    """``metric_families(url)``: the metric family names served at ``url`` once a frame was counted, else None."""
    return _metric_families


def _write_demo_video(path: Path, frames: int, seed: int = 0) -> Path:
    """The demo road scene as an H.264 MP4 of ``frames`` frames at 320x240; each ``seed`` its own pictures."""
    import av
    import numpy as np

    from streamseg.sources import open_source

    # faststart: the index first, so that a copy cut short still opens and fails part-way, as a file being damaged does
    with open_source("demo:320x240", demo_frames=frames) as source, av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for frame in source:
            image = np.roll(frame.image, seed * 13, axis=1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="session")
def demo_video():
    """``demo_video(path, frames, seed=0)``: writes the demo scene as an MP4 there and returns the path."""
    return _write_demo_video
