"""The windowed mean-field CRF in torch: it refines like the dense CRF, on CPU and on CUDA."""

import numpy as np
import pytest
import torch
from crf_test_helpers import (
    coarse_probabilities,
    demo_frames,
    mean_iou,
    upsampled_argmax,
)

from streamseg.errors import ConfigError
from streamseg.refine.conv_crf import ConvCRFRefiner

FRAMES = demo_frames(2)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small tensors on a shared 2-core machine: one thread avoids waiting on busy cores at every op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Measured on these frames: ConvCRF (11x11) agrees with pydensecrf on about 93% of the
# pixels; the raw argmax agrees with pydensecrf on about 87%.
MIN_AGREEMENT = 0.9


@pytest.mark.parametrize("window, blur", [(7, 1), (11, 1), (11, 2)])
def test_refinement_moves_labels_to_the_image_edges(window, blur):
    frame = FRAMES[1]
    probabilities = coarse_probabilities(frame.truth, seed=1)
    before = mean_iou(frame.truth, upsampled_argmax(probabilities, frame.truth.shape))
    labels = ConvCRFRefiner(window=window, blur=blur).refine(frame.image, probabilities)
    assert labels.shape == frame.truth.shape and labels.dtype == np.uint8
    after = mean_iou(frame.truth, labels)
    assert after > before + 0.04, f"mIoU {before:.3f} -> {after:.3f}"


def test_agrees_with_the_dense_crf_on_cpu():
    dense_crf = pytest.importorskip("streamseg.refine.dense_crf")
    pytest.importorskip("pydensecrf.densecrf", reason="pydensecrf (pydensecrf2) is not installed")
    dense, conv = dense_crf.DenseCRFRefiner(), ConvCRFRefiner(window=11, device="cpu")
    for frame in FRAMES:
        probabilities = coarse_probabilities(frame.truth, seed=frame.index)
        reference = dense.refine(frame.image, probabilities)
        raw = upsampled_argmax(probabilities, frame.truth.shape)
        agreement = float((conv.refine(frame.image, probabilities) == reference).mean())
        raw_agreement = float((raw == reference).mean())
        assert agreement >= MIN_AGREEMENT and agreement > raw_agreement, (agreement, raw_agreement)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU")
def test_cuda_gives_the_cpu_labels():
    frame = FRAMES[0]
    probabilities = coarse_probabilities(frame.truth)
    on_cpu = ConvCRFRefiner(device="cpu").refine(frame.image, probabilities)
    on_gpu = ConvCRFRefiner(device="cuda").refine(frame.image, probabilities)
    # Float sums in another order can tip a pixel sitting exactly between two classes.
    assert float((on_cpu == on_gpu).mean()) > 0.999


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        ConvCRFRefiner(device="cuda")


def test_marginals_are_distributions_at_crf_resolution():
    frame = FRAMES[0]
    marginals = ConvCRFRefiner(scale=0.5, iterations=2).marginals(frame.image, coarse_probabilities(frame.truth))
    assert marginals.shape == (11, 68, 120)
    assert torch.allclose(marginals.sum(dim=0), torch.ones(68, 120), atol=1e-4)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"window": 4}, "window must be an odd"),
        ({"window": 1}, "window"),
        ({"blur": 0}, "blur"),
        ({"gaussian_sxy": 0}, "gaussian_sxy"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        ConvCRFRefiner(**settings)


def test_bad_shapes_are_a_clear_value_error():
    with pytest.raises(ValueError, match="image must be RGB uint8"):
        ConvCRFRefiner().refine(np.zeros((4, 4), np.uint8), np.ones((2, 4, 4), np.float32))
