"""streamseg's own network exported to a file and run back by path; four streams and int8 through a user's model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from foreign_models import ColourNet, ImageNetNormalised, export, write_huggingface_files
from streamseg.api import Pipeline
from streamseg.cli import main
from streamseg.config import config_from_values
from streamseg.pipeline.assemble import build_backend
from streamseg.sources import open_source


@pytest.mark.slow
def test_erfnet_exported_and_run_back_by_path_gives_the_same_labels(tmp_path, capsys):
    exported = tmp_path / "erfnet.onnx"
    engines = ["--engine-dir", str(tmp_path / "engines")]
    assert main(["export", "--backend", "onnx", "--model", "erfnet", "--out", str(exported), *engines]) == 0
    capsys.readouterr()
    # The file describes itself: no flags needed.
    assert main(["models", "inspect", str(exported)]) == 0
    assert "metadata streamseg" in capsys.readouterr().out
    with open_source("demo:480x360", demo_frames=4) as source:
        images = np.stack([frame.image for frame in source])
    labels = {}
    for model in ("erfnet", str(exported)):
        config = config_from_values({"model": model, "backend": "onnxruntime", "precision": "fp32", "engine_dir": tmp_path / "engines"})
        backend, _ = build_backend(config)
        with backend:
            labels[model] = backend.infer_labels(images)
    assert np.mean(labels["erfnet"] == labels[str(exported)]) >= 0.999


def _user_model(folder: Path) -> tuple[Path, ColourNet]:
    net = ColourNet(4, stride=2, seed=7)
    path = export(ImageNetNormalised(net), torch.zeros((1, 3, 96, 128)), folder / "model.onnx")
    write_huggingface_files(folder, ["road", "car", "sky", "tree"], (96, 128))
    return path, net


def test_four_streams_run_batched_through_one_user_model(tmp_path):
    path, _ = _user_model(tmp_path)
    streams = [f"cam{i}=demo:320x240" for i in range(4)]
    with Pipeline(streams, model=str(path), backend="onnxruntime", precision="fp32", max_frames=5) as pipeline:
        assert pipeline.label_set.names == ("road", "car", "sky", "tree")
        seen = {}
        for result in pipeline:
            seen[result.stream] = seen.get(result.stream, 0) + 1
            assert result.labels.shape == (240, 320)
    assert seen == {f"cam{i}": 5 for i in range(4)}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_int8_calibrated_on_a_video_prints_its_agreement_with_fp32(backend, tmp_path, demo_video, capsys):
    path, _ = _user_model(tmp_path)
    video = demo_video(tmp_path / "road.mp4", 40)
    assert main([
        "run", str(video), "--model", str(path), "--backend", backend, "--precision", "int8",
        "--calibration-data", str(video), "--engine-dir", str(tmp_path / "engines"), "--max-frames", "3",
    ]) == 0
    err = capsys.readouterr().err
    said = re.search(r"int8 agrees with fp32 on ([\d.]+)% of pixels over (\d+) calibration frames \(video road.mp4\)", err)
    assert said is not None, err
    assert float(said[1]) >= 99.0 and int(said[2]) >= 30
