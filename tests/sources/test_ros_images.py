"""ROS image messages, as rosbags builds them, turn into the RGB picture they hold, or a clear refusal."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from streamseg.frame import MessageHeader
from streamseg.sources.ros_images import (
    COMPRESSED_IMAGE,
    IMAGE,
    DamagedImage,
    UnknownEncoding,
    header_of,
    rgb_image,
)

TYPES = get_typestore(Stores.ROS2_HUMBLE).types
HEIGHT, WIDTH = 12, 16


def picture() -> np.ndarray:
    """Flat 2x2 blocks of varied colour: demosaicing and chroma subsampling keep each block's colour inside it."""
    rng = np.random.default_rng(3)
    blocks = rng.integers(20, 236, (HEIGHT // 4, WIDTH // 4, 3), dtype=np.uint8)
    return np.repeat(np.repeat(blocks, 4, axis=0), 4, axis=1)


def header(stamp_ns: int = 1_700_000_000_250_000_000, frame_id: str = "cam_optical") -> object:
    stamp = TYPES["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    return TYPES["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def image_message(encoding: str, pixels: np.ndarray, *, step: int | None = None, bigendian: bool = False) -> object:
    if pixels.dtype == np.uint16:  # stored in the byte order the message says
        pixels = pixels.astype(">u2" if bigendian else "<u2")
    rows = np.ascontiguousarray(pixels).reshape(pixels.shape[0], -1).view(np.uint8)
    step = step or rows.shape[1]
    padded = np.zeros((rows.shape[0], step), np.uint8)
    padded[:, : rows.shape[1]] = rows
    return TYPES[IMAGE](
        header=header(), height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
        is_bigendian=int(bigendian), step=step, data=padded.ravel(),
    )


def compressed_message(format_: str, data: np.ndarray) -> object:
    return TYPES[COMPRESSED_IMAGE](header=header(), format=format_, data=data.ravel())


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """The single-plane Bayer picture a sensor with colour filters in ``pattern`` (e.g. 'rggb') records."""
    channel = {"r": 0, "g": 1, "b": 2}
    plane = np.zeros(rgb.shape[:2], rgb.dtype)
    for row in range(2):
        for column in range(2):
            plane[row::2, column::2] = rgb[row::2, column::2, channel[pattern[2 * row + column]]]
    return plane


def packed_422(rgb: np.ndarray, code: int) -> np.ndarray:
    """The picture packed two pixels to four bytes by OpenCV's encoder (``code``: UYVY or YUY2), as cameras send it."""
    return cv2.cvtColor(rgb, code).reshape(rgb.shape[0], rgb.shape[1], 2)


RGB = picture()
GREY = cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY)


@pytest.mark.parametrize(
    ("encoding", "pixels", "expected", "tolerance"),
    [
        ("rgb8", RGB, RGB, 0),
        ("bgr8", RGB[..., ::-1], RGB, 0),
        ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 255, np.uint8)]), RGB, 0),
        ("bgra8", np.dstack([RGB[..., ::-1], np.full(RGB.shape[:2], 9, np.uint8)]), RGB, 0),
        ("mono8", GREY, np.dstack([GREY] * 3), 0),
        ("mono16", GREY.astype(np.uint16) << 8 | 0x7F, np.dstack([GREY] * 3), 0),
        ("yuv422", packed_422(RGB, cv2.COLOR_RGB2YUV_UYVY), RGB, 4),  # ROS's "yuv422" is UYVY
        ("yuv422_yuy2", packed_422(RGB, cv2.COLOR_RGB2YUV_YUY2), RGB, 4),
    ],
)
def test_raw_encodings_give_the_picture(encoding: str, pixels: np.ndarray, expected: np.ndarray, tolerance: int) -> None:
    image = rgb_image(image_message(encoding, np.ascontiguousarray(pixels)), IMAGE)
    assert image.dtype == np.uint8 and image.shape == (HEIGHT, WIDTH, 3)
    assert np.abs(image.astype(int) - expected).max() <= tolerance


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("bits", [8, 16])
def test_bayer_patterns_demosaic_to_the_colours_of_the_scene(pattern: str, bits: int) -> None:
    plane = mosaic(RGB, pattern)
    if bits == 16:
        plane = plane.astype(np.uint16) << 8
    image = rgb_image(image_message(f"bayer_{pattern}{bits}", plane, bigendian=bits == 16), IMAGE)
    inner = (slice(4, -4), slice(4, -4))  # away from the picture's border, which the interpolation cannot see past
    # A pixel on a block's edge mixes in its neighbour; each block's middle keeps its colour.
    middles = image[inner][1::4, 1::4].astype(int)
    assert np.abs(middles - RGB[inner][1::4, 1::4]).max() <= 2


