"""Drawing on frames: the class-colour overlay, the pixels the network is unsure of, a legend and a few lines of stats.

The annotators follow the ``supervision`` library's shape: ``__init__`` takes style
settings only, ``annotate(scene, data)`` takes the per-frame data and draws in place on
an RGB uint8 image (and returns it, for chaining); missing data (``None``) draws nothing.
``Renderer`` composes them into the pipeline's render step.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import cv2
import numpy as np

from streamseg.frame import Frame
from streamseg.image.confidence import CONFIDENCE_SCALE, DEFAULT_THRESHOLD
from streamseg.image.confidence_resize import confidence_at_size
from streamseg.label_sets import CAMVID, MAX_CLASSES, LabelSet

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

    Ids without a palette entry (CamVid's 'unlabelled' id 11, anything >= the palette's
    size) leave the scene as it is. A label map smaller than the scene, such as the
    network's own grid, is coloured at its own size and the colours are scaled to the scene
    bilinearly, so class boundaries are drawn as smooth blends instead of the grid's steps;
    the ids themselves are never mixed. Label maps are uint8, or uint16 for more than 255 classes.
    """

    def __init__(self, alpha: float = 0.5, palette: np.ndarray = CAMVID.palette) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        palette = np.asarray(palette, dtype=np.uint8)
        if palette.ndim != 2 or palette.shape[1] != 3 or not 0 < len(palette) <= MAX_CLASSES:
            raise ValueError(f"palette must be (N, 3) with 0 < N <= {MAX_CLASSES}, got shape {palette.shape}")
        self.alpha = float(alpha)
        self.num_colours = len(palette)
        self._palette = palette
        # A full 256-row table lets any uint8 id index it; rows past the palette are
        # replaced by the scene itself before blending.
        self._lut = np.zeros((256, 3), dtype=np.uint8)
        self._lut[: min(len(palette), 256)] = palette[:256]
        self._lut_image = self._lut.reshape(256, 1, 3)  # the shape applyColorMap takes a user map in
        self._wide_lut: np.ndarray | None = None  # for uint16 ids, made on first use

    def annotate(self, scene: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        """Blends class colours for ``labels`` ((h, w) uint8 or uint16 class ids, any size) into ``scene`` in place."""
        if labels is None or self.alpha == 0.0:
            return scene
        if labels.ndim != 2 or labels.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"labels must be a (H, W) uint8 or uint16 array, got {labels.dtype} {labels.shape}")
        colours = self._colours(labels)
        no_colour = self._no_colour(labels)
        size = scene.shape[:2]
        if no_colour is not None and labels.shape != size:
            self._blend_partly_coloured(scene, colours, no_colour)
            return scene
        if labels.shape != size:
            colours = _scale_colours(colours, size)
        if no_colour is not None:
            # Blending a pixel with itself leaves it unchanged: one addWeighted for all.
            cv2.copyTo(scene, no_colour.view(np.uint8), colours)
        cv2.addWeighted(colours, self.alpha, scene, 1.0 - self.alpha, 0.0, dst=scene)
        return scene

    def _colours(self, labels: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8: each id's colour, black where it has none."""
        if labels.dtype == np.uint8:
            # OpenCV's colour-map lookup: faster than np.take and lut[labels] (benchmarks/history/BENCHMARKS-log.md, Micro-measurements).
            return cv2.applyColorMap(labels, self._lut_image)
        if self._wide_lut is None:
            # Every uint16 value indexes the table; ids past the palette get black, as above. Its rows are
            # padded to four bytes and read as one uint32 each: one take of words costs half a take of rows.
            wide = np.zeros((65536, 4), dtype=np.uint8)
            wide[: self.num_colours, :3] = self._palette
            self._wide_lut = wide.view(np.uint32).ravel()
        padded = np.take(self._wide_lut, labels).view(np.uint8).reshape(*labels.shape, 4)
        return cv2.cvtColor(padded, cv2.COLOR_RGBA2RGB)

    def _no_colour(self, labels: np.ndarray) -> np.ndarray | None:
        """Where ``labels`` holds an id without a colour, or None where every id has one (the usual case)."""
        if self.num_colours > np.iinfo(labels.dtype).max:
            return None
        if labels.size == 0 or int(labels.max()) < self.num_colours:
            return None
        return labels >= self.num_colours

    def _blend_partly_coloured(self, scene: np.ndarray, colours: np.ndarray, no_colour: np.ndarray) -> None:
        """The blend where some ids of a smaller label map have no colour: how much of each pixel is coloured
        is scaled with the colours, so the scene shows through fully where no id has a colour and in part along
        the edges of those regions. ``colours`` are black where no id has one (weighted by coverage, as
        premultiplied alpha is), so scene * (1 - alpha * coverage) + alpha * colours is the blend everywhere."""
        coverage = np.where(no_colour, np.uint8(0), np.uint8(255))
        scaled = _scale_colours(np.dstack([colours, coverage]), scene.shape[:2])  # one pass for both
        colours = cv2.cvtColor(scaled, cv2.COLOR_RGBA2RGB)
        coverage = cv2.cvtColor(cv2.extractChannel(scaled, 3), cv2.COLOR_GRAY2RGB)
        cv2.subtract(scene, cv2.multiply(scene, coverage, scale=self.alpha / 255.0), dst=scene)
        cv2.addWeighted(colours, self.alpha, scene, 1.0, 0.0, dst=scene)


def _scale_colours(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` at ``size`` (H, W): bilinear when enlarging, area averaging when shrinking."""
    height, width = size
    shrinking = height < image.shape[0] and width < image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


class UncertaintyAnnotator:
    """Greys the pixels whose confidence is under a threshold: their colour taken out and darkened, with a
    faint diagonal hatch, so they read as "no label to trust" against the class colours around them and
    apart from a scene's own grey (a road, a wall) and from the pixels of a class without a colour.

    The confidence map (uint8, ``round(255 p)``, at the network's grid) is scaled to the scene
    bilinearly before the threshold is applied, so the greyed regions have smooth outlines rather
    than the grid's steps. A pixel is under the threshold where ``Reliability.of`` counts it low.
    Draw it after the class colours: it greys them too.
    """

    SWATCH = (96, 96, 96)  # the legend's colour for the greyed pixels: about what a mid-grey scene becomes

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, brightness: float = 0.6, hatch_every: int = 8) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if not 0.0 <= brightness <= 1.0:
            raise ValueError(f"brightness must be in [0, 1], got {brightness}")
        self.threshold = float(threshold)
        self.brightness = float(brightness)
        self.hatch_every = max(2, int(hatch_every))
        self._cut = int(np.ceil(threshold * CONFIDENCE_SCALE))  # as Reliability.of: a value under it is low
        self._hatch: np.ndarray | None = None  # 255 on the hatch's lines, made once per scene size

    def annotate(self, scene: np.ndarray, confidence: np.ndarray | None) -> np.ndarray:
        """Greys the pixels of ``scene`` (in place) where ``confidence`` ((h, w) uint8, any size) is under the threshold."""
        if confidence is None or not confidence.size:
            return scene
        if int(confidence.min()) >= self._cut:  # on the grid, before any full-size work: a sure frame costs this only
            return scene
        uncertain = cv2.compare(confidence_at_size(confidence, scene.shape[:2]), self._cut, cv2.CMP_LT)
        grey = cv2.cvtColor(scene, cv2.COLOR_RGB2GRAY)
        cv2.convertScaleAbs(grey, dst=grey, alpha=self.brightness)
        cv2.max(grey, self._hatch_at(grey.shape), dst=grey)
        cv2.copyTo(cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB), uncertain, scene)
        return scene

    def _hatch_at(self, size: tuple[int, int]) -> np.ndarray:
        """Light diagonal lines, one pixel wide and ``hatch_every`` apart, on black: the lines brighten the grey."""
        if self._hatch is None or self._hatch.shape != size:
            rows, columns = np.indices(size)
            lines = (rows + columns) % self.hatch_every == 0
            self._hatch = np.where(lines, np.uint8(round(255 * self.brightness * 0.75)), np.uint8(0))
        return self._hatch

    def legend_note(self) -> tuple[str, tuple[int, int, int]]:
        """The legend's row for the greyed pixels: its text and swatch."""
        return f"grey: uncertain (< {self.threshold:g})", self.SWATCH


class LegendAnnotator:
    """A box in a corner with a colour swatch and the name of each class.

    The legend looks the same on every frame, so its image is drawn once per scene size
    and then only pasted. Sizes follow the frame height (about 3% per row). Names that do
    not fit one column of the frame's height go on in more columns, up to about a third of
    the frame's width; what is still left is counted in a last row, "+N more", so a label
    set of a hundred classes or more never covers the picture. On frames too small to hold
    it, or at least ``min_cut_rows`` rows of it (below roughly 100x100), it is left out: a
    clipped legend would only hide the picture and the stats text under unreadable names.
    ``notes`` are rows after the classes, each a text and its swatch's colour (the overlay's greyed
    pixels: ``UncertaintyAnnotator.legend_note``); a cut legend keeps them and lists fewer classes.
    """

    max_width_fraction = 1 / 3  # of the frame's width, for a legend of several columns
    min_cut_rows = 8  # a cut legend shorter than this says too little to be worth the room it takes

    def __init__(
        self,
        class_names: Sequence[str] = CAMVID.names,
        palette: np.ndarray = CAMVID.palette,
        position: Corner = "top_right",
        text_color: tuple[int, int, int] = (255, 255, 255),
        background_color: tuple[int, int, int] = (24, 24, 24),
        notes: Sequence[tuple[str, tuple[int, int, int]]] = (),
    ) -> None:
        _check_corner(position)
        palette = np.asarray(palette, dtype=np.uint8)
        if len(palette) < len(class_names):
            raise ValueError(f"palette has {len(palette)} colours for {len(class_names)} classes")
        self.class_names = tuple(class_names)
        self.palette = palette
        self.notes = tuple((text, tuple(colour)) for text, colour in notes)
        self.position: Corner = position
        self.text_color = text_color
        self.background_color = background_color
        self._cached_size: tuple[int, int] | None = None
        self._cached_patch: np.ndarray | None = None  # None: the legend does not fit that size
        self._cached_origin = (0, 0)
        self.shown = 0  # how many names the last drawn legend lists

    @classmethod
    def of(cls, label_set: LabelSet, **style: Any) -> "LegendAnnotator":
        """The legend of ``label_set``'s names and colours."""
        return cls(label_set.names, label_set.palette, **style)

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
        margin = max(2, row // 2)
        count = len(self.class_names)
        notes = len(self.notes)
        rows_fit = (scene_h - 2 * margin - 2 * pad) // row
        if rows_fit < count + notes and rows_fit < self.min_cut_rows:
            self.shown = 0
            return None, (0, 0)

        def column_width(names: Sequence[str]) -> int:
            return swatch + pad + max(cv2.getTextSize(name, _FONT, scale, thickness)[0][0] for name in names) + pad

        # As many columns of rows_fit rows as the width allows; the last slot before the notes says how many are left out.
        rows = min(count + notes, rows_fit)
        columns, shown = 1, count
        if count + notes > rows_fit:
            widest = column_width(self.class_names + tuple(text for text, _ in self.notes))
            room = max(int(scene_w * self.max_width_fraction) - pad, widest)
            columns = max(1, min(-(-(count + notes) // rows_fit), room // widest))
            slots = columns * rows_fit - notes
            shown = count if slots >= count else slots - 1
        cells: list[tuple[str, tuple[int, ...] | None]] = [
            (name, tuple(int(c) for c in self.palette[i])) for i, name in enumerate(self.class_names[:shown])
        ]
        if shown < count:
            cells.append((f"+{count - shown} more", None))
        cells.extend(self.notes)
        rows = min(rows, -(-len(cells) // columns))
        column_names = [[name for name, _ in cells[c * rows : (c + 1) * rows]] for c in range(columns)]
        widths = [column_width(names) for names in column_names if names]
        box_w = pad + sum(widths)
        box_h = pad + row * rows + pad
        if box_w + 2 * margin > scene_w:
            self.shown = 0
            return None, (0, 0)
        patch = np.empty((box_h, box_w, 3), dtype=np.uint8)
        patch[:] = self.background_color
        (_, text_h), _ = cv2.getTextSize("Ag", _FONT, scale, thickness)
        for index, (name, colour) in enumerate(cells):
            column, line = divmod(index, rows)
            left = pad + sum(widths[:column])
            top = pad + line * row
            text_left = left
            if colour is not None:
                swatch_top = top + (row - swatch) // 2
                cv2.rectangle(patch, (left, swatch_top), (left + swatch - 1, swatch_top + swatch - 1), colour, cv2.FILLED)
                text_left = left + swatch + pad
            baseline_y = top + (row + text_h) // 2
            cv2.putText(patch, name, (text_left, baseline_y), _FONT, scale, self.text_color, thickness, _LINE)
        self.shown = shown
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
    """The render step: overlay, legend and stats text drawn on a copy of the frame's image.

    ``label_set`` gives the colours and the legend's names: the run's model's (``backend.label_set``).
    ``show_uncertain`` greys the pixels whose confidence is under ``confidence_threshold``
    (``UncertaintyAnnotator``) on frames that have a confidence map, and the legend then says so.
    """

    def __init__(
        self, alpha: float = 0.5, legend: bool = True, stats: bool = True, label_set: LabelSet = CAMVID,
        show_uncertain: bool = False, confidence_threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.label_set = label_set
        self.mask = MaskAnnotator(alpha=alpha, palette=label_set.palette)
        self.uncertain = UncertaintyAnnotator(confidence_threshold) if show_uncertain else None
        self.legend = LegendAnnotator.of(label_set) if legend else None
        # A frame without confidence (a model of class ids) greys nothing: its legend has no row for it.
        self.uncertain_legend = (
            LegendAnnotator.of(label_set, notes=[self.uncertain.legend_note()]) if legend and self.uncertain else None
        )
        self.text = TextAnnotator() if stats else None

    def render(self, frame: Frame, stats_lines: Sequence[str] = ()) -> None:
        """Sets ``frame.overlay``; ``frame.image`` is left untouched.

        The colours come from the network's own labels where the frame still has them
        (``frame.model_labels``), scaled smoothly to the frame, else from ``frame.labels``.
        Without labels (e.g. a frame that skipped inference) the overlay is a plain copy
        of the image with the stats text: a legend would explain colours that are absent.
        """
        scene = frame.image.copy()
        if frame.labels is not None:
            model_labels = frame.model_labels
            self.mask.annotate(scene, model_labels if model_labels is not None else frame.labels)
            legend = self.legend
            if self.uncertain is not None and frame.confidence is not None:
                self.uncertain.annotate(scene, frame.confidence)
                legend = self.uncertain_legend
            if legend is not None:
                legend.annotate(scene)
        if self.text is not None:
            self.text.annotate(scene, stats_lines)
        frame.overlay = scene
