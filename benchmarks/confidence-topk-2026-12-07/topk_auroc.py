"""Pixel AUROC of ranking statistics a run could take from the fold model's scores, on every frame of drive 0006R0
(held out from its training): the top-two margin, the softmax's top probability over the top k scores (k = 3, 4, 5)
and over every class, at several temperatures (the margin's ranking does not depend on T; the others' does). It replaces
confidence-shipped-2026-12-07/softmax_auroc.py, which compared the margin with every class on the even frames only.

    python benchmarks/confidence-topk-2026-12-07/topk_auroc.py [FOLD_WEIGHTS]   (default runs/fold-baseline152/last.pt)
"""
import sys

import numpy as np

from streamseg.config import config_from_values
from streamseg.data.layouts import open_labelled_folder
from streamseg.data.samples import read_rgb
from streamseg.eval.calibration import FrameMargins, auroc
from streamseg.eval.confidence_scores import NetworkMargins
from streamseg.image.preprocessing import to_model_input
from streamseg.image.resize import resize_labels

TEMPERATURES = (1.0, 1.5, 2.0, 3.0)
TOP_KS = (3, 4, 5)

weights = sys.argv[1] if len(sys.argv) > 1 else "runs/fold-baseline152/last.pt"
config = config_from_values({"model": "erfnet", "weights": weights, "backend": "torch", "precision": "fp32"})
folder = open_labelled_folder("../shared/data/camvid", "train+val", "0006R0")
gaps, correct = [], []
with NetworkMargins(config) as network:
    classes = folder.label_set or network.label_set
    for sample in folder.samples:
        image = read_rgb(sample.image_path)
        scores = network.backend.infer(to_model_input(image, network.backend.input_size))[0]
        truth = resize_labels(folder.truth(sample, image.shape), scores.shape[1:])
        frame = FrameMargins.of(scores, truth, classes.num_classes, classes.ignore_index)
        # Each labelled pixel's gaps below its best score, sorted: (pixels, C - 1), the first one its margin.
        ordered = -np.sort(-scores[:, frame.labelled], axis=0)
        gaps.append((ordered[:1] - ordered[1:]).T.astype(np.float32))
        correct.append(frame.correct[frame.labelled])
gap, right = np.concatenate(gaps), np.concatenate(correct)
print(f"weights {weights}; drive 0006R0, {len(correct)} frames, {right.size} labelled pixels, {right.mean():.4f} right")
print(f"AUROC margin {auroc(gap[:, 0], right):.4f}")
for temperature in TEMPERATURES:
    terms = np.exp(-gap / temperature)
    row = [f"T {temperature}:"]
    for k in (*TOP_KS, gap.shape[1] + 1):
        top_probability = 1.0 / (1.0 + terms[:, : k - 1].sum(1))
        row.append(f"top-{k} {auroc(top_probability, right):.4f}")
    print("  ".join(row))
