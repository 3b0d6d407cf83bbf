"""``streamseg eval`` on each labelled layout, through the command line.

The scores are checked against masks written here and a model whose output is known from the
image (labelled_folders.red_level_model): a Cityscapes-layout folder whose labelIds become train
ids, and an images/ and masks/ folder in the model's own classes. The one-line refusals need no
such model: the built-in erfnet-half (CamVid's 11 classes) is refused on Cityscapes' 19.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from cli_runs import one_error, run_cli
from labelled_folders import image_of_classes, red_level_model, write_cityscapes_frame, write_ids, write_rgb
from streamseg.image.label_png import encode_label_png
from streamseg.label_sets import CITYSCAPES

SIZE = (32, 64)  # (height, width) of every frame here, and of the red-level model's input




@pytest.fixture(name="sky_over_vegetation")
def sky_over_vegetation_fixture(tmp_path):
    """One Cityscapes frame of 128x64, twice the model's size: sky above, vegetation below, all sky to the model.

    A frame of one red value scales exactly to any size, so its scores are sky 0.5, vegetation 0 at any input size.
    """
    root = tmp_path / "sky"
    label_ids = np.full((64, 128), 23, np.uint8)
    label_ids[32:] = 21
    write_cityscapes_frame(root, "val", "bonn", 1, image_of_classes(np.full((64, 128), 10, np.uint8)), label_ids)
    return root


@pytest.fixture(name="cityscapes")
def cityscapes_fixture(tmp_path):
    """Two val frames in two cities with known masks; the red-level model segments them as written below.

    aachen: the left half is road to the model (red 0); its truth is sidewalk (label id 8) in rows 0-7 and road (7)
    below. The right half is car to the model (red 130); its truth is car (26), but rows 0-7 of columns 32-47 are
    unlabelled (0). bonn: all sky to the model (red 100); its truth is sky (23) in rows 0-15, vegetation (21) below,
    where columns 0-7 are ego vehicle (1). A train frame (all wrong) shows that only val is scored.
    """
    root = tmp_path / "cityscapes"
    predicted = np.zeros(SIZE, np.uint8)
    predicted[:, 32:] = 13
    label_ids = np.full(SIZE, 7, np.uint8)
    label_ids[:8, :32] = 8
    label_ids[:, 32:] = 26
    label_ids[:8, 32:48] = 0
    write_cityscapes_frame(root, "val", "aachen", 1, image_of_classes(predicted, seed=1), label_ids)
    label_ids = np.full(SIZE, 23, np.uint8)
    label_ids[16:] = 21
    label_ids[16:, :8] = 1
    write_cityscapes_frame(root, "val", "bonn", 2, image_of_classes(np.full(SIZE, 10, np.uint8), seed=2), label_ids)
    write_cityscapes_frame(root, "train", "zurich", 3, image_of_classes(np.full(SIZE, 18, np.uint8)), np.full(SIZE, 7))
    return root


# The expected scores of that folder, counted by hand (ignored pixels, label ids 0 and 1, count nowhere):
# road: 768 right, 256 sidewalk pixels taken for road -> 768 / 1024; sidewalk: 0 of 256;
# car: 896 of 896 (the 128 unlabelled are not scored); sky: 1024 right, 896 vegetation taken for sky -> 1024 / 1920;
# vegetation: 0 of 896. Five classes were seen; pixel accuracy (768 + 896 + 1024) / 3840.
EXPECTED_IOU = {"road": 0.75, "sidewalk": 0.0, "car": 1.0, "sky": 1024 / 1920, "vegetation": 0.0}
EXPECTED_MIOU = sum(EXPECTED_IOU.values()) / 5
EXPECTED_PIXEL_ACCURACY = 2688 / 3840


def test_cityscapes_layout_is_scored_in_train_ids_with_the_expected_miou(cityscapes, tmp_path, capsys):
    model = red_level_model(tmp_path / "model.onnx", 19, SIZE, "cityscapes")
    report = tmp_path / "report.json"
    code = run_cli(["eval", cityscapes, "--model", model, "--backend", "onnxruntime", "--json", report])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    result = json.loads(report.read_text())
    assert result["frames"] == 2
    assert result["miou"] == pytest.approx(EXPECTED_MIOU)
    assert result["pixel_accuracy"] == pytest.approx(EXPECTED_PIXEL_ACCURACY)
    assert list(result["class_iou"]) == list(CITYSCAPES.names)
    for name, iou in EXPECTED_IOU.items():
        assert result["class_iou"][name] == pytest.approx(iou), name
    unseen = set(CITYSCAPES.names) - set(EXPECTED_IOU)
    assert all(result["class_iou"][name] != result["class_iou"][name] for name in unseen)  # NaN: neither seen nor scored
    lines = printed.out.splitlines()
    assert re.fullmatch(r"road +75\.0", lines[0]) and re.fullmatch(r"traffic light +nan", lines[6])
    assert re.fullmatch(rf"mIoU +{100 * EXPECTED_MIOU:.1f}   pixel accuracy 70\.0  \(2 frames\)", lines[-1])
    assert "2 Cityscapes val frames" in printed.err


def test_a_model_of_class_ids_scores_the_same_and_refuses_the_crf(cityscapes, tmp_path, capsys):
    model = red_level_model(tmp_path / "ids.onnx", 19, SIZE, "cityscapes", class_ids=True)
    report = tmp_path / "report.json"
    code = run_cli(["eval", cityscapes, "--model", model, "--backend", "onnxruntime", "--json", report])
    assert code == 0, capsys.readouterr().err
    assert json.loads(report.read_text())["miou"] == pytest.approx(EXPECTED_MIOU)
    line = one_error(capsys, run_cli(["eval", cityscapes, "--model", model, "--backend", "onnxruntime", "--crf", "sync"]))
    assert "gives class ids only; use --crf off" in line


def test_cityscapes_train_split_is_scored_when_asked(cityscapes, tmp_path, capsys):
    model = red_level_model(tmp_path / "model.onnx", 19, SIZE, "cityscapes")
    report = tmp_path / "report.json"
    assert run_cli(["eval", cityscapes, "--split", "train", "--model", model, "--backend", "onnxruntime", "--json", report]) == 0
    result = json.loads(report.read_text())
    assert result["frames"] == 1 and result["miou"] == 0.0  # road everywhere, taken for bicycle


def test_images_and_masks_are_scored_in_the_models_own_classes(tmp_path, capsys):
    """Three classes of the model's own; masks of 8 and 16 bits and a palette mask, with ids that are not scored."""
    root = tmp_path / "plain"
    model = red_level_model(tmp_path / "lanes.onnx", 3, SIZE, ["background", "lane", "marking"])
    predicted = np.zeros(SIZE, np.uint8)
    predicted[:, 16:48] = 1
    predicted[:, 30:34] = 2
    write_rgb(root / "images" / "a.png", image_of_classes(predicted, seed=1))
    write_rgb(root / "images" / "b.png", image_of_classes(predicted, seed=2))
    write_rgb(root / "images" / "c.png", image_of_classes(predicted, seed=3))
    write_ids(root / "masks" / "a.png", predicted)  # all right: 2048 pixels
    wide = predicted.astype(np.uint16)
    wide[:16] = 65535  # not a class: the top half is not scored
    wide[16:, 30:34] = 1  # 64 marking pixels whose truth is lane
    write_ids(root / "masks" / "b.png", wide)
    palette_mask = predicted.copy()
    palette_mask[:, :8] = 3  # the class count: not a class, not scored
    (root / "masks" / "c.png").write_bytes(encode_label_png(palette_mask, np.array([[0, 0, 0], [0, 255, 0], [255, 255, 255]])))
    report = tmp_path / "report.json"
    code = run_cli(["eval", root, "--model", model, "--backend", "onnxruntime", "--json", report])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    result = json.loads(report.read_text())
    # Per row the model sees 32 background, 28 lane and 4 marking pixels. Background is right wherever scored.
    lane_right = 28 * 32 + 28 * 16 + 28 * 32  # a, b (bottom half, less the 4 marking columns), c
    marking_right = 4 * 32 + 0 + 4 * 32
    assert result["class_iou"]["background"] == 1.0
    assert result["class_iou"]["lane"] == pytest.approx(lane_right / (lane_right + 64))  # 64 lane pixels missed
    assert result["class_iou"]["marking"] == pytest.approx(marking_right / (marking_right + 64))  # 64 taken for it
    scored = 2048 + 1024 + 2048 - 8 * 32
    assert result["pixel_accuracy"] == pytest.approx((scored - 64) / scored)
    assert "% of the ground truth's pixels were not scored" in printed.err
    assert "lane " in printed.out and "marking " in printed.out


