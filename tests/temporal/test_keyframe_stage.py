"""Key-frame inference runs the network every K frames and moves its logits along flow in between."""

import numpy as np
import pytest
from temporal_frames import shifted, texture

from streamseg.backends import BackendOptions
from streamseg.backends.torch_cpu import TorchBackend
from streamseg.errors import ConfigError
from streamseg.frame import Frame
from streamseg.models import MODELS
from streamseg.image.preprocessing import to_model_input
from streamseg.stages.temporal import KeyFrameInferenceStage, model_input_to_rgb
from streamseg.temporal.flow import DISFlowEstimator, ZeroFlowEstimator

INPUT_SIZE = (64, 96)


class CountingTorchBackend(TorchBackend):
    """The real torch backend, counting how often the network runs."""

    calls = 0

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        return super().infer(batch)


@pytest.fixture(scope="module")
def model():
    import torch

    torch.manual_seed(0)
    return MODELS.get("erfnet-half").build().eval()


def moving_frames(count: int) -> list[Frame]:
    scene = texture(INPUT_SIZE[0], INPUT_SIZE[1], seed=5)
    frames = []
    for index in range(count):
        image = shifted(scene, 1.5 * index, 0.5 * index)
        frames.append(Frame(index, index / 25, image, model_input=to_model_input(image, INPUT_SIZE)))
    return frames


@pytest.mark.parametrize("resolution", [1.0, 0.5])
@pytest.mark.parametrize("every, frames, expected_calls", [(1, 5, 5), (3, 7, 3), (4, 8, 2), (10, 4, 1)])
@pytest.mark.slow
def test_the_network_runs_only_on_key_frames(model, every, frames, expected_calls, resolution):
    backend = CountingTorchBackend(model, INPUT_SIZE, "fp32", BackendOptions(threads=2))
    stage = KeyFrameInferenceStage(backend, every, DISFlowEstimator("ultrafast"), resolution=resolution)
    for frame in moving_frames(frames):
        stage.process(frame)
        assert frame.logits.shape == (11, *INPUT_SIZE)
        assert frame.model_input is None
        assert (frame.flow is None) == (frame.index == 0)
        assert frame.flow is None or frame.flow.shape == (*INPUT_SIZE, 2)
    assert backend.calls == expected_calls
    stage.close()


def test_between_key_frames_the_key_logits_are_warped(model):
    backend = CountingTorchBackend(model, INPUT_SIZE, "fp32", BackendOptions(threads=2))
    stage = KeyFrameInferenceStage(backend, 3, ZeroFlowEstimator())
    frames = moving_frames(4)
    for frame in frames:
        stage.process(frame)
    # With zero flow, warping is the identity: frames 1 and 2 repeat key frame 0; frame 3 is a new key.
    assert np.array_equal(frames[1].logits, frames[0].logits) and np.array_equal(frames[2].logits, frames[0].logits)
    assert not np.array_equal(frames[3].logits, frames[0].logits)
    assert backend.calls == 2


@pytest.mark.slow
def test_on_a_half_grid_the_warped_logits_follow_the_motion(model):
    backend = CountingTorchBackend(model, INPUT_SIZE, "fp32", BackendOptions(threads=2))
    stage = KeyFrameInferenceStage(backend, 3, DISFlowEstimator("medium"), resolution=0.5)
    frames = moving_frames(3)
    for frame in frames:
        stage.process(frame)
    # The scene moves by (1.5, 0.5) px a frame: the flow, scaled back up, says so.
    assert np.allclose(np.median(frames[2].flow.reshape(-1, 2), axis=0), (-1.5, -0.5), atol=0.5)
    truth = CountingTorchBackend(model, INPUT_SIZE, "fp32", BackendOptions(threads=2))
    network_labels = truth.infer(to_model_input(frames[2].image, INPUT_SIZE))[0].argmax(axis=0)
    assert (frames[2].logits.argmax(axis=0) == network_labels).mean() > 0.7


def test_model_input_converts_back_to_the_rgb_it_came_from():
    image = texture(*INPUT_SIZE, seed=2)
    assert np.array_equal(model_input_to_rgb(to_model_input(image, INPUT_SIZE)), image)


def test_key_frames_must_come_at_least_every_frame(model):
    with pytest.raises(ConfigError, match="every 1 or more"):
        KeyFrameInferenceStage(TorchBackend(model, INPUT_SIZE, "fp32", BackendOptions()), 0, ZeroFlowEstimator())
