"""Small media files that the source tests write themselves, and a way to see open files."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import av
import numpy as np
import pytest

SMALL_WIDTH, SMALL_HEIGHT, SMALL_FPS = 64, 48, 30


def _shade(index: int) -> int:
    """A grey level per frame, far enough apart to survive lossy compression."""
    return 50 + (index * 7) % 150  # noise of +-30 never clips


@pytest.fixture
def shade() -> Callable[[int], int]:
    """The mean grey level of frame ``index`` in the videos ``write_video`` makes."""
    return _shade


@pytest.fixture
def write_video(tmp_path: Path) -> Callable[..., Path]:
    """Writes ``frames`` 64x48 frames at 30 fps with PyAV and returns the file's path.

    ``options`` go to the muxer, ``codec_options`` to the encoder.

    Each frame is its shade plus noise, so every frame costs about the same bytes and a
    file cut in half loses about half of its frames.
    """

    def write(
        name: str = "small.mp4", *, frames: int = 30, codec: str = "libx264", options: dict[str, str] | None = None,
        bit_rate: int | None = None, codec_options: dict[str, str] | None = None,
    ) -> Path:
        path = tmp_path / name
        rng = np.random.default_rng(0)
        with av.open(str(path), "w", options=options or {}) as container:
            stream = container.add_stream(codec, rate=SMALL_FPS, options=codec_options or {})
            stream.width, stream.height, stream.pix_fmt = SMALL_WIDTH, SMALL_HEIGHT, "yuv420p"
            if bit_rate is not None:
                stream.bit_rate = bit_rate
            for index in range(frames):
                noise = rng.integers(-30, 31, (SMALL_HEIGHT, SMALL_WIDTH, 3))
                image = np.clip(_shade(index) + noise, 0, 255).astype(np.uint8)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())  # flush the encoder's delayed frames
        return path

    return write


@pytest.fixture
def open_handles() -> Callable[[Path], int]:
    """Counts this process's file descriptors that point at a path (Linux /proc)."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc/self/fd to see which files are open")

    def count(path: Path) -> int:
        target = path.resolve()
        found = 0
        for fd in list(fd_dir.iterdir()):
            try:
                found += Path(fd.readlink()) == target
            except OSError:
                continue  # closed while we looked
        return found

    return count


MARKER = 40  # side of the white square drawn in the top-left corner of each marked frame


@pytest.fixture
def write_marked_video(tmp_path: Path) -> Callable[..., Path]:
    """Writes 12 black 320x180 H.264 frames with a white square in the top-left corner.

    ``rotation`` (degrees counter-clockwise, as FFmpeg's display matrix counts them) is
    stored in the container the way phones store it: the picture stays as shot, sideways,
    and the file says how to turn it for display.
    """

    def write(name: str = "marked.mp4", *, rotation: int | None = None) -> Path:
        path = tmp_path / name
        image = np.zeros((180, 320, 3), np.uint8)
        image[:MARKER, :MARKER] = 255
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=SMALL_FPS)
            stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
            if rotation is not None:
                if not hasattr(stream, "set_display_rotation"):
                    pytest.skip("this PyAV cannot write a display matrix (set_display_rotation)")
                stream.set_display_rotation(rotation)
            for _ in range(12):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
        return path

    return write
