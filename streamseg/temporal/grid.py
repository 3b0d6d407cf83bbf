"""Moving data between the model's grid and the smaller grid flow work runs on.

Flow, warping and blending cost in proportion to pixels; on a half grid they cost a
quarter. These helpers shrink what goes in and scale up what comes out (flow vectors
included), and pass data through untouched when the grids are the same.
"""

from __future__ import annotations

import cv2
import numpy as np


def flow_grid(size: tuple[int, int], resolution: float) -> tuple[int, int]:
    """(h, w) of the grid on which flow work for data of ``size`` runs at ``resolution``."""
    return max(8, round(size[0] * resolution)), max(8, round(size[1] * resolution))


def resize_planes(planes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) float planes to (C, *size), bilinear; ``planes`` itself when the size is right.

    Bilinear halving samples between four pixels, so at the default half grid it averages
    them as INTER_AREA would, for less work.
    """
    if planes.shape[1:] == tuple(size):
        return planes
    resized = np.empty((planes.shape[0], *size), dtype=np.float32)
    for plane, out in zip(planes, resized):
        cv2.resize(plane, (size[1], size[0]), dst=out, interpolation=cv2.INTER_LINEAR)
    return resized


def upscale_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Flow of a smaller grid as flow of ``size``: resized, and its vectors scaled with it."""
    if flow.shape[:2] == tuple(size):
        return flow
    scale = (size[1] / flow.shape[1], size[0] / flow.shape[0], 0.0, 0.0)
    # cv2.multiply scales each channel by its own factor; numpy's broadcast over a last axis of 2 is slow.
    return cv2.multiply(cv2.resize(flow, (size[1], size[0]), interpolation=cv2.INTER_LINEAR), scale)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if mask.shape == tuple(size):
        return mask
    return cv2.resize(mask.view(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST).astype(bool)
