"""What a bag SOURCE names, ``bag:PATH`` or ``bag:PATH#/topic``, and the stream name of a topic.

Apart from the bag source itself (``streamseg.sources.bag``), so that whoever only reads the
text (the output checks, which refuse to write over the bag being read) needs neither rosbags
nor mcap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from streamseg.errors import InputError

PREFIX = "bag:"
_MAX_NAME = 64  # stream names are at most this long (streamseg.config.check_stream_name)


@dataclass(frozen=True)
class BagSpec:
    """What ``bag:PATH[#TOPIC]`` names."""

    path: Path
    topic: str | None  # None: the bag's only image topic (or each of them, as streams)


def parse_bag_spec(spec: str) -> BagSpec:
    """``bag:PATH`` or ``bag:PATH#/topic`` (the leading / of a topic may be left out); a path that holds a # is
    taken whole when it exists."""
    if not spec.startswith(PREFIX) or not spec[len(PREFIX):].strip():
        raise InputError(f"a bag source is bag:PATH or bag:PATH#/topic (e.g. bag:drive.mcap#/camera/image_raw), not {spec!r}")
    rest = spec[len(PREFIX):]
    if "#" in rest and not Path(rest).expanduser().exists():
        path, _, topic = rest.rpartition("#")
        if not topic.strip():
            raise InputError(f"{spec}: no topic after #; give bag:PATH#/topic, or bag:PATH for every image topic")
        return BagSpec(Path(path).expanduser(), "/" + topic.strip().lstrip("/"))
    return BagSpec(Path(rest).expanduser(), None)


def stream_name(topic: str) -> str:
    """A stream's name for ``topic``: ``/camera/front/image_raw`` -> ``camera.front.image_raw``.

    ROS names never hold a '.', so a name that did not have to be shortened says its topic exactly.
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", topic.strip("/").replace("/", "."))
    return name[:_MAX_NAME].strip("-._") or "bag"
