"""ROS image messages as RGB pictures: ``sensor_msgs/msg/Image`` in the common raw encodings and
``sensor_msgs/msg/CompressedImage`` in jpeg and png, read from messages as rosbags deserializes them.

Only the message's fields are read (``encoding``, ``height``, ``width``, ``step``,
``is_bigendian``, ``data``; ``format`` and ``data``), so this module needs neither ROS nor rosbags.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamseg.errors import InputError
from streamseg.frame import MessageHeader

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)


@dataclass(frozen=True)
class _RawEncoding:
    """How one raw encoding lies in memory, and the OpenCV conversion that makes it RGB (None: it is RGB)."""

    channels: int
    dtype: type
    to_rgb: int | None


# ROS's names (sensor_msgs/image_encodings.hpp). ROS calls UYVY "yuv422". OpenCV names a Bayer
# pattern by its second row's first two pixels, so ROS's rggb is OpenCV's BG (as cv_bridge maps them).
_BAYER_TO_RGB = {
    "rggb": cv2.COLOR_BayerBG2RGB, "bggr": cv2.COLOR_BayerRG2RGB,
    "gbrg": cv2.COLOR_BayerGR2RGB, "grbg": cv2.COLOR_BayerGB2RGB,
}
RAW_ENCODINGS: dict[str, _RawEncoding] = {
    "rgb8": _RawEncoding(3, np.uint8, None),
    "bgr8": _RawEncoding(3, np.uint8, cv2.COLOR_BGR2RGB),
    "rgba8": _RawEncoding(4, np.uint8, cv2.COLOR_RGBA2RGB),
    "bgra8": _RawEncoding(4, np.uint8, cv2.COLOR_BGRA2RGB),
    "mono8": _RawEncoding(1, np.uint8, cv2.COLOR_GRAY2RGB),
    "mono16": _RawEncoding(1, np.uint16, cv2.COLOR_GRAY2RGB),
    "yuv422": _RawEncoding(2, np.uint8, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": _RawEncoding(2, np.uint8, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": _RawEncoding(2, np.uint8, cv2.COLOR_YUV2RGB_YUY2),
    "yuyv": _RawEncoding(2, np.uint8, cv2.COLOR_YUV2RGB_YUY2),
    **{f"bayer_{pattern}8": _RawEncoding(1, np.uint8, code) for pattern, code in _BAYER_TO_RGB.items()},
    **{f"bayer_{pattern}16": _RawEncoding(1, np.uint16, code) for pattern, code in _BAYER_TO_RGB.items()},
}
COMPRESSED_FORMATS = ("jpeg", "png")


class UnknownEncoding(InputError):
    """An image encoding (or compressed format) this reader cannot turn into RGB."""


class DamagedImage(ValueError):
    """A message whose pixels cannot be read: data shorter than its size says, or a picture the codec refuses."""


def header_of(message: object) -> MessageHeader:
    """The message's ``header`` as a :class:`MessageHeader`: stamp in nanoseconds since the epoch, and frame_id."""
    header = message.header
    return MessageHeader(stamp_ns=int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec), frame_id=str(header.frame_id))


def check_known(message: object, msgtype: str) -> None:
    """Raises :class:`UnknownEncoding` when ``message``'s encoding or format is not one :func:`rgb_image` reads."""
    if msgtype == COMPRESSED_IMAGE:
        _compressed_codec(str(message.format))
    elif msgtype == IMAGE:
        _raw_encoding(str(message.encoding))
    else:
        raise UnknownEncoding(f"{msgtype} is not an image message ({' or '.join(IMAGE_TYPES)})")


def rgb_image(message: object, msgtype: str) -> np.ndarray:
    """The picture of an image message as RGB uint8 (H, W, 3), in memory of its own.

    Raises :class:`UnknownEncoding` for an encoding it does not read, and :class:`DamagedImage`
    when the message's pixels cannot be read.
    """
    check_known(message, msgtype)
    if msgtype == COMPRESSED_IMAGE:
        return _decompressed(message)
    return _raw(message)


def _raw_encoding(name: str) -> _RawEncoding:
    encoding = RAW_ENCODINGS.get(name.lower())
    if encoding is None:
        raise UnknownEncoding(f"unknown image encoding {name!r}; this reader knows {', '.join(RAW_ENCODINGS)}")
    return encoding


def _compressed_codec(format_: str) -> str:
    """jpeg or png from a CompressedImage's ``format``: "jpeg", "png", or image_transport's "bgr8; jpeg compressed bgr8"."""
    described = format_.lower()
    if "compresseddepth" not in described:  # a depth map in a PNG of its own layout, not a picture
        for codec, names in (("jpeg", ("jpeg", "jpg")), ("png", ("png",))):
            if any(name in described for name in names):
                return codec
    raise UnknownEncoding(f"unknown compressed image format {format_!r}; this reader knows {' and '.join(COMPRESSED_FORMATS)}")


def _raw(message: object) -> np.ndarray:
    encoding = _raw_encoding(str(message.encoding))
    height, width, step = int(message.height), int(message.width), int(message.step)
    data = np.asarray(message.data, dtype=np.uint8).ravel()
    row_bytes = width * encoding.channels * np.dtype(encoding.dtype).itemsize
    if height <= 0 or width <= 0 or step < row_bytes or data.size < height * step:
        raise DamagedImage(
            f"a {width}x{height} {message.encoding} image needs {height} rows of {row_bytes} bytes, and its "
            f"step is {step} and its data {data.size} bytes"
        )
    rows = data[: height * step].reshape(height, step)[:, :row_bytes]
    if encoding.dtype is np.uint16:
        stored = np.dtype(">u2" if message.is_bigendian else "<u2")
        rows = np.ascontiguousarray(rows).view(stored).astype(np.uint16)
    pixels = rows.reshape(height, width, encoding.channels) if encoding.channels > 1 else rows.reshape(height, width)
    if encoding.to_rgb is None:
        return pixels.copy()  # the message's buffer is read-only, and later stages may draw on a frame
    rgb = cv2.cvtColor(pixels, encoding.to_rgb)
    if rgb.dtype == np.uint16:  # a 16-bit sensor: the high byte is the picture a network sees
        rgb = (rgb >> 8).astype(np.uint8)
    return rgb


def _decompressed(message: object) -> np.ndarray:
    data = np.asarray(message.data, dtype=np.uint8).ravel()
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DamagedImage(f"its {message.format} data ({data.size} bytes) cannot be decoded")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
