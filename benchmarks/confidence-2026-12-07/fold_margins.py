"""The fold weights' raw scores on drive 0006R0 (a quarter of its labelled pixels): margins, right or wrong, frame, all class scores.

    python benchmarks/confidence-2026-12-07/fold_margins.py   # fold weights at runs/fold-0006R0/last.pt; writes /tmp/fold_margins.npz
"""
import numpy as np, sys
from streamseg.config import config_from_values
from streamseg.data.layouts import open_labelled_folder
from streamseg.eval.confidence_scores import NetworkMargins
from streamseg.image.preprocessing import to_model_input
from streamseg.image.resize import resize_labels
from streamseg.eval.calibration import expected_calibration_error, auroc, spearman
from streamseg.data.samples import read_rgb

config = config_from_values({"model": "erfnet", "weights": "runs/fold-0006R0/last.pt", "backend": "torch", "precision": "fp32"})
folder = open_labelled_folder("/work/shared/data/camvid", "train+val", "0006R0")
M, P, C, F = [], [], [], []
with NetworkMargins(config) as net:
    for i, sample in enumerate(folder.samples):
        image = read_rgb(sample.image_path)
        s = net.backend.infer(to_model_input(image, net.backend.input_size))[0].astype(np.float64)
        srt = np.sort(s, axis=0); margin = srt[-1] - srt[-2]
        labels = s.argmax(0)
        truth = resize_labels(folder.truth(sample, image.shape), labels.shape)
        ok = (truth < 11)
        ok[::2, :] = False; ok[:, ::2] = False  # a quarter of the pixels
        M.append(margin[ok]); C.append((labels == truth)[ok]); F.append(np.full(ok.sum(), i))
        P.append(s[:, ok].T.astype(np.float32))
m = np.concatenate(M); c = np.concatenate(C); f = np.concatenate(F); lse = np.concatenate(P)
np.savez("/tmp/fold_margins.npz", m=m, c=c, f=f, lse=lse)  # lse: every class score of each pixel
print(m.size)
