"""``streamseg calibrate-confidence`` through the command line, on a folder and a model whose scores are known.

The model is a foreign ONNX graph (onnx.helper) of two classes: class 0 scores 0, class 1 scores
0.05 times the pixel's red value, so a pixel of red r is class 1 by a margin of 0.05 r. The frames
lay out known_margins' levels in red, and their masks label a share sigmoid(m / 2) of each level's
pixels class 1 (right) and the rest class 0 (wrong): the fit must find T = 2. A last row of every
frame is red 200 (margin 10) with a mask id past the two classes: it counts in a frame's predicted
accuracy, as it would in a run, and nowhere else.

The fits whose T is checked take ``--context-share 0``: the masks imply T = 2 of the margin alone. The others
fit at the default share, as a user's would, and check that a run gives what the fit predicts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from known_margins import (
    FRAME_SHAPE,
    FRAMES,
    LEVELS,
    PIXELS_PER_LEVEL,
    TRUE_T,
    expected_auroc,
    expected_ece,
    frame_layout,
    true_accuracies,
)
from labelled_folders import write_ids, write_rgb
from streamseg.cli import main
from streamseg.image.confidence import CONFIDENCE_SCALE, table_levels

MARGIN_PER_RED = 0.05
UNLABELLED_RED, UNLABELLED_ID = 200, 9
SIZE = (FRAME_SHAPE[0] + 1, FRAME_SHAPE[1])  # the frames and the model's fixed input: a last row of unlabelled pixels
SIDECAR = """\
# a user's description, written by hand
labels: [background, thing]
input: {channel_order: rgb, layout: nchw, mean: [0, 0, 0], std: [1, 1, 1], scale: 0.00392156862745098, resize: stretch}
output:
  kind: scores
  layout: nchw
  scores: logits
