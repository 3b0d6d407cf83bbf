"""Drawing on frames: the class-colour overlay, a legend and a few lines of stats.

The annotators follow the ``supervision`` library's shape: ``__init__`` takes style
settings only, ``annotate(scene, data)`` takes the per-frame data and draws in place on
an RGB uint8 image (and returns it, for chaining); missing data (``None``) draws nothing.
``Renderer`` composes them into the pipeline's render step.
"""

from __future__ import annotations

from typing import Literal, Sequence

import cv2
import numpy as np

from streamseg.classes import CLASS_NAMES, PALETTE
from streamseg.frame import Frame
from streamseg.image.resize import resize_labels

Corner = Literal["top_left", "top_right", "bottom_left", "bottom_right"]
CORNERS: tuple[Corner, ...] = ("top_left", "top_right", "bottom_left", "bottom_right")

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LINE = cv2.LINE_AA


def _check_corner(position: str) -> None:
    if position not in CORNERS:
        raise ValueError(f"position must be one of {', '.join(CORNERS)}, got {position!r}")


def _row_height(scene_height: int) -> int:
    """Height in pixels of one text row: about 3% of the frame, readable from 360p to 1080p.

    Frames too small to hold readable text still get a (tiny) row, so nothing fails.
    """
    return int(np.clip(round(scene_height * 0.03), 8, 32))


def _font_scale(row_height: int, thickness: int) -> float:
    # Text takes ~60% of the row, the rest is breathing room between rows.
    return cv2.getFontScaleFromHeight(_FONT, max(1, round(row_height * 0.6)), thickness)


def _corner_origin(corner: Corner, box_w: int, box_h: int, scene_w: int, scene_h: int, margin: int) -> tuple[int, int]:
    """Top-left (x, y) of a box placed in ``corner``, ``margin`` pixels from the borders.

    A box that does not fit is moved against the top-left border, so on tiny frames its
    beginning (the first rows, the start of the text) is what shows.
    """
    x = margin if corner.endswith("left") else scene_w - box_w - margin
    y = margin if corner.startswith("top") else scene_h - box_h - margin
    return min(max(x, 0), max(scene_w - box_w, 0)), min(max(y, 0), max(scene_h - box_h, 0))


def _paste(scene: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """Copies ``patch`` onto ``scene`` at (x, y), clipped to the scene's borders."""
    scene_h, scene_w = scene.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + patch.shape[1], scene_w), min(y + patch.shape[0], scene_h)
    if x1 <= x0 or y1 <= y0:
        return
    scene[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]


