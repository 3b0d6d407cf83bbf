"""GPU post-processing with any class count: uint8 ids up to 255 classes, uint16 beyond, equal to the label stage's.

The arithmetic is device-agnostic, so it is checked on the CPU here and on a GPU when there is one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamseg.backends.gpu_postprocess import colours_on_gpu, label_tensor_dtype, labels_on_gpu
from streamseg.label_sets import distinct_palette, label_dtype
from streamseg.stages.labels import logits_to_labels

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("classes", [19, 255, 256, 300])
@pytest.mark.parametrize("out_size", [(24, 32), (61, 83)], ids=["model-size", "upscaled"])
def test_labels_are_the_label_stages_in_the_class_counts_dtype(classes, out_size, device):
    logits = np.random.default_rng(classes).standard_normal((classes, 24, 32)).astype(np.float32)
    expected = logits_to_labels(logits, out_size)
    labels = labels_on_gpu(torch.from_numpy(logits).to(device), out_size)
    assert labels.dtype == label_tensor_dtype(classes)
    got = labels.cpu().numpy()
    assert got.shape == (1, *out_size) and got.dtype == label_dtype(classes) == expected.dtype
    np.testing.assert_array_equal(got[0], expected)
    if classes == 300:
        assert expected.max() > 255  # ids a uint8 map cannot hold are among them


@pytest.mark.parametrize("device", DEVICES)
def test_uint16_ids_are_coloured_from_the_palette_and_ids_past_it_are_black(device):
    palette = distinct_palette(300)
    ids = np.array([[0, 255, 256], [299, 300, 65535]], np.uint16)
    colours = colours_on_gpu(torch.from_numpy(ids).to(device), torch.from_numpy(palette).to(device)).cpu().numpy()
    np.testing.assert_array_equal(colours[0], palette[[0, 255, 256]])
    np.testing.assert_array_equal(colours[1, 0], palette[299])
    np.testing.assert_array_equal(colours[1, 1:], 0)
