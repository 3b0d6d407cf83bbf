"""Pixel AUROC on the even frames of drive 0006R0, fold model (runs/fold-baseline152/last.pt): top-two margin against the softmax top probability at the shipped T."""
import numpy as np, torch
from streamseg.config import config_from_values
from streamseg.data.layouts import open_labelled_folder
from streamseg.eval.confidence_scores import NetworkMargins
from streamseg.eval.calibration import auroc
from streamseg.image.confidence import top_two
from streamseg.image.preprocessing import to_model_input
from streamseg.data.samples import read_rgb
from streamseg.image.resize import resize_labels
config = config_from_values({"model": "erfnet", "weights": "runs/fold-baseline152/last.pt", "backend": "torch", "precision": "fp32"})
folder = open_labelled_folder("../shared/data/camvid", "train+val", "0006R0")
ms, ps, cs = [], [], []
with NetworkMargins(config) as net:
    for i, sample in enumerate(folder.samples):
        if i % 2: continue
        image = read_rgb(sample.image_path)
        s = net.backend.infer(to_model_input(image, net.backend.input_size))[0]
        labels, margin = top_two(s)
        truth = resize_labels(folder.truth(sample, image.shape), labels.shape)
        z = s / 2.0059; z = z - z.max(0); p = np.exp(z); p = p.max(0) / p.sum(0)
        ok = truth != 11
        ms.append(margin[ok]); ps.append(p[ok]); cs.append((labels == truth)[ok])
m, p, c = (np.concatenate(x) for x in (ms, ps, cs))
print("frames", len(ms), "AUROC margin", auroc(m, c), "AUROC softmax top prob", auroc(p, c))