"""


def run_cli(arguments: list) -> int:
    try:
        return main([str(a) for a in arguments])
    except SystemExit as exit_:
        return exit_.code


def red_margin_model(path: Path, *, class_ids: bool = False) -> Path:
    """The two-class model at SIZE, with SIDECAR beside it (``class_ids``: it ends in an ArgMax)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    height, width = SIZE
    constants = {
        "starts": np.array([0], np.int64), "ends": np.array([1], np.int64), "axes": np.array([1], np.int64),
        "per_unit_red": np.array(255 * MARGIN_PER_RED, np.float32), "nothing": np.array(0, np.float32),
    }
    nodes = [
        helper.make_node("Slice", ["image", "starts", "ends", "axes"], ["red"]),
        helper.make_node("Mul", ["red", "nothing"], ["background"]),
        helper.make_node("Mul", ["red", "per_unit_red"], ["thing"]),
        helper.make_node("Concat", ["background", "thing"], ["scores"], axis=1),
    ]
    output = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2, height, width])
    sidecar = SIDECAR
    if class_ids:
        nodes.append(helper.make_node("ArgMax", ["scores"], ["ids"], axis=1, keepdims=0))
        output = helper.make_tensor_value_info("ids", TensorProto.INT64, [1, height, width])
        sidecar = sidecar.replace("kind: scores", "kind: class-ids")
    graph = helper.make_graph(
        nodes, "red_margin", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, height, width])], [output],
        [numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    path.with_suffix(".streamseg.yaml").write_text(sidecar)
    return path


def frame_margins(k: int) -> np.ndarray:
    """Frame k's margins as the model gives them, the unlabelled row included."""
    margin, _ = frame_layout(k)
    return np.vstack([margin, np.full((1, SIZE[1]), UNLABELLED_RED * MARGIN_PER_RED, np.float32)])


@pytest.fixture(name="folder")
def folder_fixture(tmp_path: Path) -> Path:
    root = tmp_path / "drive"
    rng = np.random.default_rng(0)
    for k in range(FRAMES):
        margin, right = frame_layout(k)
        image = rng.integers(0, 256, size=(*SIZE, 3), dtype=np.uint8)  # green and blue: noise the model ignores
        image[:-1, :, 0] = np.rint(margin / MARGIN_PER_RED).astype(np.uint8)
        image[-1, :, 0] = UNLABELLED_RED
        truth = np.full(SIZE, UNLABELLED_ID, np.uint8)
        truth[:-1] = right.astype(np.uint8)  # class 1 (the model's label) where right, class 0 where wrong
        write_rgb(root / "images" / f"frame{k}.png", image)
        write_ids(root / "masks" / f"frame{k}.png", truth)
    return root


def test_fits_the_temperature_the_masks_imply_and_writes_it_into_the_sidecar(tmp_path: Path, folder: Path, capsys) -> None:
    model = red_margin_model(tmp_path / "model.onnx")
    figures = tmp_path / "figures.json"
    assert run_cli(["calibrate-confidence", "--data", folder, "--model", model, "--context-share", 0, "--json", figures]) == 0
    printed = capsys.readouterr().out
    report = json.loads(figures.read_text())

    temperature = report["temperature"]
    assert temperature == pytest.approx(TRUE_T, abs=0.02)
    assert report["fit_pixels"] == report["after"]["pixels"] == len(LEVELS) * PIXELS_PER_LEVEL  # the unlabelled rows left out
    assert report["before"]["expected_calibration_error"] == pytest.approx(expected_ece(1.0), abs=1e-6)
    assert report["scaled"]["expected_calibration_error"] == pytest.approx(expected_ece(temperature), abs=1e-6)
    assert report["after"]["expected_calibration_error"] < 0.005
    assert report["after"]["auroc"] == pytest.approx(expected_auroc(), abs=1e-9)
    assert len(report["curve"]) == 256
    assert report["after"]["spearman"] == pytest.approx(1.0)
    assert report["after"]["true_accuracies"] == pytest.approx(true_accuracies())
    # As a run reports them: the means of the margin table's levels, each within one of round(255 sigmoid(m / T)).
    predicted = [float(np.mean(table_levels(frame_margins(k), temperature))) / CONFIDENCE_SCALE for k in range(FRAMES)]
    assert report["scaled"]["mean_predicted_accuracy"] == pytest.approx(np.mean(predicted), abs=6e-5)
    assert report["after"]["predicted_accuracies"] == pytest.approx(predicted, abs=0.005)
    assert report["alert_below"] == pytest.approx(float(np.percentile(report["after"]["predicted_accuracies"], 5)))
    assert report["images"] == [f"frame{k}.png" for k in range(FRAMES)]
    assert f"T = {temperature:.4f}" in printed and "suggested alert level" in printed

    sidecar_text = (tmp_path / "model.streamseg.yaml").read_text()
    sidecar = yaml.safe_load(sidecar_text)
    assert sidecar["confidence"] == {
        "temperature": round(temperature, 4), "curve": report["curve"], "alert_below": round(report["alert_below"], 4),
        "fitted_on": "drive/images, 4 frames",
    }
    assert sidecar_text.startswith(SIDECAR)  # the user's keys, layout and comment as they were
    assert {k: v for k, v in sidecar.items() if k != "confidence"} == yaml.safe_load(SIDECAR)


def test_a_second_fit_replaces_the_first_and_is_not_moved_by_it(tmp_path: Path, folder: Path) -> None:
    model = red_margin_model(tmp_path / "model.onnx")
    out = tmp_path / "confidence.json"
    assert run_cli(["calibrate-confidence", "--data", folder, "--model", model, "--max-frames", 2]) == 0
    first = yaml.safe_load((tmp_path / "model.streamseg.yaml").read_text())["confidence"]
    assert first["context_share"] == 0.5  # the default share, kept with the T fitted at it
    # The model now runs at T = first; the fit is of the raw scores all the same, and on all four frames this time.
    assert run_cli(["calibrate-confidence", "--data", folder, "--model", model, "--context-share", 0, "--out", out]) == 0
    text = (tmp_path / "model.streamseg.yaml").read_text()
    assert text.count("confidence:") == 1
    second = yaml.safe_load(text)["confidence"]
    assert second["fitted_on"] == "drive/images, 4 frames" and first["fitted_on"] == "drive/images, 2 frames"
    assert second["temperature"] == pytest.approx(TRUE_T, abs=0.02)
    assert "context_share" not in second  # share 0: the record as one written before shares existed
    assert json.loads(out.read_text()) == second  # --out writes the same record


def test_a_model_of_class_ids_is_refused_in_one_line(tmp_path: Path, folder: Path, capsys) -> None:
    model = red_margin_model(tmp_path / "ids.onnx", class_ids=True)
    assert run_cli(["calibrate-confidence", "--data", folder, "--model", model]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("streamseg: error:")]
    assert len(errors) == 1 and "class ids only" in errors[0], err
    assert "confidence" not in (tmp_path / "ids.streamseg.yaml").read_text()


def test_a_folder_without_truth_in_the_model_s_classes_is_refused(tmp_path: Path, folder: Path, capsys) -> None:
    for mask in (folder / "masks").iterdir():
        write_ids(mask, np.full(SIZE, UNLABELLED_ID, np.uint8))
    model = red_margin_model(tmp_path / "model.onnx")
    assert run_cli(["calibrate-confidence", "--data", folder, "--model", model]) == 2
    assert "no pixel of drive/images has truth in the model's 2 classes" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_run_reports_what_the_fitted_calibration_predicts(tmp_path: Path, folder: Path, backend: str) -> None:
    # The sidecar's temperature, curve and context share reach a run: on the host (onnxruntime) and after OpenVINO's
    # fused graph alike.
    model = red_margin_model(tmp_path / "model.onnx")
    figures, stats = tmp_path / "figures.json", tmp_path / "stats.jsonl"
    assert run_cli(["calibrate-confidence", "--data", folder, "--model", model, "--json", figures]) == 0
    report = json.loads(figures.read_text())
    assert report["context_share"] == 0.5
    predicted = report["after"]["predicted_accuracies"]
    arguments = ["run", folder / "images", "--model", model, "--backend", backend, "--precision", "fp32", "--stats", stats]
    assert run_cli(arguments) == 0
    records = [json.loads(line) for line in stats.read_text().splitlines()]
    assert [record["confidence"]["predicted_accuracy"] for record in records] == pytest.approx(predicted, abs=2e-4)


@pytest.mark.parametrize("given", [["--temperature", "1.0"], ["--context-share", "0.2"]])
def test_a_curve_or_a_share_is_not_taken_with_a_temperature_from_elsewhere(tmp_path: Path, folder: Path, capsys, given: list) -> None:
    model = red_margin_model(tmp_path / "model.onnx")
    assert run_cli(["calibrate-confidence", "--data", folder, "--model", model]) == 0
    capsys.readouterr()
    # The sidecar's curve and share were fitted with its own temperature: another T, or another share, from the
    # command line would misread them.
    assert run_cli(["run", folder / "images", "--model", model, *given, "--max-frames", 1]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("streamseg: error:")]
    assert len(errors) == 1 and "fitted with another temperature" in errors[0] and "Traceback" not in err, err
