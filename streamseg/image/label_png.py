"""Label maps as PNG files of class ids: palette-indexed where a palette of 256 colours holds the classes, so
an image viewer shows the label set's colours while the pixels stay the ids; 16-bit greyscale beyond.

OpenCV writes no palette PNG and expands one into colours when it reads it. A palette PNG of 8-bit
indices holds its pixel data exactly as an 8-bit greyscale PNG does, so OpenCV's (fast, libpng)
greyscale encoding is made a palette one by changing the colour type and adding the palette; and
reading swaps the palette for a grey ramp, so the colours OpenCV decodes are the indices themselves,
whatever the palette was (two classes of one colour included).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PALETTE_COLOUR_TYPE = 3
MAX_PALETTE = 256  # colours a PLTE chunk may hold for 8-bit indices


def encode_label_png(labels: np.ndarray, palette: np.ndarray | None = None, compression: int = 1) -> bytes:
    """A PNG of ``labels`` (H, W) uint8 or uint16 class ids.

    With ``palette`` ((C, 3) RGB, C <= 256), a palette-indexed PNG whose index is the id; without
    one, or with more colours, a greyscale PNG (8- or 16-bit, as ``labels``). Ids must be below
    256 for a palette PNG. ``compression`` is zlib's level (1 spends far less CPU than OpenCV's
    default 3, and label maps compress well anyway).
    """
    if labels.ndim != 2 or labels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"labels must be a (H, W) uint8 or uint16 array, got {labels.dtype} {labels.shape}")
    indexed = palette is not None and len(palette) <= MAX_PALETTE
    if indexed and labels.dtype != np.uint8:
        if labels.size and labels.max() >= MAX_PALETTE:
            raise ValueError(f"class id {labels.max()} does not fit a palette of {MAX_PALETTE} colours")
        labels = labels.astype(np.uint8)  # a set of 256 classes has uint16 ids that all fit a byte
    ok, encoded = cv2.imencode(".png", labels, [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
    if not ok:
        raise ValueError("PNG encoding of the labels failed")
    if not indexed:
        return encoded.tobytes()
    return _as_palette_png(encoded.tobytes(), np.asarray(palette, dtype=np.uint8))


def decode_label_png(data: bytes) -> np.ndarray:
    """The class ids of a PNG: a palette PNG's indices (uint8), a greyscale PNG's values (uint8 or uint16).

    Raises:
        ValueError: not a PNG OpenCV can decode, or one with colour channels (not ids).
    """
    chunks = _chunks(data)
    if chunks and chunks[0][0] == b"IHDR" and len(chunks[0][1]) == 13 and chunks[0][1][9] == PALETTE_COLOUR_TYPE:
        # A ramp as long as the bit depth allows: an index past the file's own palette reads as itself too.
        ramp = np.repeat(np.arange(1 << chunks[0][1][8], dtype=np.uint8), 3).tobytes()
        chunks = [(kind, ramp if kind == b"PLTE" else body) for kind, body in chunks if kind != b"tRNS"]
        colours = cv2.imdecode(np.frombuffer(_png(chunks), np.uint8), cv2.IMREAD_COLOR)
        if colours is None:
            raise ValueError("not a PNG that can be decoded")
        return np.ascontiguousarray(colours[:, :, 0])  # each index i was drawn as grey (i, i, i)
    ids = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if ids is None:
        raise ValueError("not a PNG that can be decoded")
    if ids.ndim != 2:
        raise ValueError(f"a PNG of {ids.shape[2]} channels holds colours, not class ids")
    return ids


def read_label_png(path: str | Path) -> np.ndarray:
    """The class ids of the PNG at ``path`` (see :func:`decode_label_png`)."""
    return decode_label_png(Path(path).read_bytes())


def _as_palette_png(greyscale: bytes, palette: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG made palette-indexed: colour type 3 and a PLTE chunk before the pixels.

    Only the chunks a label map needs are kept (header, pixels, end), so nothing OpenCV adds for a
    greyscale image can contradict the palette.
    """
    chunks = [(kind, body) for kind, body in _chunks(greyscale) if kind in (b"IHDR", b"IDAT", b"IEND")]
    header = bytearray(chunks[0][1])
    header[9] = PALETTE_COLOUR_TYPE
    return _png([(b"IHDR", bytes(header)), (b"PLTE", palette.tobytes()), *chunks[1:]])


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """A PNG's chunks as (type, body), in order; empty for data that is not a PNG."""
    if not data.startswith(PNG_SIGNATURE):
        return []
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length  # length, type, body, CRC
    return chunks


def _png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    parts = [PNG_SIGNATURE]
    for kind, body in chunks:
        parts += [struct.pack(">I", len(body)), kind, body, struct.pack(">I", zlib.crc32(kind + body))]
    return b"".join(parts)
