"""Is a CRF result's confidence calibrated? The fold weights on drive 0006R0, sync dense CRF at the network's grid.

For each frame: the network's labels and calibrated confidence (the fold's temperature and curve, fitted on these
same frames: in-sample, which flatters the network's row a little), the CRF's labels, and three confidences for them:
the marginals' two-way figure (what a run gave), the per-pixel minimum of that and the network's, and the network's
where the CRF kept its label, else the lesser of the marginals' figure and 1 - the network's.

    python benchmarks/confidence-curve-2026-12-07/crf_confidence.py   # fold weights at runs/fold-0006R0/last.pt
"""
import json
import sys
from pathlib import Path

import numpy as np

from streamseg.config import config_from_values
from streamseg.data.layouts import open_labelled_folder
from streamseg.data.samples import read_rgb
from streamseg.eval.calibration import auroc, expected_calibration_error, spearman
from streamseg.eval.confidence_scores import NetworkMargins
from streamseg.image.confidence import Calibration, confidence_map, top_two
from streamseg.image.preprocessing import to_model_input
from streamseg.image.resize import resize_labels, resize_rgb
from streamseg.refine.dense_crf import DenseCRFRefiner
from streamseg.stages.refine import softmax

here = Path(__file__).parent
calibration = Calibration.from_record(json.loads((here / "fold-confidence.json").read_text()), "fold")
config = config_from_values({"model": "erfnet", "weights": "runs/fold-0006R0/last.pt", "backend": "torch", "precision": "fp32"})
folder = open_labelled_folder("/work/shared/data/camvid", "train+val", "0006R0")
refiner = DenseCRFRefiner()
rows = {name: ([], [], [], []) for name in ("network", "crf marginals", "crf min(network, marginals)", "crf network where kept")}
limit = int(sys.argv[1]) if len(sys.argv) > 1 else None
with NetworkMargins(config) as net:
    size = net.backend.input_size
    for index, sample in enumerate(folder.samples[:limit]):
        image = resize_rgb(read_rgb(sample.image_path), size)
        scores = net.backend.infer(to_model_input(image, size))[0]
        labels, margin = top_two(scores)
        network = confidence_map(margin, calibration).astype(np.float64) / 255
        crf_labels, marginal = refiner.refine_with_confidence(image, softmax(scores))
        marginal = marginal.astype(np.float64) / 255
        truth = resize_labels(folder.truth(sample, read_rgb(sample.image_path).shape), labels.shape)
        counted = truth < 11
        kept = crf_labels == labels
        variants = {
            "network": (labels, network),
            "crf marginals": (crf_labels, marginal),
            "crf min(network, marginals)": (crf_labels, np.minimum(network, marginal)),
            "crf network where kept": (crf_labels, np.where(kept, network, np.minimum(marginal, 1 - network))),
        }
        for name, (shown, confidence) in variants.items():
            right = (shown == truth)[counted]
            p, c, fp, ft = rows[name]
            p.append(confidence[counted]); c.append(right)
            fp.append(float(confidence.mean())); ft.append(float(right.mean()))
        print(f"{index + 1}/{len(folder.samples[:limit])}", file=sys.stderr, end="\r")
print(f"fold weights, drive 0006R0, {len(rows['network'][2])} frames; the network's calibration fitted on them (in-sample)")
for name, (p, c, fp, ft) in rows.items():
    p, c = np.concatenate(p), np.concatenate(c)
    print(f"  {name:<30} ECE {100 * expected_calibration_error(p, c):5.2f}%  AUROC {auroc(p[::5], c[::5]):.3f}  "
          f"Spearman {spearman(fp, ft):.3f}  predicted {100 * np.mean(fp):.2f}% vs true {100 * np.mean(ft):.2f}%")
