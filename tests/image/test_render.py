"""Render annotators draw in place, leave unlabelled pixels alone and survive any frame size."""

from __future__ import annotations

import numpy as np
import pytest

from streamseg.classes import IGNORE_INDEX, NUM_CLASSES, PALETTE
from streamseg.frame import Frame
from streamseg.image.render import LegendAnnotator, MaskAnnotator, Renderer, TextAnnotator
from streamseg.image.resize import resize_labels
from streamseg.label_sets import CAMVID, CITYSCAPES, custom_label_set

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


def test_mask_scales_a_smaller_label_map_s_colours_smoothly() -> None:
    # Left half Road, right half unlabelled, at half the scene's resolution.
    labels = np.full((27, 48), IGNORE_INDEX, dtype=np.uint8)
    labels[:, :24] = 3
    scene = grey_scene(54, 96)

    MaskAnnotator(alpha=1.0).annotate(scene, labels)

    # Away from the boundary: the class's colour, and the scene itself where the id has none.
    np.testing.assert_array_equal(scene[:, :46], np.broadcast_to(PALETTE[3], (54, 46, 3)))
    np.testing.assert_array_equal(scene[:, 50:], GREY)
    # Along it, a blend of the two over more than one pixel rather than a step.
    between = scene[0, 44:52].astype(int)
    blended = [column for column in range(8) if not (between[column] == PALETTE[3]).all() and not (between[column] == GREY).all()]
    assert len(blended) >= 2, between
    for column in blended:
        low, high = np.minimum(PALETTE[3], GREY), np.maximum(PALETTE[3], GREY)
        assert ((low <= between[column]) & (between[column] <= high)).all()


def two_class_diagonal(grid: tuple[int, int]) -> np.ndarray:
    """Class 1 right of a diagonal, class 0 left of it: every row of the grid crosses the boundary once."""
    rows, columns = np.mgrid[0 : grid[0], 0 : grid[1]]
    return (columns > rows + 4).astype(np.uint8)


def red_share_per_row(overlay: np.ndarray) -> np.ndarray:
    """How many pixels' worth of class 0 (pure red at alpha 1) each row holds: where its boundary lies, to a fraction of a pixel."""
    return overlay[..., 0].astype(float).sum(axis=1) / 255.0


def test_the_network_s_grid_leaves_no_steps_in_the_overlay() -> None:
    # The network's labels at 1/8 of the frame's size, as a stride-8 grid would give them.
    size, grid = (240, 320), (30, 40)
    model_labels = two_class_diagonal(grid)
    frame_labels = resize_labels(model_labels, size)
    palette = np.array([(255, 0, 0), (0, 0, 255)], dtype=np.uint8)
    frame = Frame(index=0, timestamp=0.0, image=grey_scene(*size))
    frame.set_labels(frame_labels, model_labels)
    red, blue = np.array([255, 0, 0]), np.array([0, 0, 255])

    Renderer(alpha=1.0, legend=False, stats=False, label_set=custom_label_set(["left", "right"], palette)).render(frame)

    overlay = frame.overlay.astype(int)
    # Each row crosses from red to blue through blends of the two, over more than one pixel.
    for row in overlay[8:-8]:
        blends = [pixel for pixel in row if not (pixel == red).all() and not (pixel == blue).all()]
        assert len(blends) >= 2
        assert all(pixel[1] == 0 and pixel[0] + pixel[2] in (254, 255, 256) for pixel in blends)
    # The boundary moves on by about a pixel a row, not by the grid's eight pixels every eighth row.
    assert np.abs(np.diff(red_share_per_row(frame.overlay)[8:-8])).max() < 3
    # Drawn the old way, from the labels at the frame's size, it is all steps of whole grid cells.
    nearest = MaskAnnotator(alpha=1.0, palette=palette).annotate(grey_scene(*size), frame_labels)
    assert set(np.unique(np.abs(np.diff(red_share_per_row(nearest))))) == {0.0, 8.0}
    # The label map itself keeps exact ids.
    assert frame.labels is frame_labels and set(np.unique(frame.labels)) == {0, 1}


def test_labels_that_replaced_the_network_s_are_drawn_at_the_frame_s_size() -> None:
    # A later stage (the CRF) puts its own labels, at the frame's size, in place of the network's.
    size = (64, 96)
    model_labels = two_class_diagonal((8, 12))
    frame = Frame(index=0, timestamp=0.0, image=grey_scene(*size))
    frame.set_labels(resize_labels(model_labels, size), model_labels)
    assert frame.model_labels is model_labels
    refined = np.zeros(size, dtype=np.uint8)
    refined[:, 40:] = 1
    frame.labels = refined
    assert frame.model_labels is None

    Renderer(alpha=1.0, legend=False, stats=False, label_set=CITYSCAPES).render(frame)

    np.testing.assert_array_equal(frame.overlay[:, :40], np.broadcast_to(CITYSCAPES.palette[0], (64, 40, 3)))
    np.testing.assert_array_equal(frame.overlay[:, 40:], np.broadcast_to(CITYSCAPES.palette[1], (64, 56, 3)))


