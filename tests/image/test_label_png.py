"""PNGs of class ids: written palette-indexed or greyscale, read back to the exact ids whatever the palette."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from streamseg.image.label_png import decode_label_png, encode_label_png
from streamseg.label_sets import CAMVID, CITYSCAPES


def random_ids(classes: int, shape: tuple[int, int], dtype: type, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, classes, shape, dtype=dtype)


@pytest.mark.parametrize("shape", [(1, 1), (3, 700), (540, 960)])
def test_a_palette_png_reads_back_to_its_ids(shape: tuple[int, int]) -> None:
    ids = random_ids(19, shape, np.uint8, seed=1)
    png = encode_label_png(ids, CITYSCAPES.palette)
    assert png[25] == 3  # IHDR colour type: palette-indexed
    read = decode_label_png(png)
    assert read.dtype == np.uint8
    np.testing.assert_array_equal(read, ids)


def test_ids_of_one_colour_stay_apart() -> None:
    # A palette that draws two classes alike (a user's, or generated) must not merge their ids.
    palette = CAMVID.palette.copy()
    palette[4] = palette[7]
    ids = random_ids(11, (20, 30), np.uint8, seed=2)
    np.testing.assert_array_equal(decode_label_png(encode_label_png(ids, palette)), ids)


def test_an_id_past_the_palette_reads_as_itself() -> None:
    ids = random_ids(11, (8, 8), np.uint8, seed=3)
    ids[0, 0] = 255  # e.g. an 'ignore' id a palette of 11 colours does not list
    np.testing.assert_array_equal(decode_label_png(encode_label_png(ids, CAMVID.palette)), ids)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_without_a_palette_the_png_is_greyscale_of_the_ids_own_depth(dtype: type) -> None:
    ids = random_ids(np.iinfo(dtype).max, (9, 13), dtype, seed=4)
    png = encode_label_png(ids)
    assert (png[24], png[25]) == (np.dtype(dtype).itemsize * 8, 0)  # bit depth, greyscale
    read = decode_label_png(png)
    assert read.dtype == dtype
    np.testing.assert_array_equal(read, ids)
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED), ids)


def test_a_palette_png_written_by_pillow_reads_back_to_its_indices() -> None:
    image_module = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    ids = random_ids(5, (10, 12), np.uint8, seed=5)
    image = image_module.fromarray(ids, mode="P")
    image.putpalette([0, 0, 0] * 5)  # every class black: only the indices tell them apart
    image.info["transparency"] = 0
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", bits=4)  # indices packed two to a byte, with a tRNS chunk
    np.testing.assert_array_equal(decode_label_png(buffer.getvalue()), ids)


def test_a_colour_png_is_not_ids() -> None:
    ok, png = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))
    assert ok
    with pytest.raises(ValueError, match="3 channels holds colours"):
        decode_label_png(png.tobytes())


def test_what_is_not_a_png_is_refused() -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        decode_label_png(b"not a png at all")


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (np.zeros((2, 2, 3), np.uint8), "must be a \\(H, W\\) uint8 or uint16"),
        (np.zeros((2, 2), np.int32), "must be a \\(H, W\\) uint8 or uint16"),
        (np.full((2, 2), 256, np.uint16), "class id 256 does not fit a palette"),
    ],
)
def test_labels_a_png_cannot_hold_are_refused(ids: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_label_png(ids, CITYSCAPES.palette)
