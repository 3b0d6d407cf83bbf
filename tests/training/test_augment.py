"""Training augmentation keeps every label on its pixel, checked on the demo source's exact labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamseg.classes import IGNORE_INDEX
from streamseg.sources.demo import DemoSource
from streamseg.training.augment import Augmentation


def _demo_frames(count: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """The demo drive's exact label maps, and images that spell each pixel's label in their colour."""
    source = DemoSource(width=240, height=180, frames=count)
    labels = np.stack([frame.truth for frame in source])
    images = np.repeat((labels * 20)[..., None], 3, axis=3).astype(np.uint8)
    return torch.from_numpy(images), torch.from_numpy(labels)


def _agreement(decoded: torch.Tensor, labels: torch.Tensor) -> float:
    valid = labels != IGNORE_INDEX
    return float((decoded[valid] == labels[valid]).float().mean())


@pytest.mark.parametrize("crop, scale_range", [((120, 160), (0.5, 2.0)), ((180, 240), (1.0, 1.0)), ((200, 300), (0.5, 0.6))])
def test_geometry_moves_labels_with_their_pixels(crop, scale_range):
    images, labels = _demo_frames()
    augmentation = Augmentation(crop=crop, scale_range=scale_range, jitter=0.0)
    for seed in range(5):
        out_images, out_labels = augmentation.geometry(images, labels, torch.Generator().manual_seed(seed))
        assert out_images.shape == (4, 3, *crop) and out_labels.shape == (4, *crop)
        decoded = torch.round(out_images[:, 0] * 255 / 20).long()
        # Labels sit exactly on their pixels: the image spells them better than it spells any
        # copy of them moved by one pixel (bilinear blending at borders keeps agreement below 1).
        aligned = _agreement(decoded, out_labels)
        assert aligned > 0.95
        for shift, dim in ((1, 1), (-1, 1), (1, 2), (-1, 2)):
            assert _agreement(decoded, out_labels.roll(shift, dims=dim)) < aligned - 0.01
        # Outside the scaled frame (padding) the image is black and the labels are ignored.
        assert torch.all(out_images[:, 0][out_labels == IGNORE_INDEX] * 255 < 20 * IGNORE_INDEX - 10)


def test_a_flip_and_a_scale_of_one_are_exact():
    images, labels = _demo_frames(1)
    augmentation = Augmentation(crop=(180, 240), scale_range=(1.0, 1.0), jitter=0.0)
    seen = set()
    for seed in range(12):
        _, out_labels = augmentation.geometry(images, labels, torch.Generator().manual_seed(seed))
        flipped = torch.equal(out_labels[0], labels[0].long().flip(-1))
        assert flipped or torch.equal(out_labels[0], labels[0].long())
        seen.add(flipped)
    assert seen == {True, False}


def test_the_photometric_part_never_touches_labels():
    images, labels = _demo_frames()
    plain = Augmentation(crop=(120, 160), scale_range=(0.5, 2.0), jitter=0.0)
    strong = Augmentation(crop=(120, 160), scale_range=(0.5, 2.0), jitter=0.4, hue=0.1, blur=1.0, noise=0.05)
    plain_images, plain_labels = plain(list(images), list(labels), torch.Generator().manual_seed(3))
    strong_images, strong_labels = strong(list(images), list(labels), torch.Generator().manual_seed(3))
    assert torch.equal(plain_labels, strong_labels)
    assert not torch.equal(plain_images, strong_images)
    assert strong_images.min() >= 0.0 and strong_images.max() <= 1.0


def test_the_same_generator_state_draws_the_same_batch_noise_included():
    # A resumed run seeds each epoch's generator as the uninterrupted run did, so it must draw the same batches.
    images, labels = _demo_frames()
    strong = Augmentation(crop=(120, 160), scale_range=(0.5, 2.0), jitter=0.4, hue=0.1, blur=1.0, noise=0.05)
    first, _ = strong(list(images), list(labels), torch.Generator().manual_seed(7))
    again, _ = strong(list(images), list(labels), torch.Generator().manual_seed(7))
    other, _ = strong(list(images), list(labels), torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize("change", [{"scale_range": (2.0, 1.0)}, {"scale_range": (0.01, 1.0)}, {"hue": 1.5}, {"noise": -0.1}])
def test_impossible_settings_are_refused(change):
    with pytest.raises(ValueError):
        Augmentation(**change)
