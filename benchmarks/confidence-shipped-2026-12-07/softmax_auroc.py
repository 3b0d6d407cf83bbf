"""Pixel AUROC on the even frames of drive 0006R0 (held out from the fold model's training): the top-two margin against
the softmax's top probability over every class, at the shipped calibration's temperature.

    python benchmarks/confidence-shipped-2026-12-07/softmax_auroc.py [FOLD_WEIGHTS]   (default runs/fold-baseline152/last.pt)
"""
import json
import sys

import numpy as np

from streamseg.config import config_from_values
from streamseg.data.layouts import open_labelled_folder
from streamseg.data.samples import read_rgb
from streamseg.eval.calibration import FrameMargins, auroc
from streamseg.eval.confidence_scores import NetworkMargins
from streamseg.image.preprocessing import to_model_input
from streamseg.image.resize import resize_labels

weights = sys.argv[1] if len(sys.argv) > 1 else "runs/fold-baseline152/last.pt"
config = config_from_values({"model": "erfnet", "weights": weights, "backend": "torch", "precision": "fp32"})
folder = open_labelled_folder("../shared/data/camvid", "train+val", "0006R0")
temperature = json.load(open("streamseg/weights/erfnet-confidence.json"))["temperature"]
margins, top_probabilities, correct = [], [], []
with NetworkMargins(config) as network:
    classes = folder.label_set or network.label_set
    for sample in folder.samples[::2]:
        image = read_rgb(sample.image_path)
        scores = network.backend.infer(to_model_input(image, network.backend.input_size))[0]
        truth = resize_labels(folder.truth(sample, image.shape), scores.shape[1:])
        frame = FrameMargins.of(scores, truth, classes.num_classes, classes.ignore_index)
        exponentials = np.exp((scores - scores.max(0)) / temperature)
        top_probability = 1.0 / exponentials.sum(0)  # the top class's own term is exp(0) = 1
        margins.append(frame.margin[frame.labelled])
        top_probabilities.append(top_probability[frame.labelled])
        correct.append(frame.correct[frame.labelled])
margin, probability, right = (np.concatenate(parts) for parts in (margins, top_probabilities, correct))
print("frames", len(margins), "AUROC margin", auroc(margin, right), "AUROC softmax top prob", auroc(probability, right))
