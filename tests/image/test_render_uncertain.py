"""--show-uncertain: the overlay greys the pixels under the confidence threshold, at the frame's size, and the legend says so."""

from __future__ import annotations

import numpy as np
import pytest

from streamseg.frame import Frame
from streamseg.image.confidence_resize import confidence_at_size
from streamseg.image.render import LegendAnnotator, Renderer, UncertaintyAnnotator
from streamseg.label_sets import CAMVID, custom_label_set

GREY = 200


def colourful_scene(height: int, width: int) -> np.ndarray:
    """A saturated scene, so a greyed pixel (R = G = B) tells itself from an untouched one."""
    scene = np.empty((height, width, 3), np.uint8)
    scene[:] = (200, 60, 30)
    return scene


def is_grey(pixels: np.ndarray) -> np.ndarray:
    return (pixels[..., 0] == pixels[..., 1]) & (pixels[..., 1] == pixels[..., 2])


def split_confidence() -> np.ndarray:
    """A (9, 12) grid: the left third at p = 0.55, the rest at p = 0.95."""
    confidence = np.full((9, 12), round(255 * 0.95), np.uint8)
    confidence[:, :4] = round(255 * 0.55)
    return confidence


def test_pixels_under_the_threshold_are_greyed_at_the_frame_s_size_and_the_rest_left_alone() -> None:
    scene = colourful_scene(90, 120)
    original = scene.copy()
    confidence = split_confidence()

    UncertaintyAnnotator(threshold=0.8).annotate(scene, confidence)

    # The outline follows the bilinearly scaled map, not the grid's cells.
    under = confidence_at_size(confidence, (90, 120)) < np.ceil(0.8 * 255)
    assert under.any() and not under.all()
    assert np.all(is_grey(scene[under]))
    np.testing.assert_array_equal(scene[~under], original[~under])
    # Darkened: greyed pixels are darker than the scene's own luminance, but for the lighter hatch lines.
    luminance = round(0.299 * 200 + 0.587 * 60 + 0.114 * 30)
    levels = np.unique(scene[under][:, 0])
    assert levels.min() < luminance
    assert len(levels) == 2  # the grey and the hatch's lines


def test_the_outline_is_smooth_where_the_grid_s_cells_meet() -> None:
    # One sure cell beside an unsure one, four times enlarged: the greyed edge is not on the cells' border (column 4)
    # but where the bilinear ramp crosses the threshold.
    confidence = np.array([[140, 255]], np.uint8)
    scene = colourful_scene(4, 8)
    UncertaintyAnnotator(threshold=0.7).annotate(scene, confidence)
    greyed_columns = np.flatnonzero(is_grey(scene[0]))
    assert list(greyed_columns) == list(range(greyed_columns.max() + 1))
    assert greyed_columns.max() + 1 not in (0, 4, 8)


def test_a_sure_frame_and_a_frame_without_confidence_are_left_alone() -> None:
    annotator = UncertaintyAnnotator(threshold=0.8)
    for confidence in (np.full((9, 12), 255, np.uint8), None):
        scene = colourful_scene(90, 120)
        annotator.annotate(scene, confidence)
        np.testing.assert_array_equal(scene, colourful_scene(90, 120))


@pytest.mark.parametrize("threshold", [0.0, 1.0, 1.5])
def test_a_threshold_outside_zero_and_one_is_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        UncertaintyAnnotator(threshold)


def labelled_frame(confidence: np.ndarray | None) -> Frame:
    frame = Frame(index=0, timestamp=0.0, image=colourful_scene(540, 960))
    grid = np.tile(np.arange(CAMVID.num_classes, dtype=np.uint8), (9, 2))[:, :12]
    frame.set_labels(confidence_at_size(grid, (540, 960)), grid)  # any labels: only the confidence is looked at
    frame.confidence = confidence
    return frame


def legend_box(overlay: np.ndarray) -> np.ndarray:
    return overlay[:300, 960 * 2 // 3 :]


def test_the_renderer_greys_uncertain_pixels_and_its_legend_gains_a_row() -> None:
    confidence = split_confidence()
    plain, shown = labelled_frame(confidence), labelled_frame(confidence)

    Renderer(stats=False).render(plain)
    renderer = Renderer(stats=False, show_uncertain=True, confidence_threshold=0.8)
    renderer.render(shown)

    under = confidence_at_size(confidence, (540, 960)) < np.ceil(0.8 * 255)
    under[:300, 960 * 2 // 3 :] = False  # the legend covers a corner
    assert np.all(is_grey(shown.overlay[under]))
    assert not np.any(is_grey(plain.overlay[under]))
    assert renderer.uncertain_legend.notes == (("grey: uncertain (< 0.8)", UncertaintyAnnotator.SWATCH),)
    # The legend is one row longer, with the grey swatch in it.
    legend_rows = lambda overlay: np.flatnonzero((legend_box(overlay) == LegendAnnotator().background_color).all(axis=-1).any(axis=1))
    assert np.ptp(legend_rows(shown.overlay)) > np.ptp(legend_rows(plain.overlay))
    assert (legend_box(shown.overlay) == UncertaintyAnnotator.SWATCH).all(axis=-1).any()


def test_without_the_option_or_without_confidence_the_overlay_is_the_plain_one() -> None:
    confidence = split_confidence()
    plain = labelled_frame(confidence)
    Renderer(stats=False).render(plain)
    for renderer, frame in (
        (Renderer(stats=False), labelled_frame(confidence)),  # not asked for
        (Renderer(stats=False, show_uncertain=True, confidence_threshold=0.8), labelled_frame(None)),  # a model of class ids
    ):
        renderer.render(frame)
        np.testing.assert_array_equal(frame.overlay, plain.overlay)


def test_a_cut_legend_keeps_its_note() -> None:
    label_set = custom_label_set([f"class number {index}" for index in range(150)])
    scene = np.full((540, 960, 3), GREY, np.uint8)
    legend = LegendAnnotator.of(label_set, notes=[UncertaintyAnnotator(0.5).legend_note()])

    legend.annotate(scene)

    assert 19 < legend.shown < 150
    assert (scene == UncertaintyAnnotator.SWATCH).all(axis=-1).any()
