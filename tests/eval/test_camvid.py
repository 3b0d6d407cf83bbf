"""eval's Predictor: the one multi-scale (Farabet-style) inference, one backend per scale, probabilities averaged."""

import numpy as np
import pytest
import torch

from streamseg.classes import NUM_CLASSES
from streamseg.errors import ConfigError
from streamseg.eval.camvid import Predictor
from streamseg.config import config_from_values
from streamseg.models import load_model
from streamseg.image.preprocessing import to_model_input
from streamseg.image.scores import softmax

IMAGE_SIZE = (48, 64)  # (height, width)


def predictor(scales: tuple[float, ...]) -> Predictor:
    return Predictor(config_from_values({"model": "erfnet-half", "backend": "torch", "precision": "fp32"}), scales, IMAGE_SIZE)


def test_one_scale_gives_the_softmax_of_the_networks_logits():
    image = np.random.default_rng(0).integers(0, 256, size=(*IMAGE_SIZE, 3), dtype=np.uint8)
    model, _ = load_model("erfnet-half", warn=False)
    with torch.no_grad():
        logits = model(torch.from_numpy(to_model_input(image, IMAGE_SIZE)))[0].numpy()
    with predictor((1.0,)) as one_scale:
        np.testing.assert_allclose(one_scale.probabilities(image), softmax(logits), atol=1e-4)


@pytest.mark.parametrize("scales, sizes", [((0.5, 1.0), "32x24, 64x48"), ((0.75, 1.0, 1.25), "48x36, 64x48, 80x60")])
@pytest.mark.slow
def test_several_scales_average_probabilities_at_the_images_size(scales, sizes):
    image = np.random.default_rng(1).integers(0, 256, size=(*IMAGE_SIZE, 3), dtype=np.uint8)
    with predictor(scales) as several:
        assert [backend.input_size for backend in several.backends] == [
            (round(IMAGE_SIZE[0] * scale), round(IMAGE_SIZE[1] * scale)) for scale in scales
        ]
        assert f"at {sizes}" in several.describe()
        probabilities = several.probabilities(image)
        labels = several.labels(image)
    assert probabilities.shape == (NUM_CLASSES, *IMAGE_SIZE)
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=1e-4)
    assert labels.shape == IMAGE_SIZE and labels.dtype == np.uint8


@pytest.mark.parametrize("scales", [(), (0.0, 1.0), (-1.0,), (5.0,), (float("nan"),)])
def test_scales_out_of_range_are_a_config_error(scales):
    with pytest.raises(ConfigError, match="scales must be numbers in"):
        predictor(scales)
