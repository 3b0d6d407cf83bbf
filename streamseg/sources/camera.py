"""Frames of a local camera (V4L2 on Linux), read with OpenCV."""

from __future__ import annotations

import glob
import re
import threading
import time
from pathlib import Path
from typing import Iterator

import cv2

from streamseg.errors import ConfigError, InputError
from streamseg.frame import Frame
from streamseg.sources.base import Source

DEFAULT_FPS = 30.0  # what most webcams deliver when the driver does not say
_CAMERA_SPEC = re.compile(r"camera(?::(\d+))?", re.IGNORECASE)
_DEVICE_PATH = re.compile(r"/dev/video(\d+)")


def parse_camera(spec: str) -> int | str:
    """'camera' -> 0, 'camera:N' -> N, '/dev/videoN' -> the path; anything else raises InputError."""
    match = _CAMERA_SPEC.fullmatch(spec)
    if match is not None:
        return int(match[1] or 0)
    if _DEVICE_PATH.fullmatch(spec) is not None:
        return spec
    raise InputError(f"not a camera: {spec!r} (use 'camera', 'camera:N' or /dev/videoN)")


def video_devices() -> list[str]:
    """The /dev/video* device nodes of this machine, in number order."""
    found = glob.glob("/dev/video*")
    return sorted(found, key=lambda path: (len(path), path))


def _device_path(device: int | str) -> str:
    return device if isinstance(device, str) else f"/dev/video{device}"


def _no_camera(device: int | str, reason: str) -> InputError:
    devices = video_devices()
    listed = f"video devices here: {', '.join(devices)}" if devices else "no video devices found"
    return InputError(f"cannot open camera {_device_path(device)}: {reason} ({listed})")


class CameraSource(Source):
    """A V4L2 camera as live RGB frames.

    The device is opened here, so a missing or busy camera fails at once with an
    ``InputError`` that lists the video devices the machine has. Requested ``width``,
    ``height``, ``fps`` and ``fourcc`` (e.g. ``"MJPG"``, which many USB cameras need for
    full frame rates at high resolutions) are hints to the driver; ``width``, ``height``
    and ``fps`` afterwards hold what the driver granted.

    The driver's queue is cut to one buffer where the driver allows it, so a slow pipeline
    gets the newest frame rather than one from several frames ago.

    Args:
        device: a camera index (``0`` for ``/dev/video0``) or a device path.
    """

    live = True

    def __init__(
        self,
        device: int | str = 0,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        fourcc: str | None = None,
    ) -> None:
        if fourcc is not None and len(fourcc) != 4:
            raise ConfigError(f"a FOURCC code has four characters, not {fourcc!r}")
        self.device = device
        path = _device_path(device)
        # Checked before OpenCV is asked: it would print its own warnings and say only "False".
        if not Path(path).exists():
            raise _no_camera(device, "no such device")
        capture = cv2.VideoCapture(path, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise _no_camera(device, "the device cannot be opened (busy, not a capture device, or no permission)")
        if fourcc is not None:
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
        if width is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height is not None:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps is not None:
            capture.set(cv2.CAP_PROP_FPS, fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        granted = capture.get(cv2.CAP_PROP_FPS)
        self._fps = float(granted) if granted and granted > 0 else DEFAULT_FPS
        self._capture: cv2.VideoCapture | None = capture
        self._lock = threading.Lock()
        self._reading = False  # a read is running; releasing now would pull the buffer from under it
        self._close_requested = False
        self.damage: str | None = None

    @property
    def fps(self) -> float:
        return self._fps

    def __iter__(self) -> Iterator[Frame]:
        with self._lock:
            if not self._claim_the_only_iteration(self._close_requested):
                return iter(())
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        index = 0
        started = time.monotonic()
        try:
            while True:
                with self._lock:
                    if self._close_requested or self._capture is None:
                        return
                    capture = self._capture
                    self._reading = True
                try:
                    ok, bgr = capture.read()
                finally:
                    with self._lock:
                        self._reading = False
                        stop = self._close_requested
                if stop:
                    return
                if not ok or bgr is None:
                    # A camera that stops delivering was unplugged or taken by its driver.
                    self.damage = f"camera {_device_path(self.device)} stopped delivering frames after {index}"
                    return
                image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yield Frame(index=index, timestamp=time.monotonic() - started, image=image)
                index += 1
        finally:
            self.close()

    def close(self) -> None:
        """Releases the device now, or right after a read in progress on another thread. Safe to call twice."""
        with self._lock:
            self._close_requested = True
            if self._reading or self._capture is None:
                return
            capture, self._capture = self._capture, None
        capture.release()
