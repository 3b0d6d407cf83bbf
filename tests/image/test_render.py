"""Render annotators draw in place, leave unlabelled pixels alone and survive any frame size."""

from __future__ import annotations

import numpy as np
import pytest

from streamseg.classes import IGNORE_INDEX, NUM_CLASSES, PALETTE
from streamseg.frame import Frame
from streamseg.image.render import LegendAnnotator, MaskAnnotator, Renderer, TextAnnotator

SIZES = [(540, 960), (360, 480), (67, 99), (48, 64), (1, 1)]  # (height, width)
GREY = 200  # equal to no palette channel triple, so every blend changes the pixel


def grey_scene(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), GREY, dtype=np.uint8)


def striped_labels(height: int, width: int) -> np.ndarray:
    """Every class and the 'unlabelled' id, in vertical stripes."""
    ids = np.arange(width) % (NUM_CLASSES + 1)
    return np.broadcast_to(ids, (height, width)).astype(np.uint8)


@pytest.mark.parametrize("height, width", SIZES)
@pytest.mark.parametrize("alpha", [0.5, 0.3, 1.0])
def test_mask_blends_classes_and_leaves_unlabelled_pixels(height: int, width: int, alpha: float) -> None:
    scene = grey_scene(height, width)
    labels = striped_labels(height, width)

    result = MaskAnnotator(alpha=alpha).annotate(scene, labels)

    assert result is scene  # drawn in place
    labelled = labels < NUM_CLASSES
    expected = alpha * PALETTE[np.minimum(labels, NUM_CLASSES - 1)] + (1 - alpha) * GREY
    assert np.abs(scene[labelled].astype(float) - expected[labelled]).max() <= 1.0
    assert (scene[labelled] != GREY).any(axis=-1).all()
    np.testing.assert_array_equal(scene[~labelled], GREY)


@pytest.mark.parametrize("labels", [None, np.zeros((4, 6), np.uint8)], ids=["no-labels", "alpha-zero"])
def test_mask_draws_nothing_without_labels_or_alpha(labels: np.ndarray | None) -> None:
    scene = grey_scene(4, 6)
    MaskAnnotator(alpha=0.0).annotate(scene, labels)
    MaskAnnotator(alpha=0.5).annotate(scene, None)
    np.testing.assert_array_equal(scene, GREY)


def test_mask_resizes_labels_with_nearest_neighbour() -> None:
    # Left half Road, right half unlabelled, at half the scene's resolution.
    labels = np.full((27, 48), IGNORE_INDEX, dtype=np.uint8)
    labels[:, :24] = 3
    scene = grey_scene(54, 96)

    MaskAnnotator(alpha=1.0).annotate(scene, labels)

    np.testing.assert_array_equal(scene[:, :48], np.broadcast_to(PALETTE[3], (54, 48, 3)))
    np.testing.assert_array_equal(scene[:, 48:], GREY)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_mask_rejects_alpha_outside_unit_range(bad: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        MaskAnnotator(alpha=bad)


def corner(image: np.ndarray, which: str) -> np.ndarray:
    height, width = image.shape[:2]
    rows = slice(0, height // 3 + 1) if which.startswith("top") else slice(height - height // 3 - 1, height)
    cols = slice(0, width // 3 + 1) if which.endswith("left") else slice(width - width // 3 - 1, width)
    return image[rows, cols]


@pytest.mark.parametrize("height, width", SIZES)
@pytest.mark.parametrize("position", ["top_left", "top_right", "bottom_left", "bottom_right"])
def test_legend_draws_in_its_corner_only(height: int, width: int, position: str) -> None:
    scene = grey_scene(height, width)

    LegendAnnotator(position=position).annotate(scene)

    if height >= 360:  # the legend fits: drawn in its corner, the opposite corner untouched
        opposite = {"top_left": "bottom_right", "top_right": "bottom_left",
                    "bottom_left": "top_right", "bottom_right": "top_left"}[position]
        assert (corner(scene, position) != GREY).any()
        assert (corner(scene, opposite) == GREY).all()
    else:  # too small to be readable: left out rather than covering the picture
        np.testing.assert_array_equal(scene, GREY)


def test_legend_is_cached_per_size_and_redrawn_on_size_change() -> None:
    legend = LegendAnnotator()
    first, again = grey_scene(540, 960), grey_scene(540, 960)
    legend.annotate(first)
    legend.annotate(again)
    np.testing.assert_array_equal(first, again)

    small = grey_scene(360, 480)
    legend.annotate(small)
    changed = np.argwhere((small != GREY).any(axis=-1))
    big_changed = np.argwhere((first != GREY).any(axis=-1))
    # Rows scale with the frame height, so the smaller frame gets a smaller legend.
    assert np.ptp(changed[:, 0]) < np.ptp(big_changed[:, 0])


@pytest.mark.parametrize("height, width", SIZES)
def test_text_draws_a_box_with_lines(height: int, width: int) -> None:
    scene = grey_scene(height, width)

    TextAnnotator().annotate(scene, ["fps 24.3", "latency 41 ms", "model erfnet / torch bf16"])

    assert (corner(scene, "top_left") < GREY).any()  # darkened background
    if height >= 67:
        assert (scene > GREY).any()  # light text (anti-aliased, so not always pure white)
        assert (corner(scene, "bottom_right") == GREY).all()


@pytest.mark.parametrize("lines", [None, []])
def test_text_without_lines_draws_nothing(lines: list[str] | None) -> None:
    scene = grey_scene(32, 32)
    TextAnnotator().annotate(scene, lines)
    np.testing.assert_array_equal(scene, GREY)


@pytest.mark.parametrize("position", ["middle", "top"])
def test_annotators_reject_unknown_corners(position: str) -> None:
    with pytest.raises(ValueError, match="position"):
        LegendAnnotator(position=position)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="position"):
        TextAnnotator(position=position)  # type: ignore[arg-type]


def make_frame(height: int, width: int, labels: bool) -> Frame:
    return Frame(index=0, timestamp=0.0, image=grey_scene(height, width),
                 labels=striped_labels(height, width) if labels else None)


@pytest.mark.parametrize("height, width", SIZES)
def test_renderer_draws_on_a_copy(height: int, width: int) -> None:
    frame = make_frame(height, width, labels=True)

    Renderer().render(frame, ["fps 25.0"])

    assert frame.overlay is not None and frame.overlay.shape == frame.image.shape
    assert frame.overlay.dtype == np.uint8
    np.testing.assert_array_equal(frame.image, GREY)  # the source image is not drawn on
    assert (frame.overlay != frame.image).any()


@pytest.mark.parametrize(
    "labels, alpha, legend, stats, lines, same",
    [
        (False, 0.5, True, False, [], True),  # no labels: plain copy (no legend either)
        (False, 0.5, True, True, ["fps 1"], False),  # ... with the stats text
        (True, 0.0, False, False, ["fps 1"], True),  # alpha 0 and nothing else drawn
        (True, 0.5, False, False, [], False),  # the mask alone changes the frame
    ],
)
def test_renderer_options(labels: bool, alpha: float, legend: bool, stats: bool, lines: list[str], same: bool) -> None:
    frame = make_frame(540, 960, labels=labels)

    Renderer(alpha=alpha, legend=legend, stats=stats).render(frame, lines)

    assert frame.overlay is not frame.image
    assert np.array_equal(frame.overlay, frame.image) == same
