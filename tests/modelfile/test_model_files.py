"""A model file's identity, its letterbox, and what `models inspect` says about it."""

from __future__ import annotations

import numpy as np
import torch
from onnx import TensorProto, helper, numpy_helper

from foreign_models import ColourNet, export
from streamseg.cli import main
from streamseg.config import config_from_values
from streamseg.image.resize import resize_labels, resize_rgb
from streamseg.modelfile import open_model_file
from streamseg.modelfile.files import file_sha256
from streamseg.pipeline.assemble import build_backend

BOX = (128, 128)  # (height, width) of the letterboxed model's input


def test_the_sha256_covers_external_data(tmp_path):
    import onnx

    weight = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])], [weight],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path), save_as_external_data=True, location="m.weights", size_threshold=0)
    before = file_sha256(path)
    data = (tmp_path / "m.weights").read_bytes()
    (tmp_path / "m.weights").write_bytes(data[:-4] + np.float32(2.0).tobytes())
    assert file_sha256(path) != before


def test_a_letterboxed_model_sees_the_frame_padded_and_its_padding_is_cropped_from_the_labels(tmp_path):
    net = ColourNet(3, seed=8)
    path = export(net, torch.zeros((1, 3, *BOX)), tmp_path / "square.onnx")
    config = config_from_values({
        "model": str(path), "labels": "a,b,c", "channel_order": "rgb", "scale": "1/255", "resize": "letterbox",
        "pad_value": 114, "input_size": "128x96", "backend": "onnxruntime", "precision": "fp32", "engine_dir": tmp_path / "engines",
    })
    frame = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    frame = np.ascontiguousarray(np.repeat(np.repeat(frame, 8, 0), 8, 1))  # 320x240, 4:3
    backend, _ = build_backend(config)
    with backend:
        assert backend.input_size == (96, 128)
        labels = backend.infer_labels(frame[None])[0]
    # Natively: the frame scaled into 128x96, centred in 128x128 on grey 114, the labels of its part of the box.
    padded = np.full((*BOX, 3), 114, np.uint8)
    padded[16:112] = resize_rgb(frame, (96, 128))
    with torch.inference_mode():
        scores = net(torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 255)
    native = resize_labels(scores[0].argmax(0).numpy().astype(np.uint8)[16:112], frame.shape[:2])
    assert np.mean(labels == native) >= 0.995


def test_models_inspect_names_the_source_of_every_field(tmp_path, capsys):
    path = export(ColourNet(3), torch.zeros((1, 3, 48, 64)), tmp_path / "net.onnx")
    (tmp_path / "net.streamseg.yaml").write_text("labels: [road, car, sky]\ninput: {channel_order: bgr}\n")
    assert main(["models", "inspect", str(path), "--scale", "1/255"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.rsplit("<- ", 1)[1] for line in out.splitlines()[1:]}
    assert rows["labels"] == "sidecar net.streamseg.yaml" and rows["channel_order"] == "sidecar net.streamseg.yaml"
    assert rows["scale"] == "--scale" and rows["input_size"] == "tensors" and rows["output"].startswith("tensors")
    assert open_model_file(path, {"scale": "1/255"}).description.channel_order == "bgr"


def test_a_user_model_exported_with_its_description_runs_back_by_path_with_no_flags(tmp_path, capsys):
    path = export(ColourNet(3), torch.zeros((1, 3, 48, 64)), tmp_path / "net.onnx")
    described = tmp_path / "described.onnx"
    flags = ["--labels", "road,car,sky", "--palette", "#ff0000,#00ff00,#0000ff", "--channel-order", "rgb", "--scale", "1/255"]
    assert main(["export", "--backend", "onnx", "--model", str(path), *flags, "--out", str(described), "--engine-dir", str(tmp_path / "e")]) == 0
    model = open_model_file(described)  # wrapped once more: its own names must not collide with the first wrapper's
    assert model.label_set.names == ("road", "car", "sky") and model.label_set.palette.tolist()[0] == [255, 0, 0]
    assert main(["run", "demo", "--model", str(described), "--backend", "onnxruntime", "--max-frames", "2", "--engine-dir", str(tmp_path / "e")]) == 0


class _LogSoftmax(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = ColourNet(3, seed=9)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.net(rgb), dim=1)


def test_log_probabilities_are_read_as_logits(tmp_path):
    module = _LogSoftmax()
    path = export(module, torch.zeros((1, 3, 48, 64)), tmp_path / "logsoftmax.onnx")
    model = open_model_file(path, {"labels": "a,b,c", "channel_order": "rgb", "scale": "1/255"})
    assert model.description.scores == "logits"
    config = config_from_values({"model": str(path), "labels": "a,b,c", "channel_order": "rgb", "scale": "1/255",
                                 "backend": "onnxruntime", "precision": "fp32", "engine_dir": tmp_path / "engines"})
    frame = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    backend, _ = build_backend(config)
    with backend:
        labels = backend.infer_labels(frame[None])[0]
    with torch.inference_mode():
        native = module(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255)[0].argmax(0).numpy()
    assert np.mean(labels == native) >= 0.995
