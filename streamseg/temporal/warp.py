"""Moving data of the previous frame onto the current one, and telling where that is trustworthy.

All functions take flow in the package's convention (see :mod:`streamseg.temporal`): the
backward flow of the current frame, ``(H, W, 2)`` float32, ``(x + u, y + v)`` being where
the current pixel's content was in the previous frame.
"""

from __future__ import annotations

import cv2
import numpy as np

# Sundaram et al. (2010): a flow pair is consistent where |b + f|^2 <= 0.01 (|b|^2 + |f|^2) + threshold^2;
# the relative term forgives the larger absolute errors of fast motion.
_RELATIVE_TOLERANCE = 0.01


def sampling_maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The absolute positions ``(x + u, y + v)`` in the previous frame, as the two maps cv2.remap takes."""
    height, width = flow.shape[:2]
    columns = np.arange(width, dtype=np.float32)[None, :]
    rows = np.arange(height, dtype=np.float32)[:, None]
    return flow[..., 0] + columns, flow[..., 1] + rows


def warp(previous: np.ndarray, flow: np.ndarray, *, nearest: bool = False) -> np.ndarray:
    """Samples ``previous`` (H, W) or (H, W, C) at ``(x + u, y + v)``: the previous data seen from the current frame.

    Bilinear by default; ``nearest`` for label maps, whose ids must not be averaged.
    Positions outside the previous frame take the value of its nearest edge pixel.
    Zero flow returns an exact copy.
    """
    if previous.shape[:2] != flow.shape[:2]:
        raise ValueError(f"data of size {previous.shape[:2]} cannot be warped by flow of size {flow.shape[:2]}")
    map_x, map_y = sampling_maps(flow)
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.remap(previous, map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)


def warp_planes(previous: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """:func:`warp` for channel-first data such as logits or probabilities (C, H, W)."""
    if previous.shape[1:] != flow.shape[:2]:
        raise ValueError(f"planes of size {previous.shape[1:]} cannot be warped by flow of size {flow.shape[:2]}")
    map_x, map_y = sampling_maps(flow)
    # Plane by plane: cheaper than transposing to (H, W, C) and back, and the maps are shared.
    previous = np.ascontiguousarray(previous)
    moved = np.empty(previous.shape, previous.dtype)
    for plane, out in zip(previous, moved):
        cv2.remap(plane, map_x, map_y, cv2.INTER_LINEAR, dst=out, borderMode=cv2.BORDER_REPLICATE)
    return moved


def inside_previous(flow: np.ndarray) -> np.ndarray:
    """True where ``(x + u, y + v)`` lies inside the previous frame, so that warping finds real data there."""
    height, width = flow.shape[:2]
    map_x, map_y = sampling_maps(flow)
    return (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)


def forward_backward_consistent(backward: np.ndarray, forward: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """True where the backward flow of the current frame and the forward flow of the previous one agree.

    ``backward`` is ``estimate(previous, current)``, ``forward`` is ``estimate(current, previous)``
    (the previous frame's pixels, pointing into the current frame). Following a pixel back and
    then forward should return it to where it started; where it does not, the pixel was most
    likely hidden in the previous frame (occluded, or outside it) or the flow is wrong.
    ``threshold`` is the allowed round-trip error in pixels for slow motion.
    """
    forward_there = warp(forward, backward)
    # Plane by plane: numpy sums over a last axis of length 2 slowly, with a stride.
    back_x, back_y = backward[..., 0], backward[..., 1]
    there_x, there_y = forward_there[..., 0], forward_there[..., 1]
    error = np.square(back_x + there_x) + np.square(back_y + there_y)
    tolerance = np.square(back_x) + np.square(back_y) + np.square(there_x) + np.square(there_y)
    tolerance *= _RELATIVE_TOLERANCE
    tolerance += threshold**2
    return (error <= tolerance) & inside_previous(backward)


def compose(newer: np.ndarray, older: np.ndarray) -> np.ndarray:
    """Chains two backward flows: ``newer`` (frame t -> t-1) after ``older`` (frame t-1 -> t-k) gives t -> t-k."""
    return newer + warp(older, newer)