@pytest.mark.parametrize("grid", [(540, 960), (270, 480)], ids=["frame-size", "half-size"])
def test_cityscapes_classes_get_their_own_colours(grid: tuple[int, int]) -> None:
    labels = (np.arange(grid[1]) // (grid[1] // 20)).astype(np.uint8)  # stripes of ids 0..19, 19 has no colour
    labels = np.broadcast_to(np.minimum(labels, 19), grid).copy()
    scene = grey_scene(540, 960)

    MaskAnnotator(alpha=1.0, palette=CITYSCAPES.palette).annotate(scene, labels)

    stripe = 960 // 20
    for class_id in range(20):
        middle = scene[270, class_id * stripe + stripe // 2]  # away from the stripes' edges
        expected = CITYSCAPES.palette[class_id] if class_id < 19 else np.full(3, GREY)
        np.testing.assert_array_equal(middle, expected, err_msg=f"class {class_id}")


@pytest.mark.parametrize("cell", [6, 3], ids=["frame-size", "half-size"])
def test_a_label_set_of_300_classes_colours_uint16_ids(cell: int) -> None:
    label_set = custom_label_set([f"class {index}" for index in range(300)])
    assert label_set.dtype == np.uint16
    # Every id of the set and two past it (no colour), each a square of cell x cell pixels, 21 to a row.
    ids = np.minimum(np.arange(15 * 21), 301).astype(np.uint16).reshape(15, 21)
    labels = np.kron(ids, np.ones((cell, cell), dtype=np.uint16))
    frame = Frame(index=0, timestamp=0.0, image=grey_scene(90, 126))
    frame.set_labels(resize_labels(labels, (90, 126)), labels)

    Renderer(alpha=0.5, legend=False, stats=False, label_set=label_set).render(frame)

    # Each square's middle pixels (whose neighbours at the grid hold the same id) have their id's colour.
    for row, column in np.ndindex(ids.shape):
        class_id = int(ids[row, column])
        middle = frame.overlay[6 * row + 2 : 6 * row + 4, 6 * column + 2 : 6 * column + 4].astype(float)
        expected = GREY if class_id >= 300 else 0.5 * label_set.palette[class_id] + 0.5 * GREY
        assert np.abs(middle - expected).max() <= 1.0, class_id
    assert frame.labels.dtype == np.uint16


def test_mask_refuses_labels_of_other_types() -> None:
    with pytest.raises(ValueError, match="uint8 or uint16"):
        MaskAnnotator().annotate(grey_scene(4, 4), np.zeros((4, 4), dtype=np.int32))


def test_ids_without_a_colour_keep_the_scene_when_the_colours_are_scaled() -> None:
    # The network's grid at a third of the frame's size; the right half holds an id past the palette.
    grid = np.zeros((20, 30), dtype=np.uint8)
    grid[:, 15:] = 200
    grid[:, :5] = 1
    scene = np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    original = scene.copy()

    MaskAnnotator(alpha=0.5, palette=CAMVID.palette).annotate(scene, grid)

    np.testing.assert_array_equal(scene[:, 48:], original[:, 48:])  # no colour, no blend: the scene itself
    expected = 0.5 * original[:, 16:40].astype(float) + 0.5 * CAMVID.palette[0]
    assert np.abs(scene[:, 16:40] - expected).max() <= 1.0
    # Between them the class's colour fades out over a few pixels, each a blend of the two.
    share = (scene[:, 42:48].astype(float) - original[:, 42:48]) / (CAMVID.palette[0] - original[:, 42:48] + 1e-9)
    assert (share.mean(axis=(0, 2)) < 0.5).all() and (share.mean(axis=(0, 2))[:2] > 0.05).all()


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


def colours_present(image: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(int(c) for c in colour) for colour in np.unique(image.reshape(-1, 3), axis=0)}


def test_legend_lists_the_label_set_s_classes() -> None:
    scene = grey_scene(540, 960)
    legend = LegendAnnotator.of(CITYSCAPES)

    legend.annotate(scene)

    assert legend.class_names == CITYSCAPES.names and legend.shown == 19
    present = colours_present(scene[(scene != GREY).any(axis=-1)])
    assert all(tuple(int(c) for c in colour) in present for colour in CITYSCAPES.palette)  # every swatch
    # The names are what is written: other names beside the same colours draw another legend.
    renamed = grey_scene(540, 960)
    LegendAnnotator([name.upper() for name in CITYSCAPES.names], CITYSCAPES.palette).annotate(renamed)
    assert (renamed != scene).any()
    assert Renderer(label_set=CITYSCAPES).legend.class_names == CITYSCAPES.names


@pytest.mark.parametrize("height, width", [(540, 960), (1080, 1920), (360, 480)])
def test_a_legend_of_150_classes_is_cut_rather_than_covering_the_frame(height: int, width: int) -> None:
    label_set = custom_label_set([f"class number {index}" for index in range(150)])
    scene = grey_scene(height, width)
    legend = LegendAnnotator.of(label_set)

    legend.annotate(scene)

    assert 19 < legend.shown < 150  # more than one column's worth, with "+N more" for the rest
    drawn = np.argwhere((scene != GREY).any(axis=-1))
    assert np.ptp(drawn[:, 1]) + 1 <= width / 3 + 2  # a third of the width at most
    assert drawn[:, 0].min() > 0 and drawn[:, 0].max() < height - 1  # inside the frame, with its margin
    present = colours_present(scene[(scene != GREY).any(axis=-1)])
    shown = {tuple(int(c) for c in colour) for colour in label_set.palette[: legend.shown]}
    left_out = {tuple(int(c) for c in colour) for colour in label_set.palette[legend.shown :]} - shown
    assert shown <= present and not (left_out & present)


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
