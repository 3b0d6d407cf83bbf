"""A model whose description cannot work is refused in one line that names what to change, with exit status 2 and no traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from foreign_models import ColourNet, export, helper_graph_dynamic
from streamseg.cli import main

SIZE = (48, 64)


def colour_net(tmp_path: Path, classes: int = 3) -> Path:
    return export(ColourNet(classes), torch.zeros((1, 3, *SIZE)), tmp_path / "net.onnx")


def external_data_model(tmp_path: Path, location: str) -> Path:
    """A 1x1 convolution whose weights an ONNX file says are at ``location``."""
    weight = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, *SIZE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, *SIZE])], [weight],
    )
    path = tmp_path / "external.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    return path


def rank_two_output(tmp_path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=0)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, *SIZE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    path = tmp_path / "pooled.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def huge_input(tmp_path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5000, 5000])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 5000, 5000])],
    )
    path = tmp_path / "huge.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def detector_output(tmp_path: Path) -> Path:
    """An output shaped like a YOLO detector's (N, 4 + classes + 32, anchors), not a map of the image."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 40, 40])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 12, 400])],
        [numpy_helper.from_array(np.array([1, 12, 400], np.int64), "shape")],
    )
    path = tmp_path / "detector.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


NORMALISED = ["--channel-order", "rgb", "--scale", "1/255"]
CASES = {
    "channel count differs from the labels": (colour_net, ["--labels", "a,b", *NORMALISED], "has 3 channels (nchw), but the labels name 2"),
    "an unknown layout": (colour_net, ["--labels", "a,b,c", "--input-layout", "nhcw", *NORMALISED], "one of nchw, nhwc"),
    "missing normalisation": (colour_net, ["--labels", "a,b,c", "--channel-order", "rgb"], "give --scale"),
    "missing channel order": (colour_net, ["--labels", "a,b,c", "--scale", "1/255"], "--channel-order rgb|bgr"),
    "missing labels": (colour_net, NORMALISED, "nothing names its classes"),
    "a palette of the wrong length": (colour_net, ["--labels", "a,b,c", "--palette", "#ff0000,#00ff00", *NORMALISED], "2 colours for 3 classes"),
    "traversal in external data": (lambda p: external_data_model(p, "../weights.bin"), [], "outside the model's folder"),
    "an absolute external data location": (lambda p: external_data_model(p, "/etc/passwd"), [], "outside the model's folder"),
    "an absurd input size": (huge_input, ["--labels", "a,b,c", *NORMALISED], "outside 1 to 4096 pixels a side"),
    "an output rank that is not supported": (rank_two_output, ["--labels", "a,b,c", *NORMALISED], "has rank 2"),
    "a dynamic size without --input-size": (lambda p: helper_graph_dynamic(p / "d.onnx", 3)[0], ["--labels", "a,b,c", *NORMALISED], "give --input-size"),
    "a size that is not a multiple of the divisor": (
        lambda p: helper_graph_dynamic(p / "d.onnx", 3)[0],
        ["--labels", "a,b,c", "--input-size", "100x64", "--size-divisor", "32", *NORMALISED], "not a multiple of its size divisor 32",
    ),
    "mean and std on a uint8 input": (
        lambda p: export(_Uint8Net(), torch.zeros((1, *SIZE, 3), dtype=torch.uint8), p / "u8.onnx"),
        ["--labels", "a,b,c", "--channel-order", "rgb", "--mean", "0.5"], "uint8 (raw pixels)",
    ),
    "a fixed size changed by --input-size": (colour_net, ["--labels", "a,b,c", "--input-size", "320x240", *NORMALISED], "cannot change it"),
    "an unknown sidecar key": (lambda p: _with_sidecar(p, "labels: [a, b, c]\ninput:\n  meen: 0.5\n"), [], "unknown key input.meen"),
    "a torch backend for a model file": (colour_net, ["--labels", "a,b,c", *NORMALISED, "--backend", "torch"], "runs the built-in networks only"),
    "--weights with a model file": (colour_net, ["--labels", "a,b,c", *NORMALISED, "--weights", "w.pt"], "holds its own weights"),
    "a detector's output": (detector_output, ["--labels", "a,b,c", *NORMALISED], "detection and instance-segmentation outputs are not supported"),
    "a file that is not ONNX": (lambda p: _write(p / "junk.onnx", b"not a model"), [], "is not a readable ONNX file"),
}


class _Uint8Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = ColourNet(3)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixels.permute(0, 3, 1, 2).float() / 255)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _with_sidecar(tmp_path: Path, text: str) -> Path:
    path = colour_net(tmp_path)
    (tmp_path / "net.streamseg.yaml").write_text(text)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_description_is_one_line_and_exit_2(case, tmp_path, capsys):
    make, flags, message = CASES[case]
    path = make(tmp_path)
    code = main(["run", "demo", "--model", str(path), "--max-frames", "1", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert not any("Traceback" in line for line in err)
    assert err[-1].startswith("streamseg: error: ") and message in err[-1], err[-1]


def test_crf_is_refused_for_a_model_that_gives_class_ids(tmp_path, capsys):
    from foreign_models import Uint8BgrNhwcArgmax

    path = export(Uint8BgrNhwcArgmax(ColourNet(3)), torch.zeros((1, *SIZE, 3), dtype=torch.uint8), tmp_path / "ids.onnx")
    code = main(["run", "demo", "--model", str(path), "--labels", "a,b,c", "--channel-order", "bgr", "--crf", "sync", "--max-frames", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "gives class ids only; use --crf off" in err[-1]


def test_key_frames_propagate_the_labels_of_a_model_that_gives_class_ids(tmp_path):
    from foreign_models import Uint8BgrNhwcArgmax

    path = export(Uint8BgrNhwcArgmax(ColourNet(3)), torch.zeros((1, *SIZE, 3), dtype=torch.uint8), tmp_path / "ids.onnx")
    masks = tmp_path / "masks"
    assert main([
        "run", "demo", "--model", str(path), "--labels", "a,b,c", "--channel-order", "bgr", "--key-every", "3",
        "--max-frames", "6", "--masks", str(masks),
    ]) == 0
    assert len(list(masks.glob("*.png"))) == 6
