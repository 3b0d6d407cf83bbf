"""Class ids at the frame's own resolution without staircase edges, from the network's labels alone.

Nearest neighbour (``resize.resize_labels``) scales each network pixel up into a block, so every
class boundary of a 960x540 or 1080p overlay is drawn as steps. The exact remedy, bilinear
interpolation of the class scores before the argmax, needs all scores on the host at full size
(11 planes of float32: several milliseconds per frame on a CPU, and the fast backends hand back
class ids only).

These methods need the class ids only, and touch only the pixels that can change:

- Where the four network pixels that bilinear interpolation would blend for a target pixel all
  hold one class, the bilinear argmax is that class (a convex combination of scores keeps their
  order), so nearest neighbour is already exact there. Only the pixels whose four source pixels
  disagree, a band along the boundaries, are computed again.
- ``vote``: each of the four source classes gets its bilinear weight, and the heaviest wins:
  bilinear interpolation of the one-hot labels, which draws a boundary as a straight or diagonal
  line instead of steps.
- ``guided``: the same vote, each weight multiplied by how close the target pixel's colour in the
  full-resolution frame is to that source pixel's colour in the network's input (joint bilateral
  upsampling over a 2x2 support), so boundaries also move towards the edges in the frame.

Grids follow OpenCV's ``INTER_LINEAR`` (pixel centres aligned, ``align_corners=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from streamseg.image.resize import resize_labels

METHODS = ("nearest", "vote", "guided")
GUIDE_SIGMA = 12.0  # colour distance (0-255 RGB, Euclidean) at which a source pixel's weight falls to exp(-1/2)


@dataclass(frozen=True)
class _Axis:
    """For each target coordinate: its two source coordinates and the weight of the second."""

    low: np.ndarray  # int32
    high: np.ndarray  # int32
    weight: np.ndarray  # float32, of ``high``


@lru_cache(maxsize=16)
def _axis(source: int, target: int) -> _Axis:
    position = (np.arange(target, dtype=np.float64) + 0.5) * source / target - 0.5
    low = np.floor(position)
    weight = position - low
    low = low.astype(np.int64)
    high = np.clip(low + 1, 0, source - 1)
    low = np.clip(low, 0, source - 1)
    weight = np.where(low == high, 0.0, weight)  # at the edges both are the same pixel
    return _Axis(low.astype(np.int32), high.astype(np.int32), weight.astype(np.float32))


def upsample_labels(
    labels: np.ndarray, size: tuple[int, int], method: str = "nearest", guide: np.ndarray | None = None,
    source_image: np.ndarray | None = None,
) -> np.ndarray:
    """Class ids (h, w), uint8 or uint16, at ``size`` (H, W) by ``method``.

    ``guided`` needs ``guide``, the frame (H, W, 3) uint8, and ``source_image``, what the network saw
    (h, w, 3) uint8, in the same colour order; the others ignore them.
    """
    if method not in METHODS:
        raise ValueError(f"unknown label upsampling {method!r}; expected one of {', '.join(METHODS)}")
    upsampled = resize_labels(labels, size)
    height, width = size
    if method == "nearest" or labels.shape == (height, width):
        return upsampled
    if method == "guided" and (guide is None or source_image is None):
        raise ValueError("guided label upsampling needs the frame and the network's input image")
    rows, columns = _axis(labels.shape[0], height), _axis(labels.shape[1], width)
    # Target pixels whose 2x2 source block is not one class: only there can the result differ. Found per source
    # block first (block (i, j) spans rows i, i+1 and columns j, j+1), then spread to the target pixels it covers.
    padded = np.pad(labels, ((0, 1), (0, 1)), mode="edge")
    top, bottom = padded[:-1], padded[1:]
    mixed_blocks = (top[:, :-1] != top[:, 1:]) | (bottom[:, :-1] != bottom[:, 1:]) | (top[:, :-1] != bottom[:, :-1])
    # flatnonzero and divmod: one index array to build, where a 2-D nonzero builds one per axis.
    ys, xs = np.divmod(np.flatnonzero(mixed_blocks[rows.low][:, columns.low]), width)
    if len(ys) == 0:
        return upsampled
    source_width = labels.shape[1]
    fy, fx = rows.weight[ys], columns.weight[xs]
    upper, lower = rows.low[ys] * source_width, rows.high[ys] * source_width  # flat offsets of the two source rows
    left, right = columns.low[xs], columns.high[xs]
    corners = np.stack([upper + left, upper + right, lower + left, lower + right])  # (4, n) flat source indices
    weights = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
    if method == "guided":
        colour = guide[ys, xs].astype(np.float32)  # (n, 3)
        source_colours = source_image.reshape(-1, 3)[corners].astype(np.float32)  # (4, n, 3)
        distance = ((source_colours - colour) ** 2).sum(axis=2)
        # A floor keeps the vote defined where no source pixel looks like the target one.
        weights *= np.exp(distance * (-0.5 / GUIDE_SIGMA**2)) + 1e-6
    classes = labels.ravel()[corners]  # (4, n)
    # Each corner's class's summed weight over the four corners, per pixel: the heaviest class wins, the lowest
    # id of a tie. Four by four comparisons rather than a table of every class, so any class count costs the same.
    same = classes[:, None, :] == classes[None, :, :]  # (4, 4, n): corner j holds corner i's class
    totals = np.where(same, weights[None, :, :].astype(np.float64), 0.0).sum(axis=1)  # (4, n)
    heaviest = np.where(totals == totals.max(axis=0), classes, np.iinfo(labels.dtype).max)
    upsampled[ys, xs] = heaviest.min(axis=0)
    return upsampled
