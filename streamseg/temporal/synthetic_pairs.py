"""FlyingChairs-style training pairs with exact flow, made from CamVid frames.

A pair is layers moved by affine motions: a background (a randomly zoomed, rotated and
cropped frame) and a few foreground patches (random polygons and ellipses cut from other
frames), each with its own motion on top of the background's. Both frames are rendered
straight from the source images, so the true flow is known exactly at every pixel: the
backward flow of the second frame (see :mod:`streamseg.temporal`) is, on each layer, the
inverse of that layer's motion, taken for the layer visible in the second frame. Pixels
hidden in the first frame therefore get the motion of the surface that covers them now,
which is the right answer for the backward convention, and ``occluded`` marks them.

A pair is a pure function of its seed. Training uses seeds from :data:`TRAIN_SEEDS` on
CamVid's train frames; the held-out set uses seeds from :data:`HELD_OUT_SEEDS` on its val
frames, so neither the motions nor the pictures are shared.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

from streamseg.data.camvid import list_split, read_rgb

TRAIN_SEEDS = range(0, 1_000_000_000)
HELD_OUT_SEEDS = range(1_000_000_000, 2_000_000_000)
_SUBPIXEL_BITS = 4  # polygons are rasterised with 1/16-pixel vertices, so moved shapes stay exact


@dataclass(frozen=True)
class FlowPair:
    """Two frames and the exact backward flow of the second one."""

    previous: np.ndarray  # RGB uint8 (H, W, 3), the first frame
    current: np.ndarray  # RGB uint8 (H, W, 3), the second frame
    flow: np.ndarray  # float32 (H, W, 2): current[y, x] shows previous at (x + u, y + v)
    occluded: np.ndarray  # bool (H, W): the current pixel's surface is hidden in, or outside, the previous frame


@dataclass(frozen=True)
class MotionRanges:
    """How far layers move between the two frames, and what the foreground looks like.

    Shifts are in pixels of the output size; zooms are relative; rotations in degrees.
    Shifts are drawn biased towards small values (``u * |u|`` with ``u`` uniform in
    [-1, 1]), as in video, where most of the picture moves slowly.
    """

    background_shift: float = 16.0
    background_rotation: float = 2.0
    background_zoom: float = 0.06
    object_shift: float = 32.0
    object_rotation: float = 12.0
    object_zoom: float = 0.10
    objects: tuple[int, int] = (2, 7)  # inclusive range of foreground layers
    object_radius: tuple[float, float] = (0.06, 0.30)  # of the output's smaller side


@dataclass(frozen=True)
class _Layer:
    source: int  # index of the source image
    to_source: np.ndarray  # 3x3: first-frame output pixel -> source pixel
    motion: np.ndarray  # 3x3: first-frame position -> second-frame position
    outline: np.ndarray | None  # (K, 2) polygon in first-frame pixels; None for the background


def _translation(x: float, y: float) -> np.ndarray:
    return np.array([[1.0, 0.0, x], [0.0, 1.0, y], [0.0, 0.0, 1.0]])


def _rotation_zoom(degrees: float, zoom_x: float, zoom_y: float) -> np.ndarray:
    angle = np.deg2rad(degrees)
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([zoom_x, zoom_y, 1.0])


def _biased(rng: np.random.Generator, limit: float) -> float:
    u = rng.uniform(-1.0, 1.0)
    return float(limit * u * abs(u))


def _motion(rng: np.random.Generator, centre: np.ndarray, shift: float, rotation: float, zoom: float) -> np.ndarray:
    """A rotation and zoom about ``centre`` followed by a shift."""
    scale = 1.0 + rng.uniform(-zoom, zoom)
    return (
        _translation(*(centre + [_biased(rng, shift), _biased(rng, shift)]))
        @ _rotation_zoom(rng.uniform(-rotation, rotation), scale, scale)
        @ _translation(*-centre)
    )


def _outline(rng: np.random.Generator, centre: np.ndarray, radius: float) -> np.ndarray:
    """A random star-shaped polygon or an ellipse around ``centre``."""
    if rng.random() < 0.5:
        count = int(rng.integers(5, 11))
        angles = np.sort(rng.uniform(0.0, 2 * np.pi, count))
        radii = radius * rng.uniform(0.45, 1.0, count)
    else:
        count = 48
        angles = np.linspace(0.0, 2 * np.pi, count, endpoint=False)
        radii = np.full(count, radius)
    points = np.stack([radii * np.cos(angles), radii * np.sin(angles) * rng.uniform(0.4, 1.0)], axis=1)
    turn = rng.uniform(0.0, 2 * np.pi)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return points @ rotation.T + centre


def _render(source: np.ndarray, to_source: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The output pixels in ``box`` (left, top, right, bottom), each sampled from the source at ``to_source(p)``."""
    left, top, right, bottom = box
    # WARP_INVERSE_MAP takes the output -> source map, here shifted so the box's corner is its origin.
    to_box_source = to_source @ _translation(left, top)
    return cv2.warpAffine(
        source, to_box_source[:2], (right - left, bottom - top), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT_101,
    )


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:2, :2].T + matrix[:2, 2]


