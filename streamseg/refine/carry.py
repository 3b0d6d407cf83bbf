"""Carrying an earlier frame's CRF result onto the current frame, as-is or along optical flow.

An asynchronous CRF finishes a frame while the stream has moved on. Its refinement is
still worth showing where the scene has not changed: the result is trusted only at
pixels where the earlier frame's raw (network argmax) label, brought to the current
frame, equals the current raw label; everywhere else the current raw label stays.

Labels are uint8 for up to 255 classes and uint16 beyond (``label_sets.label_dtype``); either way
the dtype's highest value is never a class id, so it marks pixels warped in from outside the frame.
"""

from __future__ import annotations

import cv2
import numpy as np

_FAR_AWAY = -1e6  # coordinate given to points that left the frame, so they stay outside once composed


def carry_static(refined_then: np.ndarray, raw_then: np.ndarray, raw_now: np.ndarray) -> np.ndarray:
    """Refined labels where the raw labels did not change since, the current raw labels elsewhere, in ``raw_now``'s dtype."""
    return np.where(raw_then == raw_now, refined_then, raw_now).astype(raw_now.dtype, copy=False)


def identity_coordinates(size: tuple[int, int]) -> np.ndarray:
    """(h, w, 2) float32 map whose value at (y, x) is (x, y): every pixel is where it was."""
    height, width = size
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.stack([xs, ys], axis=2)


def follow_flow(coordinates: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Moves a coordinate map one frame on.

    ``coordinates`` (h, w, 2) gives, for each pixel of the previous frame, its position
    (x, y) in some earlier frame; ``flow`` (h, w, 2) is the backward flow of
    ``streamseg.temporal``: the current pixel x came from x + flow(x) in the previous frame.
    The result gives the same for each pixel of the current frame; points from outside stay outside.
    """
    if flow.shape != coordinates.shape:
        raise ValueError(f"flow {flow.shape} must match the coordinate map {coordinates.shape} (h, w, 2)")
    sample = identity_coordinates(coordinates.shape[:2]) + flow.astype(np.float32, copy=False)
    return cv2.remap(
        coordinates,
        np.ascontiguousarray(sample[..., 0]),
        np.ascontiguousarray(sample[..., 1]),
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(_FAR_AWAY, _FAR_AWAY, 0, 0),
    )


def carry_along_flow(
    refined_then: np.ndarray, raw_then: np.ndarray, raw_now: np.ndarray, coordinates: np.ndarray
) -> np.ndarray:
    """Like ``carry_static``, after warping the earlier frame's labels to the current one.

    ``refined_then``, ``raw_then`` and ``raw_now`` are (H, W) at image resolution;
    ``coordinates`` (h, w, 2), at the flow's (model) resolution, gives for each current
    pixel its position in the earlier frame (see ``follow_flow``).
    """
    height, width = raw_now.shape
    flow_height, flow_width = coordinates.shape[:2]
    # Model-resolution positions to image-resolution ones, pixel centres aligned.
    map_x = (coordinates[..., 0] + 0.5) * (width / flow_width) - 0.5
    map_y = (coordinates[..., 1] + 0.5) * (height / flow_height) - 0.5
    if (flow_height, flow_width) != (height, width):
        map_x = cv2.resize(map_x, (width, height), interpolation=cv2.INTER_LINEAR)
        map_y = cv2.resize(map_y, (width, height), interpolation=cv2.INTER_LINEAR)
    outside = int(np.iinfo(raw_then.dtype).max)  # a pixel from outside the earlier frame matches no raw label
    warp = dict(interpolation=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=outside)
    refined_here = cv2.remap(refined_then, map_x, map_y, **warp)
    raw_here = cv2.remap(raw_then, map_x, map_y, **warp)
    return carry_static(refined_here, raw_here, raw_now)
