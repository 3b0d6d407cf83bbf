"""DemoSource draws a moving street with exact, CamVid-labelled ground truth."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from streamseg.classes import CLASS_NAMES
from streamseg.errors import ConfigError, InputError
from streamseg.sources import DemoSource, demo

ID = {name: index for index, name in enumerate(CLASS_NAMES)}
SKY_MIDDLE = tuple((top + horizon) / 2 for top, horizon in zip(demo.SKY_TOP, demo.SKY_HORIZON))  # it is a gradient


@pytest.fixture(scope="module")
def source() -> DemoSource:
    return DemoSource(frames=60)


def test_frames_are_rgb_with_a_label_map_of_the_street(source: DemoSource) -> None:
    frame = source.render(0)
    assert frame.image.shape == (540, 960, 3) and frame.image.dtype == np.uint8
    assert frame.truth is not None and frame.truth.shape == (540, 960) and frame.truth.dtype == np.uint8
    present = set(np.unique(frame.truth).tolist())
    for name in ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "Car"):
        assert ID[name] in present, f"{name} missing from the scene"
    assert present <= set(range(len(CLASS_NAMES))), "only real CamVid classes, never 'unlabelled'"


def test_yields_the_frames_asked_for_with_steady_timestamps(source: DemoSource) -> None:
    frames = list(source)
    assert len(frames) == 60 and source.frame_count == 60 and source.live is False
    assert [frame.index for frame in frames] == list(range(60))
    assert [frame.timestamp for frame in frames] == pytest.approx([index / 25 for index in range(60)])


def test_endless_when_no_frame_count_is_given() -> None:
    endless = DemoSource(width=160, height=90)
    frames = list(itertools.islice(endless, 300))
    assert len(frames) == 300 and endless.frame_count == 0


def test_cars_move_and_change_size(source: DemoSource) -> None:
    earlier, later = source.render(0), source.render(25)
    cars_earlier, cars_later = earlier.truth == ID["Car"], later.truth == ID["Car"]
    assert cars_earlier.any() and cars_later.any()
    assert (cars_earlier != cars_later).sum() > 500
    assert cars_earlier.sum() != cars_later.sum()
    assert not np.array_equal(earlier.image, later.image)


def test_lane_dashes_stream_towards_the_viewer(source: DemoSource) -> None:
    """From one frame to the next, a dash gains pixels at its lower end and loses them at its upper end.

    Looked at in the bottom fifth of the left half of the picture, where only the nearest
    lane dash can be (cars in the other lane are out of the picture by then).
    """

    def dash_pixels(index: int) -> np.ndarray:
        frame = source.render(index)
        height, width = frame.truth.shape
        white = (frame.image.min(axis=2) > 190) & (frame.truth == ID["Road"])
        return white[int(0.8 * height) :, : width // 2]

    compared = 0
    before = dash_pixels(0)
    for index in range(1, 100):
        after = dash_pixels(index)
        appeared, vanished = after & ~before, before & ~after
        if appeared.sum() >= 5 and vanished.sum() >= 5:
            assert np.nonzero(appeared)[0].mean() > np.nonzero(vanished)[0].mean(), f"frame {index}"
            compared += 1
        before = after
    assert compared >= 10, "the dashes should pass through the bottom of the picture several times in 4 s"


@pytest.mark.parametrize(("seed_a", "seed_b", "same"), [(0, 0, True), (7, 7, True), (0, 1, False)])
def test_the_seed_decides_the_frames(seed_a: int, seed_b: int, same: bool) -> None:
    a = DemoSource(width=320, height=180, seed=seed_a).render(40)
    b = DemoSource(width=320, height=180, seed=seed_b).render(40)
    assert np.array_equal(a.image, b.image) == same
    assert np.array_equal(a.truth, b.truth) == same


@pytest.mark.parametrize(
    ("name", "colour", "tolerance"),
    [
        ("Sky", SKY_MIDDLE, 30),
        ("Road", demo.ROAD_COLOUR, 25),
        ("Pavement", demo.PAVEMENT_COLOUR, 30),
        ("Pole", demo.POLE_COLOUR, 25),
    ],
)
def test_labelled_pixels_have_their_class_colour(source: DemoSource, name: str, colour: tuple, tolerance: int) -> None:
    frame = source.render(10)
    pixels = frame.image[frame.truth == ID[name]]
    assert np.abs(np.median(pixels, axis=0) - colour).max() < tolerance


def test_trees_are_green_and_the_sky_is_above_the_road(source: DemoSource) -> None:
    frame = source.render(10)
    red, green, blue = np.median(frame.image[frame.truth == ID["Tree"]], axis=0)
    assert green > red and green > blue
    sky_rows = np.nonzero((frame.truth == ID["Sky"]).any(axis=1))[0]
    road_rows = np.nonzero((frame.truth == ID["Road"]).any(axis=1))[0]
    assert sky_rows.max() < road_rows.min()


def test_labels_follow_the_pixels_exactly() -> None:
    """Where the label changes, the colour changes: no label edge lies inside a flat region.

    The noise is the only thing that varies inside a flat region, so inside one label two
    neighbours differ by little, while across a sky/car or road/car edge they differ a lot.
    """
    frame = DemoSource(seed=3).render(30)
    image = frame.image.astype(np.int16)
    truth = frame.truth
    step = np.abs(image[:, 1:] - image[:, :-1]).max(axis=2)
    edge = truth[:, 1:] != truth[:, :-1]
    car_edge = edge & ((truth[:, 1:] == ID["Car"]) | (truth[:, :-1] == ID["Car"]))
    assert car_edge.any()
    assert np.median(step[car_edge]) > 3 * np.median(step[~edge])


@pytest.mark.parametrize(
    "kwargs, error",
    [({"width": 10, "height": 540}, InputError), ({"fps": 0.0}, ConfigError), ({"frames": -1}, ConfigError)],
    ids=["too-small", "zero-fps", "negative-frames"],
)
def test_bad_settings_raise_the_error_of_their_kind(kwargs: dict, error: type) -> None:
    """The scene's size comes with the source ('demo:WxH'): InputError; its rate and length are settings: ConfigError."""
    with pytest.raises(error):
        DemoSource(**kwargs)


@pytest.mark.parametrize(("width", "height"), [(320, 240), (1280, 720), (64, 48)])
def test_any_size_renders(width: int, height: int) -> None:
    frame = DemoSource(width=width, height=height).render(5)
    assert frame.image.shape == (height, width, 3) and frame.truth.shape == (height, width)
    assert ID["Road"] in frame.truth and ID["Sky"] in frame.truth
