"""Where frames come from: video files, image folders, cameras, rtsp:// streams, ROS bags and the built-in demo scene.

:func:`open_source` turns the SOURCE argument of the command line into a :class:`Source`,
through a source table (:class:`streamseg.sources.table.SourceTable`): a run's holds the
built-in sources registered by :func:`register_sources` and those of installed plugins
(``streamseg.plugins``); without one, the built-ins alone.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from streamseg.errors import ConfigError, InputError
from streamseg.sources.base import Source
from streamseg.sources.camera import CameraSource, parse_camera
from streamseg.sources.demo import DemoSource
from streamseg.sources.image_folder import ImageFolderSource
from streamseg.sources.table import SourceContext, SourceTable

if TYPE_CHECKING:
    from streamseg.sources.bag import BagSource
    from streamseg.sources.rtsp import RtspSource
    from streamseg.sources.video_file import VideoFileSource

__all__ = [
    "BagSource", "CameraSource", "DemoSource", "ImageFolderSource", "RtspSource", "Source", "VideoFileSource", "open_source",
    "register_sources",
]

_DEMO_SIZE = re.compile(r"demo:(\d+)x(\d+)")
_CAMERA = re.compile(r"camera(:\d+)?|/dev/video\d+", re.IGNORECASE)
_RTSP = re.compile(r"rtsps?://.+", re.IGNORECASE)
# Other stream schemes are recognised, so the user hears why they do not work rather than "no such file".
_OTHER_STREAM = re.compile(r"[a-z][a-z0-9+.-]*://.*", re.IGNORECASE)


def _open_demo(spec: str, context: SourceContext) -> Source:
    if spec == "demo":
        return DemoSource(frames=context.demo_frames)
    size = _DEMO_SIZE.fullmatch(spec)
    if size is None:
        raise InputError(f"bad demo source {spec!r}: use 'demo' or 'demo:WIDTHxHEIGHT', e.g. demo:960x540")
    return DemoSource(width=int(size[1]), height=int(size[2]), frames=context.demo_frames)


def _open_camera(spec: str, context: SourceContext) -> Source:
    return CameraSource(parse_camera(spec))


# PyAV is imported only when a file or a stream is opened: a run of the demo scene or a camera never loads
# FFmpeg, and runs where PyAV is not installed (the GPU proof's machine). rosbags and mcap (the ros extra),
# only when a bag is.
_LAZY = {
    "BagSource": "streamseg.sources.bag", "RtspSource": "streamseg.sources.rtsp",
    "VideoFileSource": "streamseg.sources.video_file",
}
_ROS_PACKAGES = ("rosbags", "mcap")


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _open_rtsp(spec: str, context: SourceContext) -> Source:
    from streamseg.sources.rtsp import RtspSource

    return RtspSource(spec)


def _open_folder(spec: str, context: SourceContext) -> Source:
    return ImageFolderSource(Path(spec).expanduser())


def _open_file(spec: str, context: SourceContext) -> Source:
    from streamseg.sources.video_file import VideoFileSource

    return VideoFileSource(Path(spec).expanduser())


def _bag_module():
    """streamseg.sources.bag, or a ConfigError saying how to install what it reads bags with."""
    try:
        from streamseg.sources import bag
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in _ROS_PACKAGES:
            raise
        raise ConfigError(f"reading ROS bags needs {error.name.split('.')[0]}: pip install 'streamseg[ros]'") from None
    return bag


def _open_bag(spec: str, context: SourceContext) -> Source:
    bag = _bag_module()
    parsed = bag.parse_bag_spec(spec)
    return bag.BagSource(parsed.path, parsed.topic, realtime=context.realtime)


def _bag_streams(spec: str) -> list[tuple[str, str]]:
    return _bag_module().bag_streams(spec)


def _is_demo(spec: str) -> bool:
    return spec == "demo" or spec.startswith("demo:")


def register_sources(table: SourceTable) -> None:
    """The built-in sources, keywords first, then the paths: the table tries them in this order."""
    table.add("demo", _open_demo, "the built-in synthetic road scene (demo, demo:WIDTHxHEIGHT)", accepts=_is_demo)
    table.add(
        "camera", _open_camera, "a V4L2 camera (camera, camera:N, /dev/videoN)",
        accepts=lambda spec: _CAMERA.fullmatch(spec) is not None,
    )
    table.add(
        "rtsp", _open_rtsp, "an rtsp:// or rtsps:// stream, reconnecting when it drops",
        accepts=lambda spec: _RTSP.fullmatch(spec) is not None,
    )
    table.add(
        "bag", _open_bag,
        "a ROS bag (bag:PATH: a .mcap, a ROS 2 bag folder or a ROS 1 .bag), each image topic a stream; "
        "bag:PATH#/TOPIC reads one",
        streams=_bag_streams,
    )
    table.add(
        "image-folder", _open_folder, "a folder of images, in name order",
        accepts=lambda spec: Path(spec).expanduser().is_dir(), opens_paths=True,
    )
    table.add(
        "video-file", _open_file, "a video file, decoded with PyAV",
        accepts=lambda spec: Path(spec).expanduser().is_file(), opens_paths=True,
    )


def builtin_sources() -> SourceTable:
    """A table of the built-in sources alone."""
    table: SourceTable[Source] = SourceTable("source", Source)
    register_sources(table)
    return table


def open_source(
    spec: str, *, demo_frames: int | None = None, sources: SourceTable | None = None, realtime: bool = False,
) -> Source:
    """Opens what ``spec`` names: 'demo' or 'demo:WIDTHxHEIGHT', 'camera[:N]' or /dev/videoN, an rtsp:// URL,
    'bag:PATH[#/TOPIC]', a plugin's source, an image folder, or a video file.

    ``demo_frames`` bounds the otherwise endless demo; ``realtime`` replays a recording (a bag)
    at the pace it was recorded. ``sources`` is the table to choose
    from (a run passes its registry's, with plugins' sources); None: the built-in sources.
    Anything unusable raises ``InputError`` (a bad setting of it: ``ConfigError``) with a
    one-line reason.
    """
    if not spec.strip():
        # An empty path would otherwise name the working directory, opened as an image folder.
        raise InputError("the source is empty: give a video file, an image folder, camera[:N], an rtsp:// URL or 'demo'")
    table = sources if sources is not None else builtin_sources()
    registration = table.find(spec)
    if registration is not None:
        return table.create(registration.name, spec, SourceContext(demo_frames=demo_frames, realtime=realtime))
    if _OTHER_STREAM.fullmatch(spec):
        raise InputError(
            f"only rtsp:// streams are supported, not {spec}; use a camera, an rtsp:// URL, a video file, "
            "an image folder or 'demo'"
        )
    raise InputError(f"no such file or folder: {spec}")
