"""Users' own models, made with other tools, run through `streamseg run` with overlay, stats and masks.

Each wraps the known network ``ColourNet`` behind one of the descriptions users get wrong (BGR
uint8 NHWC in and int64 ids out; ImageNet normalisation and 1/4-stride logits; one sigmoid
channel; 19 Cityscapes classes laid out NHWC; a dynamic size), described by a different source
(flags, HuggingFace files, Model API metadata, a sidecar, Ultralytics metadata, an IR's rt_info);
the labels streamseg writes must agree with the network run natively on >= 99.5% of pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from foreign_models import (
    ChannelsLastScores,
    ColourNet,
    ImageNetNormalised,
    OneChannelSigmoid,
    Uint8BgrNhwcArgmax,
    add_metadata,
    export,
    helper_graph_dynamic,
    native_labels,
    write_huggingface_files,
)
from streamseg.cli import main
from streamseg.image.label_png import read_label_png
from streamseg.label_sets import CITYSCAPES

FRAMES = 6
SIZE = (96, 128)  # (height, width) of the fixed-size models


@pytest.fixture(scope="module")
def video(tmp_path_factory, demo_video) -> Path:
    """The demo road scene's frames, decoded from an H.264 file into a folder of PNGs.

    A folder, not the video itself: a video source scales frames in FFmpeg's decoder, the native
    reference with OpenCV, and two resizers disagree on a few edge pixels by themselves.
    """
    folder = tmp_path_factory.mktemp("frames")
    with av.open(str(demo_video(folder / "road.mp4", FRAMES))) as container:
        for index, frame in enumerate(container.decode(video=0)):
            cv2.imwrite(str(folder / f"{index:03d}.png"), frame.to_ndarray(format="bgr24"))
    (folder / "road.mp4").unlink()
    return folder


def decoded(folder: Path) -> list[np.ndarray]:
    return [cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) for path in sorted(folder.glob("*.png"))]


def run_and_compare(video: Path, model: Path, net: ColourNet, input_size: tuple[int, int], tmp_path: Path, *extra: str) -> dict:
    """`streamseg run` with overlay, stats and masks; asserts the masks agree with ``net`` natively; returns a stats line."""
    out, stats, masks = tmp_path / "overlay.mp4", tmp_path / "stats.jsonl", tmp_path / "masks"
    code = main([
        "run", str(video), "--model", str(model), "--backend", "onnxruntime", "--precision", "fp32",
        "--out", str(out), "--stats", str(stats), "--masks", str(masks), *extra,
    ])
    assert code == 0
    assert out.stat().st_size > 0
    frames = decoded(video)
    agreements = []
    for index, frame in enumerate(frames):
        written = read_label_png(masks / f"{index:06d}.png")
        assert written.shape == frame.shape[:2]
        agreements.append(np.mean(written == native_labels(net, frame, input_size)))
    assert min(agreements) >= 0.995, agreements
    lines = [json.loads(line) for line in stats.read_text().splitlines()]
    assert len(lines) == len(frames)
    return lines[0]


def test_uint8_bgr_nhwc_input_with_int64_argmax_output(video, tmp_path):
    net = ColourNet(5, seed=1)
    path = export(Uint8BgrNhwcArgmax(net), torch.zeros((1, *SIZE, 3), dtype=torch.uint8), tmp_path / "argmax.onnx")
    line = run_and_compare(video, path, net, SIZE, tmp_path, "--channel-order", "bgr", "--labels", "road,car,sky,tree,sign")
    assert set(line["class_fraction"]) <= {"road", "car", "sky", "tree", "sign"}


def test_float_logits_at_quarter_stride_described_by_huggingface_files(video, tmp_path):
    net = ColourNet(4, stride=4, seed=2)
    path = export(ImageNetNormalised(net), torch.zeros((1, 3, *SIZE)), tmp_path / "model.onnx")
    write_huggingface_files(tmp_path, ["road", "car", "sky", "tree"], SIZE)
    run_and_compare(video, path, net, SIZE, tmp_path)


def test_one_channel_sigmoid_described_by_model_api_metadata(video, tmp_path):
    net = ColourNet(2, seed=3)
    path = export(OneChannelSigmoid(net), torch.zeros((1, 3, *SIZE)), tmp_path / "binary.onnx")
    add_metadata(path, {
        "model_info model_type": "Segmentation", "model_info labels": "background road",
        "model_info reverse_input_channels": "True", "model_info mean_values": "0 0 0", "model_info scale_values": "255 255 255",
    })
    line = run_and_compare(video, path, net, SIZE, tmp_path)
    assert set(line["class_fraction"]) <= {"background", "road"}


def test_a_19_class_cityscapes_model_with_channels_last_scores_described_by_a_sidecar(video, tmp_path):
    net = ColourNet(19, seed=4)
    path = export(ChannelsLastScores(net), torch.zeros((1, 3, *SIZE)), tmp_path / "cityscapes.onnx")
    (tmp_path / "cityscapes.streamseg.yaml").write_text(
        "labels: cityscapes\ninput:\n  channel_order: rgb\n  scale: 1/255\n  mean: 0\n  std: 1\n"
    )
    line = run_and_compare(video, path, net, SIZE, tmp_path)
    assert set(line["class_fraction"]) <= set(CITYSCAPES.names)


def test_a_dynamic_size_model_written_with_onnx_helper_and_ultralytics_names(video, tmp_path):
    path, net = helper_graph_dynamic(
        tmp_path / "dynamic.onnx", 3, seed=5, metadata={"names": "{0: 'road', 1: 'car', 2: 'sky'}", "imgsz": "[96, 128]"},
    )
    # Ultralytics letterboxes; this run stretches, and its size comes from --input-size over imgsz.
    run_and_compare(video, path, net, (160, 224), tmp_path, "--resize", "stretch", "--input-size", "224x160", "--size-divisor", "32")


def test_an_openvino_ir_described_by_its_rt_info(video, tmp_path):
    import openvino as ov

    net = ColourNet(3, stride=2, seed=6)
    ir = ov.convert_model(ImageNetNormalised(net).eval(), example_input=torch.zeros((1, 3, *SIZE)), input=[(1, 3, *SIZE)])
    ir.set_rt_info("road car sky", ["model_info", "labels"])
    ir.set_rt_info("True", ["model_info", "reverse_input_channels"])
    ir.set_rt_info(" ".join(str(255 * v) for v in (0.485, 0.456, 0.406)), ["model_info", "mean_values"])
    ir.set_rt_info(" ".join(str(255 * v) for v in (0.229, 0.224, 0.225)), ["model_info", "scale_values"])
    path = tmp_path / "model.xml"
    ov.save_model(ir, str(path))
    out, masks = tmp_path / "overlay.mp4", tmp_path / "masks"
    assert main(["run", str(video), "--model", str(path), "--backend", "openvino", "--precision", "fp32", "--out", str(out), "--masks", str(masks)]) == 0
    for index, frame in enumerate(decoded(video)):
        agreement = np.mean(read_label_png(masks / f"{index:06d}.png") == native_labels(net, frame, SIZE))
        assert agreement >= 0.995
