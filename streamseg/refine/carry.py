"""Carrying an earlier frame's CRF result onto the current frame, as-is or along optical flow.

An asynchronous CRF finishes a frame while the stream has moved on. Its refinement is
still worth showing where the scene has not changed: the result is trusted only at
pixels where the earlier frame's raw (network argmax) label, brought to the current
frame, equals the current raw label; everywhere else the current raw label stays.

Labels are uint8 for up to 255 classes and uint16 beyond (``label_sets.label_dtype``); either way
the dtype's highest value is never a class id, so it marks pixels warped in from outside the frame.

The labels' confidence goes with them (``carry_confidence``): the earlier result's where its labels
were kept, the current frame's own (the network's) where the current raw labels are shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamseg.image.confidence_resize import confidence_at_size

_FAR_AWAY = -1e6  # coordinate given to points that left the frame, so they stay outside once composed


@dataclass(frozen=True)
class Carried:
    """An earlier result carried onto the current frame: its labels, and where they are the earlier refined ones."""

    labels: np.ndarray  # (H, W), in the current raw labels' dtype
    kept: np.ndarray  # bool (H, W): True where the earlier refined label was kept, False where the raw one is shown


def carry(
    refined_then: np.ndarray, raw_then: np.ndarray, raw_now: np.ndarray, coordinates: np.ndarray | None = None
) -> Carried:
    """``carry_along_flow`` with ``coordinates``, else ``carry_static``, and the pixels where the refined labels were kept."""
    if coordinates is not None:
        map_x, map_y = _sampling_maps(coordinates, raw_then.shape, raw_now.shape)
        outside = int(np.iinfo(raw_then.dtype).max)  # a pixel from outside the earlier frame matches no raw label
        warp = dict(interpolation=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=outside)
        refined_then = cv2.remap(refined_then, map_x, map_y, **warp)
        raw_then = cv2.remap(raw_then, map_x, map_y, **warp)
    kept = raw_then == raw_now
    return Carried(np.where(kept, refined_then, raw_now).astype(raw_now.dtype, copy=False), kept)


def carry_static(refined_then: np.ndarray, raw_then: np.ndarray, raw_now: np.ndarray) -> np.ndarray:
    """Refined labels where the raw labels did not change since, the current raw labels elsewhere, in ``raw_now``'s dtype."""
    return carry(refined_then, raw_then, raw_now).labels


def carry_confidence(
    confidence_then: np.ndarray, confidence_now: np.ndarray, kept: np.ndarray, coordinates: np.ndarray | None = None
) -> np.ndarray:
    """The confidence of carried labels, uint8 at ``confidence_now``'s grid.

    ``confidence_then`` (any grid) is the earlier result's, brought along ``coordinates`` when given (as in
    ``carry``); it holds where ``kept`` ((H, W) from ``Carried``, nearest-sampled to the grid) is True, and the
    current frame's ``confidence_now`` elsewhere.
    """
    size = confidence_now.shape
    if coordinates is not None:
        map_x, map_y = _sampling_maps(coordinates, confidence_then.shape, size)
        then_here = cv2.remap(confidence_then, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    else:
        then_here = confidence_at_size(confidence_then, size)
    if kept.shape != size:
        kept = cv2.resize(kept.view(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST).view(bool)
    return np.where(kept, then_here, confidence_now)


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
    return carry(refined_then, raw_then, raw_now, coordinates).labels


def _sampling_maps(
    coordinates: np.ndarray, source_size: tuple[int, ...], target_size: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap's maps, at ``target_size``, into an earlier map of ``source_size``, from flow-grid ``coordinates``."""
    source_height, source_width = source_size[:2]
    height, width = target_size[:2]
    flow_height, flow_width = coordinates.shape[:2]
    # Flow-grid positions to the source grid's, pixel centres aligned.
    map_x = (coordinates[..., 0] + 0.5) * (source_width / flow_width) - 0.5
    map_y = (coordinates[..., 1] + 0.5) * (source_height / flow_height) - 0.5
    if (flow_height, flow_width) != (height, width):
        map_x = cv2.resize(map_x, (width, height), interpolation=cv2.INTER_LINEAR)
        map_y = cv2.resize(map_y, (width, height), interpolation=cv2.INTER_LINEAR)
    return map_x, map_y
