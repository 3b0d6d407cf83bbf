"""Does the frame's context, which ranks pixels better on a CamVid drive the model never saw, also hide what is wrong
on a road unlike CamVid? The highway's bare hills are labelled building (CamVid has no class for them): a confidence
that flags them keeps them under the threshold.

Each statistic is calibrated as a run's margin is (T, then the curve) on the fold model's margins of drive 0006R0:
on some frames and measured on the others (halves and blocks of 10, both ways), and on every frame for the rest.
Then, under the every-frame calibration and through the shipped weights (torch fp32), the road video's frames: the
mean predicted accuracy, the share of pixels under 0.7, and the share of pixels labelled building under 0.7; and
CamVid val's mean predicted against true accuracy.

- margin: as runs shipped until now;
- frame share 0.35: ``(1 - s) m + s mean(m)``, as ``--frame-share`` did at 298b042 (replaced by the local context);
- lowered only: the smaller of the margin and the frame-share statistic (a hard frame lowers its pixels, an easy
  frame raises none);
- 31x31 mean: half the margin plus half the mean margin of the 31x31 pixels around it (a sliding window);
- local context: the margin in its local context as runs now put it (``streamseg.image.confidence.in_local_context``
  at ``DEFAULT_CONTEXT_SHARE``: half of it replaced by the mean of the 5x5 blocks of 8x8 pixels around its block).

    python benchmarks/confidence-context-2026-12-07/hills.py FOLD_WEIGHTS [VIDEO]
"""
import sys

import numpy as np
from scipy import ndimage

from streamseg.config import config_from_values
from streamseg.data.layouts import open_labelled_folder
from streamseg.eval.calibration import FrameMargins, calibrate
from streamseg.eval.confidence_scores import NetworkMargins, labelled_margins
from streamseg.image.confidence import DEFAULT_CONTEXT_SHARE, Reliability, confidence_map, in_local_context
from streamseg.sources import open_source

SHARE, WINDOW, BUILDING, THRESHOLD = 0.35, 31, 1, 0.7


def in_frame_context(margin, share):
    # As 298b042's streamseg.image.confidence.in_frame_context (replaced): a share of each margin replaced by the frame's mean.
    return (1 - share) * margin + share * float(margin.mean(dtype=np.float64))

STATISTICS = {
    "margin": lambda m: m,
    f"frame share {SHARE}": lambda m: in_frame_context(m, SHARE),
    "lowered only": lambda m: np.minimum(m, in_frame_context(m, SHARE)),
    f"{WINDOW}x{WINDOW} mean": lambda m: 0.5 * m + 0.5 * ndimage.uniform_filter(m, WINDOW),
    "local context": lambda m: in_local_context(m, DEFAULT_CONTEXT_SHARE),
}


def network(weights=None):
    values = {"model": "erfnet", "backend": "torch", "precision": "fp32"}
    return NetworkMargins(config_from_values({**values, **({"weights": weights} if weights else {})}))


def labelled(weights, split, drive):
    with network(weights) as net:
        return labelled_margins(net, open_labelled_folder("../shared/data/camvid", split, drive)).frames


def video(path, frames=50, stride=4):
    kept = []
    with network() as net, open_source(path) as source:
        for index, frame in enumerate(source):
            if index % stride == 0:
                kept.append(net.top_two(frame.image))
                if len(kept) == frames:
                    break
    return kept


def as_statistic(frames, statistic):
    return [FrameMargins(statistic(f.margin).astype(np.float32), f.labelled, f.correct) for f in frames]


fold = labelled(sys.argv[1], "train+val", "0006R0")
val = labelled(None, "val", None)
road = video(sys.argv[2] if len(sys.argv) > 2 else "../shared/data/video/solidWhiteRight.mp4")
count = len(fold)
parts = {
    "halves": [(range(0, count // 2), range(count // 2, count)), (range(count // 2, count), range(0, count // 2))],
    "blocks": [([i for i in range(count) if i // 10 % 2 == a], [i for i in range(count) if i // 10 % 2 != a]) for a in (0, 1)],
}
print(f"fold {sys.argv[1]}: 0006R0, {count} frames; val {len(val)} frames and the road video {len(road)} frames, shipped weights")
for name, statistic in STATISTICS.items():
    frames = as_statistic(fold, statistic)
    split_rows = []
    for pairs in parts.values():
        for fit_on, measure_on in pairs:
            fit = calibrate([frames[i] for i in fit_on], [frames[i] for i in measure_on])
            split_rows.append((fit.after.auroc, fit.after.expected_calibration_error, fit.after.spearman))
    whole = calibrate(frames).calibration
    aurocs, eces, rhos = zip(*split_rows)
    on_val = calibrate(frames, as_statistic(val, statistic)).after
    road_maps = [(labels, confidence_map(statistic(margin).astype(np.float32), whole)) for labels, margin in road]
    reliabilities = [Reliability.of(conf, THRESHOLD) for _, conf in road_maps]
    cut = int(np.ceil(THRESHOLD * 255))
    building = np.concatenate([conf[labels == BUILDING] for labels, conf in road_maps])
    print(
        f"{name:<18} fold by split: AUROC {min(aurocs):.3f}-{max(aurocs):.3f}, ECE {100 * min(eces):.1f}-{100 * max(eces):.1f}%, "
        f"Spearman {min(rhos):.2f}-{max(rhos):.2f} | val: predicted {100 * on_val.mean_predicted_accuracy:.1f} vs true "
        f"{100 * on_val.mean_true_accuracy:.1f}% | road: predicted {100 * np.mean([r.predicted_accuracy for r in reliabilities]):.1f}%, "
        f"under {THRESHOLD} {100 * np.mean([r.low_confidence_fraction for r in reliabilities]):.1f}%, "
        f"building pixels under {THRESHOLD} {100 * np.mean(building < cut):.1f}% of {building.size}"
    )
