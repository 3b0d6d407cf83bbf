"""The FlowNetS-style network builds, runs at awkward sizes, learns, and serves as a flow estimator."""

import cv2
import numpy as np
import pytest
import torch
from temporal_frames import shifted, texture

from streamseg.errors import ConfigError, InputError
from streamseg.temporal.flownet import SCALE_WEIGHTS, flownet_s, multiscale_epe
from streamseg.temporal.flownet_estimator import (
    FlowNetEstimator,
    load_flownet,
    stack_pair,
)


@pytest.mark.parametrize("height, width", [(360, 480), (97, 131), (64, 64), (33, 47)])
def test_forward_gives_flow_at_the_input_size(height, width):
    torch.manual_seed(0)
    model = flownet_s().eval()
    with torch.no_grad():
        flow = model(torch.rand(1, 6, height, width))
        pyramid = model.forward_pyramid(torch.rand(1, 6, height, width))
    assert flow.shape == (1, 2, height, width) and torch.isfinite(flow).all()
    assert len(pyramid) == len(SCALE_WEIGHTS)
    assert pyramid[0].shape[-2:] == (-(-height // 4), -(-width // 4))  # finest prediction at 1/4


def test_the_multiscale_loss_falls_on_a_fixed_pair():
    torch.manual_seed(0)
    previous = texture(64, 96, seed=1)
    current = shifted(previous, 3.0, -2.0)
    inputs = stack_pair(previous, current)
    truth = torch.tensor([-3.0, 2.0]).view(1, 2, 1, 1).expand(1, 2, 64, 96).contiguous()
    model = flownet_s()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = multiscale_epe(model.forward_pyramid(inputs), truth)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_a_perfect_prediction_has_zero_loss():
    truth = torch.randn(2, 2, 32, 48)
    pyramid = [torch.nn.functional.adaptive_avg_pool2d(truth / 20, (32 // s, 48 // s)) for s in (4, 8, 16, 32, 64)]
    pyramid[-1] = torch.nn.functional.adaptive_avg_pool2d(truth / 20, (1, 1))
    assert multiscale_epe(pyramid, truth).item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_estimator_returns_flow_in_the_package_layout(tmp_path, precision):
    from streamseg.cpu import cpu_has_native_bf16

    if precision == "bf16" and not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16")
    torch.manual_seed(0)
    weights = tmp_path / "flownet.pt"
    torch.save(flownet_s().state_dict(), weights)
    estimator = FlowNetEstimator(load_flownet(weights), precision=precision)
    frame = texture(90, 120)
    flow = estimator.estimate(frame, shifted(frame, 2, 0))
    assert flow.shape == (90, 120, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()


def test_weights_for_another_network_are_refused(tmp_path):
    weights = tmp_path / "flownet.pt"
    torch.save(flownet_s(width=0.125).state_dict(), weights)
    with pytest.raises(InputError, match="do not fit"):
        load_flownet(weights)


def test_an_unknown_precision_is_refused():
    with pytest.raises(ConfigError, match="fp32 or bf16"):
        FlowNetEstimator(flownet_s(), precision="int4")


def test_the_shipped_network_beats_no_motion_on_held_out_pairs(camvid):
    from streamseg.plugins import Plugins
    from streamseg.temporal.measures import endpoint_error
    from streamseg.temporal.synthetic_pairs import HELD_OUT_SEEDS, FlowPairGenerator

    pairs = list(FlowPairGenerator.from_camvid(camvid, held_out=True, size=(150, 200)).pairs(HELD_OUT_SEEDS[:4]))
    estimator = Plugins(discover=False).flow_estimator("flownet")
    for pair in pairs:
        flow = estimator.estimate(pair.previous, pair.current)
        assert flow.shape == pair.flow.shape
        assert endpoint_error(flow, pair.flow) < 0.7 * endpoint_error(np.zeros_like(pair.flow), pair.flow)


@pytest.mark.parametrize("working_height", [64, 128])
def test_a_working_size_gives_flow_at_the_frames_size_in_their_pixels(working_height):
    """A uniform shift seen at a smaller working size comes back in the frames' own pixels."""
    torch.manual_seed(0)
    model = flownet_s().eval()
    estimator = FlowNetEstimator(model, working_height=working_height)
    frame = texture(97, 131)
    flow = estimator.estimate(frame, shifted(frame, 2, 0))
    with torch.no_grad():  # what the network says at the working size, by hand
        small = FlowNetEstimator(model).estimate(
            *(cv2.resize(image, (round(131 * working_height / 97), working_height), interpolation=cv2.INTER_AREA)
              for image in (frame, shifted(frame, 2, 0)))
        )
    assert flow.shape == (97, 131, 2)
    assert np.abs(flow).max() == pytest.approx(np.abs(small).max() * 97 / working_height, rel=0.05)


def test_a_working_height_below_the_network_stride_is_refused():
    with pytest.raises(ConfigError, match="at least 64"):
        FlowNetEstimator(flownet_s(), working_height=32)
