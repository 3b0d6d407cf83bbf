"""Where frames come from: video files, image folders and the built-in demo scene.

:func:`open_source` turns the SOURCE argument of the command line into a :class:`Source`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from streamseg.errors import InputError
from streamseg.sources.base import Source
from streamseg.sources.camera import CameraSource, parse_camera
from streamseg.sources.demo import DemoSource
from streamseg.sources.image_folder import ImageFolderSource
from streamseg.sources.rtsp import RtspSource
from streamseg.sources.video_file import VideoFileSource

__all__ = ["CameraSource", "DemoSource", "ImageFolderSource", "RtspSource", "Source", "VideoFileSource", "open_source"]

_DEMO_SIZE = re.compile(r"demo:(\d+)x(\d+)")
_CAMERA = re.compile(r"camera(:\d+)?|/dev/video\d+", re.IGNORECASE)
_RTSP = re.compile(r"rtsps?://.+", re.IGNORECASE)
# Other stream schemes are recognised, so the user hears why they do not work rather than "no such file".
_OTHER_STREAM = re.compile(r"[a-z][a-z0-9+.-]*://.*", re.IGNORECASE)


def _open_demo(spec: str, demo_frames: int | None) -> Source:
    if spec == "demo":
        return DemoSource(frames=demo_frames)
    size = _DEMO_SIZE.fullmatch(spec)
    if size is None:
        raise InputError(f"bad demo source {spec!r}: use 'demo' or 'demo:WIDTHxHEIGHT', e.g. demo:960x540")
    return DemoSource(width=int(size[1]), height=int(size[2]), frames=demo_frames)


def _refuse_empty(spec: str, demo_frames: int | None) -> Source:
    # An empty path would otherwise name the working directory, opened as an image folder.
    raise InputError("the source is empty: give a video file, an image folder, camera[:N], an rtsp:// URL or 'demo'")


def _open_camera(spec: str, demo_frames: int | None) -> Source:
    return CameraSource(parse_camera(spec))


def _open_rtsp(spec: str, demo_frames: int | None) -> Source:
    return RtspSource(spec)


def _refuse_stream(spec: str, demo_frames: int | None) -> Source:
    raise InputError(
        f"only rtsp:// streams are supported, not {spec}; use a camera, an rtsp:// URL, a video file, "
        "an image folder or 'demo'"
    )


def _open_folder(spec: str, demo_frames: int | None) -> Source:
    return ImageFolderSource(Path(spec).expanduser())


def _open_file(spec: str, demo_frames: int | None) -> Source:
    return VideoFileSource(Path(spec).expanduser())


def _is_demo(spec: str) -> bool:
    return spec == "demo" or spec.startswith("demo:")


# Tried in order; the first whose test accepts the spec opens it. Keywords come before
# paths, so a file called 'demo' is reached as './demo'.
_OPENERS: tuple[tuple[Callable[[str], bool], Callable[[str, int | None], Source]], ...] = (
    (lambda spec: not spec.strip(), _refuse_empty),
    (_is_demo, _open_demo),
    (lambda spec: _CAMERA.fullmatch(spec) is not None, _open_camera),
    (lambda spec: _RTSP.fullmatch(spec) is not None, _open_rtsp),
    (lambda spec: _OTHER_STREAM.fullmatch(spec) is not None, _refuse_stream),
    (lambda spec: Path(spec).expanduser().is_dir(), _open_folder),
    (lambda spec: Path(spec).expanduser().is_file(), _open_file),
)


def open_source(spec: str, *, demo_frames: int | None = None) -> Source:
    """Opens what ``spec`` names: 'demo' or 'demo:WIDTHxHEIGHT', 'camera[:N]' or /dev/videoN, an rtsp:// URL,
    an image folder, or a video file.

    ``demo_frames`` bounds the otherwise endless demo. Anything unusable raises
    ``InputError`` with a one-line reason.
    """
    for accepts, opener in _OPENERS:
        if accepts(spec):
            return opener(spec, demo_frames)
    raise InputError(f"no such file or folder: {spec}")
