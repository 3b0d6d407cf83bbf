"""Pixel AUROC of the fold model (runs/fold-baseline152/last.pt) on drive 0006R0: the raw margin, its levels and the shipped curve."""
import json, numpy as np
from streamseg.config import config_from_values
from streamseg.data.layouts import open_labelled_folder
from streamseg.eval.confidence_scores import NetworkMargins, labelled_margins
from streamseg.eval.calibration import pooled, auroc, fit_temperature
from streamseg.image.confidence import Calibration, confidence_map, table_levels
config = config_from_values({"model": "erfnet", "weights": "runs/fold-baseline152/last.pt", "backend": "torch", "precision": "fp32"})
folder = open_labelled_folder("../shared/data/camvid", "train+val", "0006R0")
with NetworkMargins(config) as net:
    lab = labelled_margins(net, folder, None)
m, c = pooled(lab.frames)
rec = json.load(open("streamseg/weights/erfnet-confidence.json"))
cal = Calibration.from_record(rec, "x")
print("pixels", m.size, "accuracy", c.mean())
print("AUROC raw margin", auroc(m, c))
print("AUROC levels", auroc(table_levels(m, cal.temperature).astype(float), c))
print("AUROC after curve", auroc(confidence_map(m, cal).astype(float), c))

