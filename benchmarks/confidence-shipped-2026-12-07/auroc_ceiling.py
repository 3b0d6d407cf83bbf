"""Pixel AUROC of a fold model on drive 0006R0 (held out from its training): the raw margin, its table levels, and
after the shipped calibration's curve. Equal figures mean the calibration costs the ranking nothing.

    python benchmarks/confidence-shipped-2026-12-07/auroc_ceiling.py [FOLD_WEIGHTS]   (default runs/fold-baseline152/last.pt)
"""
import json
import sys

from streamseg.config import config_from_values
from streamseg.data.layouts import open_labelled_folder
from streamseg.eval.calibration import auroc, pooled
from streamseg.eval.confidence_scores import NetworkMargins, labelled_margins
from streamseg.image.confidence import Calibration, confidence_map, table_levels

weights = sys.argv[1] if len(sys.argv) > 1 else "runs/fold-baseline152/last.pt"
config = config_from_values({"model": "erfnet", "weights": weights, "backend": "torch", "precision": "fp32"})
folder = open_labelled_folder("../shared/data/camvid", "train+val", "0006R0")
with NetworkMargins(config) as network:
    margins, correct = pooled(labelled_margins(network, folder).frames)
shipped = "streamseg/weights/erfnet-confidence.json"
calibration = Calibration.from_record(json.load(open(shipped)), shipped)
print("pixels", margins.size, "accuracy", correct.mean())
print("AUROC raw margin", auroc(margins, correct))
print("AUROC levels", auroc(table_levels(margins, calibration.temperature).astype(float), correct))
print("AUROC after curve", auroc(confidence_map(margins, calibration).astype(float), correct))