def test_rows_padded_past_the_picture_are_read_by_their_step() -> None:
    image = rgb_image(image_message("bgr8", np.ascontiguousarray(RGB[..., ::-1]), step=WIDTH * 3 + 13), IMAGE)
    assert np.array_equal(image, RGB)


def test_the_picture_is_a_writable_array_of_its_own() -> None:
    message = image_message("rgb8", RGB)
    image = rgb_image(message, IMAGE)
    image[:] = 0  # a stage may draw on a frame; the message's buffer is left alone
    assert np.array_equal(rgb_image(message, IMAGE), RGB)


@pytest.mark.parametrize(
    ("format_", "extension"),
    [("png", ".png"), ("jpeg", ".jpg"), ("rgb8; jpeg compressed bgr8", ".jpg"), ("bgr8; png compressed bgr8", ".png")],
)
def test_compressed_images_decode(format_: str, extension: str) -> None:
    ok, data = cv2.imencode(extension, cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR))
    assert ok
    image = rgb_image(compressed_message(format_, data), COMPRESSED_IMAGE)
    assert image.shape == RGB.shape
    if extension == ".png":
        assert np.array_equal(image, RGB)
    else:  # JPEG blurs the colours of small blocks, a few levels; red and blue swapped would be off by ~50
        assert np.abs(image.astype(int) - RGB).mean() < 16


@pytest.mark.parametrize(
    ("message", "msgtype", "says"),
    [
        (image_message("32FC1", np.zeros((2, 2), np.float32)), IMAGE, "unknown image encoding '32FC1'"),
        (image_message("8UC3", RGB), IMAGE, "unknown image encoding '8UC3'"),
        (compressed_message("16UC1; compressedDepth png", np.zeros(8, np.uint8)), COMPRESSED_IMAGE, "unknown compressed image format"),
        (compressed_message("h264", np.zeros(8, np.uint8)), COMPRESSED_IMAGE, "unknown compressed image format 'h264'"),
    ],
)
def test_an_unknown_encoding_is_refused_by_name(message: object, msgtype: str, says: str) -> None:
    with pytest.raises(UnknownEncoding, match="^" + says.replace("(", r"\(")) as refused:
        rgb_image(message, msgtype)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("message", "msgtype"),
    [
        (TYPES[IMAGE](header=header(), height=HEIGHT, width=WIDTH, encoding="rgb8", is_bigendian=0, step=WIDTH * 3,
                      data=RGB.ravel()[:-10]), IMAGE),
        (TYPES[IMAGE](header=header(), height=HEIGHT, width=WIDTH, encoding="rgb8", is_bigendian=0, step=WIDTH,
                      data=RGB.ravel()), IMAGE),
        (compressed_message("jpeg", np.frombuffer(b"\xff\xd8not a jpeg at all", np.uint8)), COMPRESSED_IMAGE),
        (compressed_message("png", np.zeros(0, np.uint8)), COMPRESSED_IMAGE),
    ],
    ids=["data-short-of-its-size", "step-short-of-a-row", "corrupt-jpeg", "empty-png"],
)
def test_a_message_whose_pixels_cannot_be_read_is_damaged(message: object, msgtype: str) -> None:
    with pytest.raises(DamagedImage):
        rgb_image(message, msgtype)


def test_the_header_gives_stamp_and_frame_id() -> None:
    message = image_message("rgb8", RGB)
    assert header_of(message) == MessageHeader(stamp_ns=1_700_000_000_250_000_000, frame_id="cam_optical")