def test_a_model_of_19_classes_is_refused_on_camvid_in_one_line(tiny_camvid, tmp_path, capsys):
    model = red_level_model(tmp_path / "model.onnx", 19, (48, 64), "cityscapes")
    line = one_error(capsys, run_cli(["eval", tiny_camvid, "--model", model, "--backend", "onnxruntime"]))
    assert "the model has 19 classes (cityscapes) but a CamVid folder is scored in 11" in line


def test_camvids_model_is_refused_on_cityscapes_in_one_line_naming_both_counts(cityscapes, capsys):
    line = one_error(capsys, run_cli(["eval", cityscapes, "--model", "erfnet-half"]))
    assert "the model has 11 classes (camvid) but a Cityscapes folder is scored in 19" in line


def test_a_folder_of_no_layout_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "images").mkdir()  # without masks/
    line = one_error(capsys, run_cli(["eval", tmp_path, "--model", "erfnet-half"]))
    assert "is not a labelled folder eval reads" in line and "leftImg8bit/ and gtFine/" in line


def test_splits_and_drives_are_refused_where_the_layout_has_none(cityscapes, tmp_path, capsys):
    plain = tmp_path / "plain"
    write_rgb(plain / "images" / "a.png", np.zeros((*SIZE, 3), np.uint8))
    write_ids(plain / "masks" / "a.png", np.zeros(SIZE, np.uint8))
    assert "has no splits: leave out --split" in one_error(capsys, run_cli(["eval", plain, "--split", "val", "--model", "erfnet-half"]))
    line = one_error(capsys, run_cli(["eval", cityscapes, "--hold-out-drive", "aachen", "--model", "erfnet-half"]))
    assert "--hold-out-drive picks one of CamVid's drives" in line


