"""Models made the way users make them, with tools other than streamseg's model code, and their native labels.

Each wraps one known network, :class:`ColourNet`: class c scores 2 x.p_c - |p_c|^2 for RGB x in
[0, 1] and a prototype colour p_c, so the label is the prototype nearest to the pixel's colour
(averaged over ``stride`` x ``stride`` cells). Its labels are stable under the small differences
between two resizers, so "agrees with the network run natively" is a sharp test of the wrapper:
a swapped channel order, a wrong normalisation or a misread layout changes most of them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamseg.image.resize import resize_labels, resize_rgb

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def prototypes(classes: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((classes, 3)).astype(np.float32)


class ColourNet(nn.Module):
    """The known network: RGB in [0, 1], NCHW -> scores (N, classes, H / stride, W / stride)."""

    def __init__(self, classes: int, stride: int = 1, seed: int = 0) -> None:
        super().__init__()
        colours = torch.from_numpy(prototypes(classes, seed))
        self.stride = stride
        self.scores = nn.Conv2d(3, classes, 1)
        with torch.no_grad():
            self.scores.weight.copy_(2 * colours[:, :, None, None])
            self.scores.bias.copy_(-(colours**2).sum(dim=1))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            rgb = F.avg_pool2d(rgb, self.stride)
        return self.scores(rgb)


def native_labels(net: ColourNet, frame: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """The network's labels for an RGB frame, at the frame's size: resized in, scores scaled to the input smoothly, labels out."""
    image = resize_rgb(frame, input_size)
    batch = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        scores = net(batch)
        scores = F.interpolate(scores, size=input_size, mode="bilinear", align_corners=False)
    labels = scores[0].argmax(0).numpy().astype(np.uint8)
    return resize_labels(labels, frame.shape[:2])


def export(module: nn.Module, example: torch.Tensor, path: Path, *, dynamic_size: bool = False) -> Path:
    """``torch.onnx.export`` as a user runs it (the TorchScript exporter; opset 17)."""
    axes = {"input": {2: "height", 3: "width"}, "output": {2: "height", 3: "width"}} if dynamic_size else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), (example,), str(path), dynamo=False, opset_version=17,
            input_names=["input"], output_names=["output"], dynamic_axes=axes,
        )
    return path


class Uint8BgrNhwcArgmax(nn.Module):
    """An export that takes OpenCV's frames as they are (uint8, BGR, NHWC) and gives int64 class ids (N, H, W)."""

    def __init__(self, net: ColourNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, bgr: torch.Tensor) -> torch.Tensor:
        rgb = bgr.flip(-1).permute(0, 3, 1, 2).float() / 255
        scores = F.interpolate(self.net(rgb), size=bgr.shape[1:3], mode="bilinear", align_corners=False)
        return scores.argmax(1)


class ImageNetNormalised(nn.Module):
    """Takes RGB normalised with ImageNet's mean and std (as HuggingFace and torchvision models do)."""

    def __init__(self, net: ColourNet) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, normalised: torch.Tensor) -> torch.Tensor:
        return self.net(normalised * self.std + self.mean)


class OneChannelSigmoid(nn.Module):
    """Two classes as one sigmoid probability of the second (N, 1, H, W)."""

    def __init__(self, net: ColourNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        scores = self.net(rgb)
        return torch.sigmoid(scores[:, 1:2] - scores[:, 0:1])


class ChannelsLastScores(nn.Module):
    """Scores laid out NHWC, as TensorFlow-made models give them."""

    def __init__(self, net: ColourNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.net(rgb).permute(0, 2, 3, 1)


def write_huggingface_files(folder: Path, names: list[str], size: tuple[int, int]) -> None:
    """config.json and preprocessor_config.json as a SegFormer checkpoint has them."""
    (folder / "config.json").write_text(json.dumps({"id2label": {str(i): name for i, name in enumerate(names)}}))
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": list(IMAGENET_MEAN), "image_std": list(IMAGENET_STD), "size": {"height": size[0], "width": size[1]},
    }))


def add_metadata(path: Path, entries: dict[str, str]) -> Path:
    import onnx

    model = onnx.load(str(path))
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))
    return path


def helper_graph_dynamic(path: Path, classes: int, seed: int = 0, metadata: dict[str, str] | None = None) -> tuple[Path, ColourNet]:
    """ColourNet written node by node with onnx.helper, its height and width left dynamic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    net = ColourNet(classes, seed=seed)
    weight = net.scores.weight.detach().numpy()
    bias = net.scores.bias.detach().numpy()
    graph = helper.make_graph(
        [helper.make_node("Conv", ["pixels", "w", "b"], ["scores"])], "colournet",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", classes, "h", "w"])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    for key, value in (metadata or {}).items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path, net
