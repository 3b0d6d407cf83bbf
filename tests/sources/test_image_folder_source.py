"""ImageFolderSource reads a folder's images in name order as RGB frames and steps over broken ones."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamseg.errors import InputError
from streamseg.sources import ImageFolderSource

NO_IMAGES = "no images (.png, .jpg, .jpeg, .bmp) in {folder}"


def write_image(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Path:
    """A flat image of one RGB colour, written with OpenCV (which wants BGR)."""
    width, height = size
    image = np.empty((height, width, 3), np.uint8)
    image[:] = rgb[::-1]
    assert cv2.imwrite(str(path), image)
    return path


def test_frames_come_in_natural_name_order_as_rgb(tmp_path: Path) -> None:
    colours = {"frame1.png": (200, 10, 10), "frame2.bmp": (10, 200, 10), "frame10.jpg": (10, 10, 200)}
    for name, rgb in colours.items():
        write_image(tmp_path / name, rgb)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub.png").mkdir()  # a folder with an image's name is not an image

    with ImageFolderSource(tmp_path, fps=5.0) as source:
        frames = list(source)
        assert source.fps == 5.0 and source.live is False and source.damage is None

    assert [frame.index for frame in frames] == [0, 1, 2]
    assert [frame.timestamp for frame in frames] == pytest.approx([0.0, 0.2, 0.4])
    for frame, rgb in zip(frames, colours.values()):  # frame2 before frame10
        assert frame.image.shape == (30, 40, 3) and frame.image.dtype == np.uint8
        assert np.abs(frame.image.reshape(-1, 3).mean(axis=0) - rgb).max() < 8


def test_upper_case_suffixes_and_grey_images_are_read(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.PNG"), np.full((12, 16), 99, np.uint8))
    frames = list(ImageFolderSource(tmp_path))
    assert len(frames) == 1
    assert frames[0].image.shape == (12, 16, 3) and int(frames[0].image[0, 0, 0]) == 99


@pytest.mark.parametrize(
    "broken",
    [b"", b"this is not a png", np.random.default_rng(3).bytes(4000)],
    ids=["empty", "text", "random-bytes"],
)
def test_an_unreadable_image_in_the_middle_is_skipped_and_reported(tmp_path: Path, broken: bytes) -> None:
    write_image(tmp_path / "000.png", (200, 0, 0))
    (tmp_path / "001.png").write_bytes(broken)
    write_image(tmp_path / "002.png", (0, 200, 0))

    source = ImageFolderSource(tmp_path)
    frames = list(source)

    assert [frame.index for frame in frames] == [0, 1]
    assert frames[1].image[0, 0, 1] > 150, "the image after the broken one is delivered"
    assert source.skipped == [tmp_path / "001.png"]
    assert source.damage == f"{tmp_path} is damaged: skipped 1 unreadable image (001.png)"


def test_iterating_again_starts_over(tmp_path: Path) -> None:
    for index in range(3):
        write_image(tmp_path / f"{index}.png", (index * 50, 0, 0))
    source = ImageFolderSource(tmp_path)
    first = [int(frame.image[0, 0, 0]) for frame in source]
    assert first == [int(frame.image[0, 0, 0]) for frame in source] == [0, 50, 100]


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda folder: folder, NO_IMAGES),
        (lambda folder: (folder / "readme.txt").write_text("hi") and folder, NO_IMAGES),
        (lambda folder: folder / "missing", "no such folder: {folder}/missing"),
    ],
    ids=["empty", "no-images", "missing"],
)
def test_folders_without_images_raise_input_error(tmp_path: Path, prepare, message) -> None:
    folder = prepare(tmp_path)
    with pytest.raises(InputError) as raised:
        ImageFolderSource(folder)
    assert str(raised.value) == message.format(folder=tmp_path)
