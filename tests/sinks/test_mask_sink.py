"""MaskSink writes label maps as lossless PNGs of class ids: palette-indexed up to 256 classes, 16-bit beyond."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamseg.errors import OutputError
from streamseg.frame import Frame
from streamseg.image.confidence_resize import confidence_at_size
from streamseg.image.label_png import read_label_png
from streamseg.label_sets import CITYSCAPES, custom_label_set
from streamseg.plugins import Plugins, SinkContext
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
        read = read_label_png(tmp_path / "masks" / f"{i:06d}.png")
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
    np.testing.assert_array_equal(read_label_png(tmp_path / "000000.png"), labels)
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
        np.testing.assert_array_equal(read_label_png(path), random_labels(64, 64, index))
    assert sink.completed_output is None


def png_header(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[12:16] == b"IHDR"
    return data[24], data[25]


def png_palette(path: Path) -> np.ndarray:
    """The PLTE chunk's colours, (N, 3) RGB."""
    data = path.read_bytes()
    start = data.index(b"PLTE")
    length = int.from_bytes(data[start - 4 : start], "big")
    return np.frombuffer(data[start + 4 : start + 4 + length], np.uint8).reshape(-1, 3)


def test_masks_of_cityscapes_are_palette_indexed_in_its_colours_and_read_back_as_ids(tmp_path: Path) -> None:
    labels = np.random.default_rng(5).integers(0, CITYSCAPES.num_classes, (45, 61), dtype=np.uint8)
    labels[0, :19] = np.arange(19)  # every class appears
    with MaskSink(tmp_path, label_set=CITYSCAPES) as sink:
        sink.write(Frame(index=3, timestamp=0.0, image=np.zeros((45, 61, 3), np.uint8), labels=labels))
    path = tmp_path / "000003.png"

    assert png_header(path) == (8, 3)  # 8-bit palette-indexed
    np.testing.assert_array_equal(png_palette(path), CITYSCAPES.palette)
    np.testing.assert_array_equal(read_label_png(path), labels)
    # What an image viewer shows: each pixel in its class's colour (OpenCV decodes BGR).
    np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1], CITYSCAPES.palette[labels])
    image = pytest.importorskip("PIL.Image", reason="Pillow is not installed").open(path)
    assert image.mode == "P"
    np.testing.assert_array_equal(np.asarray(image), labels)


def test_masks_of_300_classes_are_16_bit_greyscale_ids(tmp_path: Path) -> None:
    label_set = custom_label_set([f"class {index}" for index in range(300)])
    labels = np.random.default_rng(6).integers(0, 300, (33, 47), dtype=np.uint16)
    labels[0, 0], labels[0, 1] = 299, 256  # ids past a byte
    with MaskSink(tmp_path, label_set=label_set) as sink:
        sink.write(Frame(index=0, timestamp=0.0, image=np.zeros((33, 47, 3), np.uint8), labels=labels))
    path = tmp_path / "000000.png"

    assert png_header(path) == (16, 0)  # 16-bit greyscale
    read = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert read.dtype == np.uint16
    np.testing.assert_array_equal(read, labels)
    np.testing.assert_array_equal(read_label_png(path), labels)


def test_masks_of_256_classes_hold_their_uint16_ids_in_a_palette(tmp_path: Path) -> None:
    label_set = custom_label_set([f"class {index}" for index in range(256)])
    labels = np.arange(256, dtype=np.uint16).reshape(16, 16)  # uint16, as class_labels gives past 255 classes
    with MaskSink(tmp_path, label_set=label_set) as sink:
        sink.write(Frame(index=0, timestamp=0.0, image=np.zeros((16, 16, 3), np.uint8), labels=labels))

    assert png_header(tmp_path / "000000.png") == (8, 3)
    np.testing.assert_array_equal(read_label_png(tmp_path / "000000.png"), labels)


def test_an_id_past_the_palette_s_reach_is_refused_and_nothing_written(tmp_path: Path) -> None:
    labels = np.full((4, 4), 300, dtype=np.uint16)
    with MaskSink(tmp_path, label_set=CITYSCAPES) as sink:
        with pytest.raises(ValueError, match="frame 0: class id 300"):
            sink.write(Frame(index=0, timestamp=0.0, image=np.zeros((4, 4, 3), np.uint8), labels=labels))
    assert list(tmp_path.iterdir()) == []
    assert sink.completed_output is None


