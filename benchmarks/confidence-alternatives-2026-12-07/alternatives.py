"""Could a cheap change to what a pixel's confidence is made of rank errors better on a road the model never saw, and
stay calibrated? Each statistic is calibrated as a run's margin is (``fit_temperature`` then ``fit_curve``) on some
frames of drive 0006R0 and measured on the others (halves, and alternating blocks of 10, each way round), then
fitted on every frame and measured on SECOND (a model or split it was not fitted on):

- margin: the top-two margin, as runs ship;
- class-wise: one temperature and curve per predicted class (the curve a pixel's class was fitted with);
- margin + 31x31 mean: half the pixel's margin plus half the mean margin of the 31x31 pixels around it;
- margin + frame mean: a share (0.25, 0.35, 0.5) of the pixel's margin replaced by its frame's mean margin (every pixel).

Figures over labelled pixels; a frame's predicted accuracy here is the mean over its labelled pixels.

    python benchmarks/confidence-alternatives-2026-12-07/alternatives.py FOLD_WEIGHTS [SECOND_WEIGHTS SPLIT]
    (e.g. runs/fold-baseline152/last.pt streamseg/weights/erfnet.pt val)
"""
import sys

import numpy as np
from scipy import ndimage

from streamseg.config import config_from_values
from streamseg.data.layouts import open_labelled_folder
from streamseg.data.samples import read_rgb
from streamseg.eval.calibration import FrameMargins, auroc, expected_calibration_error, fit_curve, fit_temperature, spearman
from streamseg.eval.confidence_scores import NetworkMargins
from streamseg.image.confidence import CONFIDENCE_SCALE, Calibration, confidence_map
from streamseg.image.resize import resize_labels

WINDOW = 31


def frames(weights, split, drive):
    """Per labelled pixel: predicted class, margin, the 31x31 mean margin, right or not, and its frame's index."""
    config = config_from_values({"model": "erfnet", "weights": weights, "backend": "torch", "precision": "fp32"})
    folder = open_labelled_folder("../shared/data/camvid", split, drive)
    columns = {name: [] for name in ("label", "margin", "window", "frame_mean", "correct", "frame")}
    with NetworkMargins(config) as network:
        classes = folder.label_set or network.label_set
        for index, sample in enumerate(folder.samples):
            image = read_rgb(sample.image_path)
            labels, margin = network.top_two(image)
            truth = resize_labels(folder.truth(sample, image.shape), labels.shape)
            scored = FrameMargins.of_labels(labels, margin, truth, classes.num_classes, classes.ignore_index)
            labelled = scored.labelled
            columns["label"].append(labels[labelled])
            columns["margin"].append(margin[labelled])
            columns["window"].append(ndimage.uniform_filter(margin, WINDOW)[labelled])
            columns["frame_mean"].append(np.full(int(labelled.sum()), margin.mean(), dtype=np.float32))
            columns["correct"].append(scored.correct[labelled])
            columns["frame"].append(np.full(int(labelled.sum()), index))
    return {name: np.concatenate(values) for name, values in columns.items()}


def fitted(statistic, correct):
    temperature = fit_temperature(statistic, correct)
    return Calibration(temperature, curve=fit_curve(statistic, correct, temperature))


STATISTICS = {  # name: (statistic of the pixels, whether each predicted class has its own calibration)
    "margin": (lambda d: d["margin"], False),
    "class-wise": (lambda d: d["margin"], True),
    "margin + 31x31 mean": (lambda d: 0.5 * d["margin"] + 0.5 * d["window"], False),
    **{f"margin + frame mean, share {share}": (lambda d, share=share: (1 - share) * d["margin"] + share * d["frame_mean"], False)
       for share in (0.25, 0.35, 0.5)},
}


def fit(values, data, part, by_class):
    """The calibration of ``values`` (a statistic of ``data``'s pixels) fitted on ``part``: {class or None: calibration}."""
    if not by_class:
        return {None: fitted(values[part], data["correct"][part])}
    return {label: fitted(values[part & (data["label"] == label)], data["correct"][part & (data["label"] == label)])
            for label in np.unique(data["label"][part])}


def measure(values, data, part, calibrations):
    values = values[part].astype(np.float32)
    labels = data["label"][part]
    confidence = np.empty(values.size, dtype=np.float64)
    for label, calibration in calibrations.items():
        at = slice(None) if label is None else labels == label
        confidence[at] = confidence_map(values[at], calibration) / CONFIDENCE_SCALE
    if None not in calibrations:  # a class never predicted on the fitting frames: the margin's own two-way level
        unseen = ~np.isin(labels, list(calibrations))
        confidence[unseen] = confidence_map(values[unseen], Calibration()) / CONFIDENCE_SCALE
    correct, frame = data["correct"][part], data["frame"][part]
    kept = np.unique(frame)
    pixels = np.bincount(frame)[kept]
    predicted = np.bincount(frame, weights=confidence)[kept] / pixels
    true = np.bincount(frame, weights=correct)[kept] / pixels
    return (f"AUROC {auroc(confidence, correct):.3f}  ECE {100 * expected_calibration_error(confidence, correct):4.1f}%  "
            f"Spearman {spearman(predicted, true):.2f}  predicted {100 * predicted.mean():.1f} vs true {100 * true.mean():.1f}%")


fold = frames(sys.argv[1], "train+val", "0006R0")
second = frames(sys.argv[2], sys.argv[3], None) if len(sys.argv) > 3 else None
count = fold["frame"].max() + 1
parts = {"first half": fold["frame"] < count // 2, "second half": fold["frame"] >= count // 2,
         "even blocks": fold["frame"] // 10 % 2 == 0, "odd blocks": fold["frame"] // 10 % 2 == 1}
print(f"fold {sys.argv[1]}: drive 0006R0, {count} frames, {fold['correct'].size} labelled pixels")
for name, (statistic, by_class) in STATISTICS.items():
    print(f"{name}:")
    values = statistic(fold)  # once per statistic: every split fits and measures parts of it
    for part_name, part in parts.items():
        print(f"  fit on the {part_name:11s}, measured on the others  {measure(values, fold, ~part, fit(values, fold, part, by_class))}")
    everything = np.ones_like(fold["correct"])
    calibrations = fit(values, fold, everything, by_class)
    print(f"  fit on every frame, measured on them      {measure(values, fold, everything, calibrations)}")
    if second is not None:
        measured = measure(statistic(second), second, np.ones_like(second["correct"]), calibrations)
        print(f"  fit on every frame, measured on {sys.argv[2]} {sys.argv[3]}  {measured}")