def test_images_and_masks_in_camvids_classes_score_the_built_in_model(tmp_path, capsys):
    """No model file needed: a mask of CamVid ids (11, unlabelled, not scored) scores erfnet-half's 11 classes."""
    plain = tmp_path / "plain"
    write_rgb(plain / "images" / "a.png", np.random.default_rng(0).integers(0, 256, (*SIZE, 3), dtype=np.uint8))
    mask = np.full(SIZE, 3, np.uint8)
    mask[:4] = 11
    write_ids(plain / "masks" / "a.png", mask)
    report = tmp_path / "report.json"
    assert run_cli(["eval", plain, "--model", "erfnet-half", "--json", report]) == 0
    result = json.loads(report.read_text())
    assert list(result["class_iou"])[3] == "Road" and result["frames"] == 1
    assert "12.5% of the ground truth's pixels were not scored" in capsys.readouterr().err


def test_camvid_holds_out_a_drive_of_train_and_val_as_before(tiny_camvid, tmp_path, capsys):
    report = tmp_path / "report.json"
    arguments = ["eval", tiny_camvid, "--split", "train+val", "--hold-out-drive", "f001", "--model", "erfnet-half"]
    assert run_cli([*arguments, "--json", report]) == 0
    assert json.loads(report.read_text())["frames"] == 2  # f001 of train and of val
    assert "2 CamVid train+val drive f001 frames" in capsys.readouterr().err


def test_a_model_of_fixed_size_scores_frames_of_another_size_at_its_own(sky_over_vegetation, tmp_path, capsys):
    """Frames twice the model's size are scaled to it and its scores back."""
    root = sky_over_vegetation
    model = red_level_model(tmp_path / "model.onnx", 19, SIZE, "cityscapes")
    report = tmp_path / "report.json"
    code = run_cli(["eval", root, "--model", model, "--backend", "onnxruntime", "--json", report])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    result = json.loads(report.read_text())
    assert result["class_iou"]["sky"] == 0.5 and result["class_iou"]["vegetation"] == 0.0 and result["miou"] == 0.25
    assert "at 64x32" in printed.err  # the model's own input size, not the frames'
    line = one_error(capsys, run_cli(["eval", root, "--model", model, "--backend", "onnxruntime", "--scales", "0.5", "1"]))
    assert "runs at its own input size; --scales needs --input-size" in line


def test_a_model_of_dynamic_size_runs_at_the_input_size_given_times_each_scale(sky_over_vegetation, tmp_path, capsys):
    model = red_level_model(tmp_path / "dynamic.onnx", 19, None, "cityscapes")
    line = one_error(capsys, run_cli(["eval", sky_over_vegetation, "--model", model, "--backend", "onnxruntime"]))
    assert "its input size is dynamic" in line and "--input-size" in line
    report = tmp_path / "report.json"
    code = run_cli([
        "eval", sky_over_vegetation, "--model", model, "--backend", "onnxruntime", "--input-size", "64x32",
        "--scales", "0.5", "1", "--json", report,
    ])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "scales at 32x16, 64x32 (file dynamic.onnx" in printed.err
    assert json.loads(report.read_text())["miou"] == 0.25
