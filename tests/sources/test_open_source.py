"""open_source turns the SOURCE argument into the right source, or one clear error."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamseg.errors import InputError
from streamseg.sources import (
    DemoSource,
    ImageFolderSource,
    VideoFileSource,
    open_source,
)


@pytest.fixture
def specs(tmp_path: Path, write_video) -> dict[str, str]:
    """Real things on disk for the specs that name a path."""
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "0001.png"), np.zeros((8, 8, 3), np.uint8))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    missing = tmp_path / "gone.mp4"
    return {"{video}": str(write_video()), "{folder}": str(folder), "{notes}": str(notes), "{missing}": str(missing)}


def resolve(spec: str, specs: dict[str, str]) -> str:
    return specs.get(spec, spec)


@pytest.mark.parametrize(
    ("spec", "kind", "size"),
    [
        ("demo", DemoSource, (960, 540)),
        ("demo:320x240", DemoSource, (320, 240)),
        ("{folder}", ImageFolderSource, (8, 8)),
        ("{video}", VideoFileSource, (64, 48)),
    ],
)
def test_opens_the_source_the_spec_names(specs, spec: str, kind: type, size: tuple[int, int]) -> None:
    with open_source(resolve(spec, specs), demo_frames=2) as source:
        assert type(source) is kind
        frame = next(iter(source))
        assert (frame.width, frame.height) == size


def test_demo_frames_bounds_the_demo() -> None:
    with open_source("demo:160x90", demo_frames=4) as source:
        assert len(list(source)) == 4


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("camera:97", "cannot open camera /dev/video97: "),
        ("/dev/video98", "cannot open camera /dev/video98: "),
        ("http://127.0.0.1:1/stream", "only rtsp:// streams are supported, not http://127.0.0.1:1/stream"),
        ("demo:big", "bad demo source 'demo:big': use 'demo' or 'demo:WIDTHxHEIGHT'"),
        ("demo:10x10", "the demo scene needs at least 32x24 pixels"),
        ("{missing}", "no such file or folder: {missing}"),
        ("no/such/folder/", "no such file or folder: no/such/folder/"),
        ("{notes}", "cannot open {notes} as video: "),
    ],
)
def test_unusable_specs_raise_one_line_input_errors(specs, spec: str, message: str) -> None:
    with pytest.raises(InputError) as raised:
        open_source(resolve(spec, specs))
    expected = message.format(**{key.strip("{}"): value for key, value in specs.items()})
    assert str(raised.value).startswith(expected)
    assert "\n" not in str(raised.value)