def test_the_sinks_table_gives_the_masks_sink_the_run_s_palette(tmp_path: Path) -> None:
    context = SinkContext(fps=lambda: 25.0, label_set=CITYSCAPES)
    labels = np.arange(19, dtype=np.uint8).reshape(1, 19)
    with Plugins(discover=False).sink(f"masks:{tmp_path}", context) as sink:
        sink.write(Frame(index=0, timestamp=0.0, image=np.zeros((1, 19, 3), np.uint8), labels=labels))
    np.testing.assert_array_equal(png_palette(tmp_path / "000000.png"), CITYSCAPES.palette)
    np.testing.assert_array_equal(read_label_png(tmp_path / "000000.png"), labels)


# --- confidence beside the masks -------------------------------------------------------------


def confident_frame(index: int, height: int, width: int, confidence: np.ndarray | None) -> Frame:
    frame = Frame(index=index, timestamp=0.0, image=np.zeros((height, width, 3), np.uint8),
                  labels=random_labels(height, width, index))
    frame.confidence = confidence
    return frame


def test_confidence_is_written_beside_each_mask_at_the_mask_s_size(tmp_path: Path) -> None:
    # The network's grid is a quarter of the frame: left half sure, right half at p = 0.6.
    grid = np.full((30, 40), 255, dtype=np.uint8)
    grid[:, 20:] = 153
    with MaskSink(tmp_path, confidence=True) as sink:
        sink.write(confident_frame(0, 120, 160, grid))
        sink.write(confident_frame(1, 120, 160, None))  # a frame without confidence gets its mask alone

    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000.confidence.png", "000000.png", "000001.png"]
    written = cv2.imread(str(tmp_path / "000000.confidence.png"), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint8 and written.shape == (120, 160)  # one greyscale channel, the mask's size
    assert np.all(written[:, :76] == 255) and np.all(written[:, 84:] == 153)
    edge = written[60, 76:84].astype(int)
    assert edge[0] > edge[-1] and np.all(np.diff(edge) <= 0)  # a bilinear ramp between the two, no step
    np.testing.assert_array_equal(written, confidence_at_size(grid, (120, 160)))
    np.testing.assert_array_equal(read_label_png(tmp_path / "000000.png"), random_labels(120, 160, 0))
    assert list(tmp_path.glob(".*.partial-*")) == []
    assert sink.completed_output == tmp_path


def test_without_the_option_no_confidence_is_written(tmp_path: Path) -> None:
    with MaskSink(tmp_path) as sink:
        sink.write(confident_frame(0, 8, 8, np.full((8, 8), 200, np.uint8)))
    assert [p.name for p in tmp_path.iterdir()] == ["000000.png"]


def test_an_existing_confidence_file_is_replaced_whole(tmp_path: Path) -> None:
    (tmp_path / "000003.confidence.png").write_bytes(b"an older confidence")
    with MaskSink(tmp_path, confidence=True) as sink:
        sink.write(confident_frame(3, 8, 8, np.full((8, 8), 230, np.uint8)))
    written = cv2.imread(str(tmp_path / "000003.confidence.png"), cv2.IMREAD_UNCHANGED)
    assert np.all(written == 230)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000003.confidence.png", "000003.png"]


def test_a_full_disk_leaves_whole_confidence_files_each_beside_its_mask(small_tmpfs: Path) -> None:
    image_size = (64, 64)
    sink = MaskSink(small_tmpfs, compression=0, confidence=True)
    with pytest.raises(OutputError, match="No space left on device"):
        for index in range(1000):
            confidence = np.random.default_rng(index).integers(128, 256, image_size, dtype=np.uint8)
            sink.write(confident_frame(index, *image_size, confidence))
    sink.close()

    assert list(small_tmpfs.glob(".*.partial-*")) == []
    masks = {int(path.name[:6]) for path in small_tmpfs.glob("??????.png")}
    confidences = {int(path.name[:6]) for path in small_tmpfs.glob("*.confidence.png")}
    assert masks and masks <= confidences  # the confidence file is written first: a mask never lacks its own
    for index in confidences:
        expected = np.random.default_rng(index).integers(128, 256, image_size, dtype=np.uint8)
        np.testing.assert_array_equal(cv2.imread(str(small_tmpfs / f"{index:06d}.confidence.png"), cv2.IMREAD_UNCHANGED), expected)
    assert sink.completed_output is None


def test_the_sinks_table_passes_the_run_s_masks_confidence_option(tmp_path: Path) -> None:
    for asked in (True, False):
        folder = tmp_path / str(asked)
        context = SinkContext(fps=lambda: 25.0, masks_confidence=asked)
        with Plugins(discover=False).sink(f"masks:{folder}", context) as sink:
            sink.write(confident_frame(0, 4, 4, np.full((4, 4), 255, np.uint8)))
        assert (folder / "000000.confidence.png").exists() == asked