class ImageBank:
    """Source frames read on demand, the most recent ones kept in memory."""

    def __init__(self, paths: Sequence[Path], cache_size: int = 128) -> None:
        if not paths:
            raise ValueError("an image bank needs at least one image")
        self.paths = list(paths)
        self.cache_size = cache_size
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        image = self._cache.get(index)
        if image is None:
            image = read_rgb(self.paths[index])
            self._cache[index] = image
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(index)
        return image


class FlowPairGenerator:
    """Makes :class:`FlowPair` s of ``size`` (H, W) from ``images``; ``pair(seed)`` is deterministic."""

    def __init__(self, images: Sequence[Path], size: tuple[int, int] = (360, 480), motion: MotionRanges = MotionRanges()) -> None:
        self.images = ImageBank(images)
        self.size = size
        self.motion = motion

    @classmethod
    def from_camvid(cls, root: Path | str, *, held_out: bool = False, size: tuple[int, int] = (360, 480)) -> "FlowPairGenerator":
        """Pairs from CamVid's train frames, or from its val frames for the held-out set."""
        samples = list_split(root, "val" if held_out else "train")
        return cls([sample.image_path for sample in samples], size=size)

    def pairs(self, seeds: Iterable[int]) -> Iterator[FlowPair]:
        for seed in seeds:
            yield self.pair(seed)

    def pair(self, seed: int) -> FlowPair:
        rng = np.random.default_rng(seed)
        layers = self._layers(rng)
        height, width = self.size
        frames = [np.empty((height, width, 3), np.uint8), np.empty((height, width, 3), np.uint8)]
        visible = [np.zeros((height, width), np.uint8), np.zeros((height, width), np.uint8)]
        for number, layer in enumerate(layers):
            source = self.images[layer.source]
            for frame, ids, to_source, outline in (
                (frames[0], visible[0], layer.to_source, layer.outline),
                (frames[1], visible[1], layer.to_source @ np.linalg.inv(layer.motion),
                 None if layer.outline is None else _apply(layer.motion, layer.outline)),
            ):
                if outline is None:
                    frame[:] = _render(source, to_source, (0, 0, width, height))
                    continue
                # Only the patch's bounding box is rendered: most of a foreground layer is empty.
                left, top = np.maximum(np.floor(outline.min(axis=0)).astype(int), 0)
                right, bottom = np.minimum(np.ceil(outline.max(axis=0)).astype(int) + 1, [width, height])
                if right <= left or bottom <= top:
                    continue
                mask = np.zeros((bottom - top, right - left), np.uint8)
                vertices = np.round((outline - [left, top]) * (1 << _SUBPIXEL_BITS)).astype(np.int32)
                cv2.fillPoly(mask, [vertices], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
                covered = mask.astype(bool)
                frame[top:bottom, left:right][covered] = _render(source, to_source, (left, top, right, bottom))[covered]
                ids[top:bottom, left:right][covered] = number
        flow = self._flow(layers, visible[1])
        return FlowPair(frames[0], frames[1], flow, self._occluded(flow, visible))

    def _layers(self, rng: np.random.Generator) -> list[_Layer]:
        height, width = self.size
        motion = self.motion
        output_centre = np.array([(width - 1) / 2, (height - 1) / 2])

        background_index = int(rng.integers(len(self.images)))
        source_height, source_width = self.images[background_index].shape[:2]
        # A zoom of 1 fits the output inside the source; more zooms in, leaving room to move the crop.
        fit = min(source_width / width, source_height / height)
        zoom = rng.uniform(1.05, 1.5)
        flip = -1.0 if rng.random() < 0.5 else 1.0
        slack = np.array([source_width - width * fit / zoom, source_height - height * fit / zoom]) / 2
        source_centre = np.array([(source_width - 1) / 2, (source_height - 1) / 2]) + rng.uniform(-slack, slack)
        to_source = (
            _translation(*source_centre)
            @ _rotation_zoom(rng.uniform(-5.0, 5.0), flip * fit / zoom, fit / zoom)
            @ _translation(*-output_centre)
        )
        focus = rng.uniform([0.0, 0.0], [width, height])  # zooming about a point off centre looks like driving towards it
        background_motion = _motion(rng, focus, motion.background_shift, motion.background_rotation, motion.background_zoom)
        layers = [_Layer(background_index, to_source, background_motion, None)]

        low, high = motion.objects
        for _ in range(int(rng.integers(low, high + 1))):
            index = int(rng.integers(len(self.images)))
            source_height, source_width = self.images[index].shape[:2]
            radius = min(height, width) * rng.uniform(*motion.object_radius)
            centre = rng.uniform([-0.1 * width, -0.1 * height], [1.1 * width, 1.1 * height])
            texture_centre = rng.uniform([0.0, 0.0], [source_width, source_height])
            texture_zoom = rng.uniform(0.7, 1.4)
            to_source = (
                _translation(*texture_centre)
                @ _rotation_zoom(rng.uniform(-180.0, 180.0), 1 / texture_zoom, 1 / texture_zoom)
                @ _translation(*-centre)
            )
            # Objects move on top of the camera's motion, as cars do in a driving scene.
            own = _motion(rng, centre, motion.object_shift, motion.object_rotation, motion.object_zoom)
            layers.append(_Layer(index, to_source, own @ background_motion, _outline(rng, centre, radius)))
        return layers

    def _flow(self, layers: list[_Layer], visible_now: np.ndarray) -> np.ndarray:
        """On each layer, the inverse of its motion minus the position: an affine field, exact at every pixel."""
        height, width = self.size
        # Row i of ``backwards`` maps a second-frame position on layer i to its first-frame position.
        backwards = np.stack([np.linalg.inv(layer.motion)[:2] - np.eye(3)[:2] for layer in layers])
        per_pixel = backwards[visible_now]  # (H, W, 2, 3)
        columns = np.arange(width, dtype=np.float64)[None, :, None]
        rows = np.arange(height, dtype=np.float64)[:, None, None]
        flow = per_pixel[..., 0] * columns + per_pixel[..., 1] * rows + per_pixel[..., 2]
        return flow.astype(np.float32)

    def _occluded(self, flow: np.ndarray, visible: list[np.ndarray]) -> np.ndarray:
        """Current pixels whose layer is not the one seen at their previous position (or that came from outside)."""
        height, width = self.size
        columns, rows = np.meshgrid(np.arange(width), np.arange(height))
        x = np.rint(columns + flow[..., 0]).astype(np.int64)
        y = np.rint(rows + flow[..., 1]).astype(np.int64)
        inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        before = visible[0][np.clip(y, 0, height - 1), np.clip(x, 0, width - 1)]
        return ~inside | (before != visible[1])


def write_pairs(generator: FlowPairGenerator, seeds: Iterable[int], folder: Path) -> list[Path]:
    """Saves each pair as ``pair_<seed>.npz`` (compressed) in ``folder``; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        pair = generator.pair(seed)
        path = folder / f"pair_{seed:010d}.npz"
        np.savez_compressed(path, previous=pair.previous, current=pair.current, flow=pair.flow, occluded=pair.occluded)
        paths.append(path)
    return paths


def read_pair(path: Path) -> FlowPair:
    """A pair saved by :func:`write_pairs`."""
    with np.load(path) as data:
        return FlowPair(data["previous"], data["current"], data["flow"], data["occluded"])
