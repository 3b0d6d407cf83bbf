"""MaskSink writes label maps as lossless single-channel PNGs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamseg.errors import OutputError
from streamseg.frame import Frame
from streamseg.sinks import MaskSink


def random_labels(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 12, (height, width), dtype=np.uint8)


@pytest.mark.parametrize("height, width", [(540, 960), (67, 99), (1, 1)])
def test_masks_read_back_equal_to_the_labels(tmp_path: Path, height: int, width: int) -> None:
    labels = [random_labels(height, width, seed) for seed in range(3)]
    frames = [Frame(index=i, timestamp=0.0, image=np.zeros((height, width, 3), np.uint8), labels=lab)
              for i, lab in enumerate(labels)]

    with MaskSink(tmp_path / "masks") as sink:
        for frame in frames:
            sink.write(frame)

    assert sink.frames_written == 3
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    for i, expected in enumerate(labels):
        read = cv2.imread(str(tmp_path / "masks" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert read.dtype == np.uint8 and read.ndim == 2
        np.testing.assert_array_equal(read, expected)


def test_frames_without_labels_are_skipped(tmp_path: Path) -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    with MaskSink(tmp_path) as sink:
        sink.write(Frame(index=7, timestamp=0.0, image=image))
        sink.write(Frame(index=8, timestamp=0.0, image=image, labels=np.ones((4, 4), np.uint8)))
    assert [p.name for p in tmp_path.iterdir()] == ["000008.png"]
    assert sink.frames_written == 1


def test_folder_that_is_a_file_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "masks").write_text("not a folder")
    with pytest.raises(OutputError):
        MaskSink(tmp_path / "masks")


def test_an_existing_mask_is_replaced_whole_and_no_partial_file_is_left(tmp_path: Path) -> None:
    (tmp_path / "000000.png").write_bytes(b"an older mask")
    labels = random_labels(8, 8, seed=1)
    with MaskSink(tmp_path) as sink:
        sink.write(Frame(index=0, timestamp=0.0, image=np.zeros((8, 8, 3), np.uint8), labels=labels))

    assert [p.name for p in tmp_path.iterdir()] == ["000000.png"]
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "000000.png"), cv2.IMREAD_UNCHANGED), labels)
    assert sink.completed_output == tmp_path


def test_a_full_disk_leaves_only_whole_masks_and_no_partial_file(small_tmpfs: Path) -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    sink = MaskSink(small_tmpfs, compression=0)  # 4 KiB a mask: the 200 KiB disk fills after about 50

    with pytest.raises(OutputError, match="No space left on device"):
        for index in range(1000):
            sink.write(Frame(index=index, timestamp=0.0, image=image, labels=random_labels(64, 64, index)))
    sink.close()

    assert list(small_tmpfs.glob(".*.partial-*")) == []
    for path in small_tmpfs.glob("*.png"):
        index = int(path.stem)
        np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), random_labels(64, 64, index))
    assert sink.completed_output is None
