"""The DeepLab-style network and the context module: shapes, ONNX export, init, learning.

Multi-scale inference is eval's ``Predictor`` (tests/eval/test_camvid.py)."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from streamseg.classes import NUM_CLASSES
from streamseg.models import MODELS
from streamseg.models.context import ContextModule, WithContext, erfnet_context
from streamseg.models.deeplab import deeplab
from streamseg.models.erfnet import erfnet

# Small variants keep the file fast; the registered full-width models run in test_models.py.
BUILDERS = {
    "deeplab": lambda: deeplab(),
    "deeplab-half-rates-3-6-9": lambda: deeplab(width=0.5, aspp_rates=(3, 6, 9)),
    "deeplab-half-erfnet-backbone": lambda: deeplab(width=0.5, backbone="erfnet"),
    "erfnet-half-context": lambda: erfnet_context(width=0.5),
    "erfnet-half-context-large-stride-8": lambda: erfnet_context(width=0.5, kind="large", stride=8),
}


def settle_batch_norm(model: nn.Module) -> nn.Module:
    """Gives batch norm real statistics (one pass on random images), so the eval outputs are not near zero."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # a cumulative average: one pass sets the statistics outright
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1)))
    return model.eval()


@pytest.mark.parametrize("name", BUILDERS)
@pytest.mark.parametrize("height, width", [(75, 100), (37, 50)])
def test_forward_keeps_the_input_size(name, height, width):
    torch.manual_seed(0)
    model = BUILDERS[name]().eval()
    with torch.no_grad():
        scores = model(torch.rand(2, 3, height, width))
    assert scores.shape == (2, NUM_CLASSES, height, width)
    assert torch.isfinite(scores).all()


def test_an_unknown_deeplab_backbone_is_refused():
    with pytest.raises(ValueError, match="unknown backbone 'vgg'; known: resnet, erfnet"):
        deeplab(backbone="vgg")


@pytest.mark.parametrize("name", ["deeplab", "deeplab-resnet", "erfnet-context"])
def test_new_models_are_registered(name):
    assert name in MODELS.names()
    assert MODELS.get(name).build()(torch.rand(1, 3, 40, 52)).shape == (1, NUM_CLASSES, 40, 52)


@pytest.mark.parametrize(
    "name", ["deeplab", "deeplab-half-erfnet-backbone", "erfnet-half-context"]
)
def test_onnx_export_matches_onnxruntime(name, tmp_path):
    torch.manual_seed(0)
    model = settle_batch_norm(BUILDERS[name]())
    image = torch.rand(1, 3, 90, 123, generator=torch.Generator().manual_seed(2))
    path = tmp_path / "model.onnx"
    with torch.no_grad():
        expected = model(image).numpy()
        torch.onnx.export(
            model, (image,), str(path), dynamo=False, opset_version=17, input_names=["image"], output_names=["logits"]
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # its worker threads spin, which only slows a busy test machine
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"image": image.numpy()})
    assert actual.shape == expected.shape
    assert (actual.argmax(1) == expected.argmax(1)).mean() >= 0.995
    np.testing.assert_allclose(actual, expected, atol=1e-3 * np.abs(expected).max())


def test_basic_context_module_starts_as_the_identity():
    scores = 10 * torch.rand(2, NUM_CLASSES, 33, 47)
    assert torch.equal(ContextModule(NUM_CLASSES, "basic")(scores), scores)


def test_large_context_module_starts_close_to_the_identity():
    torch.manual_seed(0)
    module = ContextModule(NUM_CLASSES, "large")
    scores = 10 * torch.rand(2, NUM_CLASSES, 33, 47)
    with torch.no_grad():
        out = module(scores)
    assert (out - scores).norm() / scores.norm() < 0.05
    # The noise is there so the copies of one class channel can learn different things.
    widest = module[-3].weight
    assert widest.shape == (32 * NUM_CLASSES, 32 * NUM_CLASSES, 3, 3) and widest.std() > 0


@pytest.mark.parametrize("kind, widths", [
    ("basic", [1, 1, 1, 1, 1, 1, 1, 1]),
    ("large", [2, 2, 4, 8, 16, 32, 32, 1]),
])
def test_context_module_follows_the_papers_table(kind, widths):
    convs = [layer for layer in ContextModule(NUM_CLASSES, kind) if isinstance(layer, nn.Conv2d)]
    assert [conv.out_channels // NUM_CLASSES for conv in convs] == widths
    assert [conv.dilation[0] for conv in convs] == [1, 1, 2, 4, 8, 16, 1, 1]
    assert [conv.kernel_size[0] for conv in convs] == [3] * 7 + [1]


def test_unknown_context_module_is_refused():
    with pytest.raises(ValueError, match="unknown context module 'huge'"):
        ContextModule(NUM_CLASSES, "huge")


@pytest.mark.parametrize("height, width", [(64, 64), (90, 123)])
def test_fresh_context_head_returns_the_front_ends_logits(height, width):
    torch.manual_seed(0)
    front_end = settle_batch_norm(erfnet(width=0.5))
    model = WithContext(front_end, "basic").eval()
    image = torch.rand(1, 3, height, width)
    with torch.no_grad():
        assert torch.equal(model(image), front_end(image))


def test_context_head_learns():
    torch.manual_seed(0)
    model = WithContext(nn.Conv2d(3, NUM_CLASSES, 1), "basic")
    target = torch.zeros(2, 48, 64, dtype=torch.long)
    target[..., 32:] = 3
    image = torch.rand(2, 3, 48, 64)
    before = [p.detach().clone() for p in model.context.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        loss = F.cross_entropy(model(image), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert any(not torch.equal(p, q) for p, q in zip(model.context.parameters(), before))


@pytest.mark.parametrize("batch_size", [1, 2])
def test_a_few_steps_lower_the_deeplab_loss(batch_size):
    torch.manual_seed(0)
    model = deeplab(width=0.25).train()
    image = torch.rand(batch_size, 3, 48, 64)
    target = torch.zeros(batch_size, 48, 64, dtype=torch.long)  # sky above, road below, a car in the middle
    target[:, 24:] = 3
    target[:, 16:32, 24:40] = 8
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = F.cross_entropy(model(image), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