class MaskAnnotator:
    """Blends a colour per class over the scene.

    Ids without a palette entry (the CamVid 'unlabelled' id 11, or anything >= the
    palette size) are left as they are. Label maps of another size than the scene are
    resized with nearest neighbour, so class ids are never mixed.
    """

    def __init__(self, alpha: float = 0.5, palette: np.ndarray = PALETTE) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        palette = np.asarray(palette, dtype=np.uint8)
        if palette.ndim != 2 or palette.shape[1] != 3 or not 0 < len(palette) <= 255:
            raise ValueError(f"palette must be (N, 3) with 0 < N <= 255, got shape {palette.shape}")
        self.alpha = float(alpha)
        self.num_colours = len(palette)
        # A full 256-row table lets any uint8 id index it; rows past the palette are
        # replaced by the scene itself before blending.
        self._lut = np.zeros((256, 3), dtype=np.uint8)
        self._lut[: len(palette)] = palette
        self._lut_image = self._lut.reshape(256, 1, 3)  # the shape applyColorMap takes a user map in

    def annotate(self, scene: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        """Blends class colours for ``labels`` ((H, W) uint8 class ids) into ``scene`` in place."""
        if labels is None or self.alpha == 0.0:
            return scene
        if labels.ndim != 2 or labels.dtype != np.uint8:
            raise ValueError(f"labels must be a (H, W) uint8 array, got {labels.dtype} {labels.shape}")
        labels = resize_labels(labels, scene.shape[:2])
        # OpenCV's colour-map lookup: faster than np.take and lut[labels] (benchmarks/history/BENCHMARKS-log.md, Micro-measurements).
        colours = cv2.applyColorMap(labels, self._lut_image)
        no_colour = labels >= self.num_colours
        if no_colour.any():
            # Blending a pixel with itself leaves it unchanged: one addWeighted for all.
            cv2.copyTo(scene, no_colour.view(np.uint8), colours)
        cv2.addWeighted(colours, self.alpha, scene, 1.0 - self.alpha, 0.0, dst=scene)
        return scene


class LegendAnnotator:
    """A box in a corner with a colour swatch and the name of each class.

    The legend looks the same on every frame, so its image is drawn once per scene size
    and then only pasted. Sizes follow the frame height (about 3% per row). On frames too
    small to hold it (below roughly 100x100) it is left out: a clipped legend would only
    hide the picture and the stats text under unreadable names.
    """

    def __init__(
        self,
        class_names: Sequence[str] = CLASS_NAMES,
        palette: np.ndarray = PALETTE,
        position: Corner = "top_right",
        text_color: tuple[int, int, int] = (255, 255, 255),
        background_color: tuple[int, int, int] = (24, 24, 24),
    ) -> None:
        _check_corner(position)
        palette = np.asarray(palette, dtype=np.uint8)
        if len(palette) < len(class_names):
            raise ValueError(f"palette has {len(palette)} colours for {len(class_names)} classes")
        self.class_names = tuple(class_names)
        self.palette = palette
        self.position: Corner = position
        self.text_color = text_color
        self.background_color = background_color
        self._cached_size: tuple[int, int] | None = None
        self._cached_patch: np.ndarray | None = None  # None: the legend does not fit that size
        self._cached_origin = (0, 0)

    def annotate(self, scene: np.ndarray) -> np.ndarray:
        """Pastes the legend onto ``scene`` in place."""
        if not self.class_names:
            return scene
        size = (scene.shape[0], scene.shape[1])
        if size != self._cached_size:
            self._cached_patch, self._cached_origin = self._draw(*size)
            self._cached_size = size
        if self._cached_patch is not None:
            _paste(scene, self._cached_patch, *self._cached_origin)
        return scene

    def _draw(self, scene_h: int, scene_w: int) -> tuple[np.ndarray | None, tuple[int, int]]:
        row = _row_height(scene_h)
        thickness = 1
        scale = _font_scale(row, thickness)
        pad = max(2, row // 3)
        swatch = max(4, round(row * 0.7))
        text_w = max(cv2.getTextSize(name, _FONT, scale, thickness)[0][0] for name in self.class_names)
        box_w = pad + swatch + pad + text_w + pad
        box_h = pad + row * len(self.class_names) + pad
        margin = max(2, row // 2)
        if box_w + 2 * margin > scene_w or box_h + 2 * margin > scene_h:
            return None, (0, 0)
        patch = np.empty((box_h, box_w, 3), dtype=np.uint8)
        patch[:] = self.background_color
        (_, text_h), _ = cv2.getTextSize("Ag", _FONT, scale, thickness)
        for i, name in enumerate(self.class_names):
            top = pad + i * row
            swatch_top = top + (row - swatch) // 2
            colour = tuple(int(c) for c in self.palette[i])
            cv2.rectangle(patch, (pad, swatch_top), (pad + swatch - 1, swatch_top + swatch - 1), colour, cv2.FILLED)
            baseline_y = top + (row + text_h) // 2
            cv2.putText(patch, name, (pad + swatch + pad, baseline_y), _FONT, scale, self.text_color, thickness, _LINE)
        origin = _corner_origin(self.position, box_w, box_h, scene_w, scene_h, margin)
        return patch, origin


class TextAnnotator:
    """A few lines of text (fps, latency, model) on a darkened box in a corner."""

    def __init__(
        self,
        position: Corner = "top_left",
        text_color: tuple[int, int, int] = (255, 255, 255),
        background_color: tuple[int, int, int] = (0, 0, 0),
        background_opacity: float = 0.6,
    ) -> None:
        _check_corner(position)
        if not 0.0 <= background_opacity <= 1.0:
            raise ValueError(f"background_opacity must be in [0, 1], got {background_opacity}")
        self.position: Corner = position
        self.text_color = text_color
        self.background_color = background_color
        self.background_opacity = float(background_opacity)

    def annotate(self, scene: np.ndarray, lines: Sequence[str] | None) -> np.ndarray:
        """Draws ``lines`` top to bottom onto ``scene`` in place."""
        if not lines:
            return scene
        scene_h, scene_w = scene.shape[:2]
        row = _row_height(scene_h)
        thickness = 1
        scale = _font_scale(row, thickness)
        pad = max(2, row // 3)
        (_, text_h), _ = cv2.getTextSize("Ag", _FONT, scale, thickness)
        text_w = max(cv2.getTextSize(line, _FONT, scale, thickness)[0][0] for line in lines)
        box_w, box_h = pad + text_w + pad, pad + row * len(lines) + pad
        x, y = _corner_origin(self.position, box_w, box_h, scene_w, scene_h, max(2, row // 2))
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + box_w, scene_w), min(y + box_h, scene_h)
        if x1 <= x0 or y1 <= y0:
            return scene
        # Darken rather than cover: the picture stays visible behind the numbers.
        box = scene[y0:y1, x0:x1]
        background = np.empty_like(box)
        background[:] = self.background_color
        opacity = self.background_opacity
        cv2.addWeighted(background, opacity, box, 1.0 - opacity, 0.0, dst=box)
        for i, line in enumerate(lines):
            baseline_y = y + pad + i * row + (row + text_h) // 2
            cv2.putText(scene, line, (x + pad, baseline_y), _FONT, scale, self.text_color, thickness, _LINE)
        return scene


class Renderer:
    """The render step: overlay, legend and stats text drawn on a copy of the frame's image."""

    def __init__(self, alpha: float = 0.5, legend: bool = True, stats: bool = True) -> None:
        self.mask = MaskAnnotator(alpha=alpha)
        self.legend = LegendAnnotator() if legend else None
        self.text = TextAnnotator() if stats else None

    def render(self, frame: Frame, stats_lines: Sequence[str] = ()) -> None:
        """Sets ``frame.overlay``; ``frame.image`` is left untouched.

        Without labels (e.g. a frame that skipped inference) the overlay is a plain copy
        of the image with the stats text: a legend would explain colours that are absent.
        """
        scene = frame.image.copy()
        if frame.labels is not None:
            self.mask.annotate(scene, frame.labels)
            if self.legend is not None:
                self.legend.annotate(scene)
        if self.text is not None:
            self.text.annotate(scene, stats_lines)
        frame.overlay = scene
