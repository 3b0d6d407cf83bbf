"""Does confidence predict the truth? The acceptance figures of calibrated confidence for one set of weights.

On the labelled frames given (a CamVid split, or one drive of it), each frame's raw top-two margins
at the network's grid, as a run computes confidence:

- honest figures: the calibration (T, then the curve at T, on margins in their local context at
  ``--context-share``, 0.5 as ``calibrate-confidence`` fits by default) is fitted on some of the frames and
  measured on the others, two ways: the halves (in name order, so each half is a stretch of the
  drive, and the road changes between them), and alternating blocks of 10 frames (each block a
  stretch of the drive, both sides seeing every kind of road in it), each both ways round. Each
  reports ECE at T = 1, with T alone and with the curve, pixel AUROC of confidence for right against
  wrong labels, Spearman between the frames' predicted and true pixel accuracy, and the mean
  predicted against the mean true accuracy;
- the calibration to ship: fitted on all the frames, with the same figures on those frames (in-sample)
  and the alert level it suggests (the 5th percentile of the frames' predicted accuracy);
- out of domain, under that calibration: the mean predicted accuracy and the share of low-confidence
  pixels on frames of a road video (solidWhiteRight, a US highway) and of the demo source, against
  the labelled frames'. Those have no truth: a drop in predicted accuracy is the signal.

The cross-drive fold (weights trained without drive 0006R0, scored on it):

    .venv/bin/python tools/confidence_report.py --weights FOLD/erfnet.pt --split train+val --hold-out-drive 0006R0 --json F

The shipped weights on CamVid val (which they trained on: expect over-confidence to be hidden):

    .venv/bin/python tools/confidence_report.py --split val --json F

``--out FILE.json`` writes the all-frames fit as ``{temperature, curve, context_share, alert_below, fitted_on}``, the file shipped
beside the weights (as ``streamseg calibrate-confidence --out`` does).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np

from streamseg.backends.export import state_dict_sha256
from streamseg.config import config_from_values
from streamseg.data.layouts import open_labelled_folder
from streamseg.errors import StreamsegError
from streamseg.eval.calibration import ConfidenceFit, ConfidenceFigures, calibrate, frame_reliability, measure
from streamseg.eval.confidence_record import confidence_record, write_confidence_json
from streamseg.eval.confidence_scores import LabelledMargins, NetworkMargins, labelled_margins
from streamseg.image.confidence import DEFAULT_CONTEXT_SHARE, DEFAULT_THRESHOLD, Calibration, check_context_share
from streamseg.models import load_model
from streamseg.observability.logs import configure_logging
from streamseg.sources import open_source

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEFAULT_VIDEO = SHARED_DATA / "video" / "solidWhiteRight.mp4"
DEFAULT_DEMO = "demo:480x360"
EXTRA_THRESHOLDS = (0.5, 0.6, 0.75, 0.9)
BLOCK = 10  # frames in a block of the alternating-blocks split  # low-confidence shares under these too: where a threshold would bite

log = logging.getLogger("confidence_report")


def figures_row(figures: ConfidenceFigures, before: ConfidenceFigures, scaled: ConfidenceFigures | None = None) -> dict:
    return {
        "frames": figures.frames,
        "temperature": round(figures.temperature, 4),
        "curve": figures.curve,
        "ece_before": round(before.expected_calibration_error, 5),
        **({"ece_temperature_only": round(scaled.expected_calibration_error, 5)} if scaled is not None else {}),
        "ece_after": round(figures.expected_calibration_error, 5),
        "auroc": round(figures.auroc, 4),
        "spearman_before": round(before.spearman, 4),
        "spearman": round(figures.spearman, 4),
        "mean_predicted_accuracy_before": round(before.mean_predicted_accuracy, 4),
        "mean_predicted_accuracy": round(figures.mean_predicted_accuracy, 4),
        "mean_true_accuracy": round(figures.mean_true_accuracy, 4),
        "pixel_predicted_accuracy": round(figures.pixel_predicted_accuracy, 4),
        "pixel_accuracy": round(figures.pixel_accuracy, 4),
    }


def fit_row(fit: ConfidenceFit) -> dict:
    return figures_row(fit.after, fit.before, fit.scaled)


def held_out(labelled: LabelledMargins, thresholds: tuple[float, ...], context_share: float) -> dict:
    """The calibration fitted on one part of the frames and measured on the other: the halves, then alternating blocks."""
    frames, names = labelled.frames, labelled.names
    middle = len(frames) // 2
    block = max(1, min(BLOCK, len(frames) // 4))  # a few frames: blocks small enough that both sides have some
    in_block = [(index // block) % 2 == 0 for index in range(len(frames))]
    even, odd = f"even blocks of {block}", f"odd blocks of {block}"
    splits = {
        "first half": [index < middle for index in range(len(frames))],
        "second half": [index >= middle for index in range(len(frames))],
        even: in_block,
        odd: [not chosen for chosen in in_block],
    }
    pairs = (("first half", "second half"), ("second half", "first half"), (even, odd), (odd, even))
    report = {}
    for fit_on, measure_on in pairs:
        fit_frames = [frame for frame, chosen in zip(frames, splits[fit_on]) if chosen]
        measure_frames = [frame for frame, chosen in zip(frames, splits[measure_on]) if chosen]
        fit = calibrate(fit_frames, measure_frames, thresholds[0], context_share=context_share)
        fit_names = [name for name, chosen in zip(names, splits[fit_on]) if chosen]
        report[f"fit on the {fit_on}, measured on the {measure_on}"] = {
            "fitted_on": f"{fit_names[0]} .. {fit_names[-1]} ({len(fit_frames)} frames)", **fit_row(fit),
        }
    return report


def unlabelled_frames(spec: str, frames: int, stride: int) -> list[np.ndarray]:
    """Up to ``frames`` RGB frames of a source, every ``stride``-th from its first."""
    images = []
    with open_source(spec, demo_frames=frames * stride) as source:
        for index, frame in enumerate(source):
            if index % stride == 0:
                images.append(frame.image)
                if len(images) == frames:
                    break
    if not images:
        raise SystemExit(f"error: no frames in {spec}")
    return images


def reliability_of(network: NetworkMargins, images: list[np.ndarray], calibration: Calibration, thresholds: tuple[float, ...]) -> dict:
    """Mean predicted accuracy and low-confidence shares of frames, as a run reports them per frame, averaged."""
    margins = [network.top_two(image)[1] for image in images]
    return reliability_of_margins(margins, calibration, thresholds)


def reliability_of_margins(margins: list[np.ndarray], calibration: Calibration, thresholds: tuple[float, ...]) -> dict:
    predicted = [frame_reliability(margin, calibration, thresholds[0]).predicted_accuracy for margin in margins]
    shares = {
        f"{threshold:g}": round(float(np.mean([frame_reliability(m, calibration, threshold).low_confidence_fraction for m in margins])), 4)
        for threshold in thresholds
    }
    return {
        "frames": len(margins),
        "mean_predicted_accuracy": round(float(np.mean(predicted)), 4),
        "min_predicted_accuracy": round(float(np.min(predicted)), 4),
        "low_confidence_fraction": shares[f"{thresholds[0]:g}"],
        "low_confidence_fraction_under": shares,
    }


def context_share_argument(text: str) -> float:
    try:
        return check_context_share(float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def print_report(report: dict) -> None:
    print(f"{report['model']}; {report['frames']}; context share {report['context_share']:g}")
    print("\nFitted on some frames, measured on the others (ECE at T = 1 -> with T alone -> with the curve too):")
    for name, row in report["held_out"].items():
        print(f"  {name} (fit {row['fitted_on']}):")
        print(
            f"    T {row['temperature']:.3f}   ECE {100 * row['ece_before']:.2f}% -> {100 * row['ece_temperature_only']:.2f}% -> "
            f"{100 * row['ece_after']:.2f}%   "
            f"AUROC {row['auroc']:.4f}   Spearman {row['spearman']:.3f}   "
            f"predicted {100 * row['mean_predicted_accuracy']:.2f}% vs true {100 * row['mean_true_accuracy']:.2f}%"
        )
    whole = report["all_frames"]
    print(f"\nAll frames (in-sample), the calibration to ship: T {whole['temperature']:.4f} and its curve, alert level {report['alert_below']:.4f}")
    print(
        f"  ECE {100 * whole['ece_before']:.2f}% -> {100 * whole['ece_temperature_only']:.2f}% -> {100 * whole['ece_after']:.2f}%   "
        f"AUROC {whole['auroc']:.4f}   "
        f"Spearman {whole['spearman']:.3f}   predicted {100 * whole['mean_predicted_accuracy']:.2f}% vs true "
        f"{100 * whole['mean_true_accuracy']:.2f}%"
    )
    given = report.get("at_given_calibration")
    if given is not None:
        print(
            f"\nUnder the given calibration (T {given['temperature']:.4f}): ECE {100 * given['ece_before']:.2f}% -> "
            f"{100 * given['ece_after']:.2f}%   "
            f"Spearman {given['spearman']:.3f}   predicted {100 * given['mean_predicted_accuracy']:.2f}% vs true "
            f"{100 * given['mean_true_accuracy']:.2f}%"
        )
    print(f"\nOut of domain under the {'given' if given else 'all-frames'} calibration (means over frames; the run's threshold first):")
    for name, row in report["out_of_domain"].items():
        under = ", ".join(f"<{t} {100 * share:.1f}%" for t, share in row["low_confidence_fraction_under"].items())
        print(f"  {name:<44} {row['frames']:>4} frames  predicted {100 * row['mean_predicted_accuracy']:.2f}%  low-confidence {under}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "camvid", help="a labelled folder (default: CamVid)")
    parser.add_argument("--split", help="val (default), train, or train+val")
    parser.add_argument("--hold-out-drive", help="only this CamVid drive's frames of --split (e.g. 0006R0)")
    parser.add_argument("--model", default="erfnet", help="a built-in model or a model file")
    parser.add_argument("--weights", type=Path, help="weights for a built-in model (e.g. the fold's, trained without the drive)")
    parser.add_argument("--backend", default=None, help="torch for a built-in model (default), auto for a model file")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--input-size", default=None, help="WIDTHxHEIGHT (default: a run's)")
    parser.add_argument("--max-frames", type=int, help="at most this many labelled frames")
    parser.add_argument("--video", default=str(DEFAULT_VIDEO), help="out-of-domain video (default: solidWhiteRight)")
    parser.add_argument("--video-stride", type=int, default=4, help="every Nth frame of the video (default 4)")
    parser.add_argument("--demo", default=DEFAULT_DEMO, help=f"the demo source (default {DEFAULT_DEMO})")
    parser.add_argument("--ood-frames", type=int, default=50, help="frames of each out-of-domain source (default 50)")
    parser.add_argument(
        "--threshold", type=float, default=DEFAULT_THRESHOLD, help=f"low-confidence threshold (default {DEFAULT_THRESHOLD}, a run's)",
    )
    parser.add_argument(
        "--calibration", type=Path,
        help="a confidence JSON (the one shipped, say): also measure it on all the frames, and use it out of domain",
    )
    parser.add_argument(
        "--context-share", type=context_share_argument, default=DEFAULT_CONTEXT_SHARE,
        help=f"fit at this context share (streamseg.image.confidence; default {DEFAULT_CONTEXT_SHARE}, calibrate-confidence's)",
    )
    parser.add_argument(
        "--out", type=Path, help="write the all-frames fit here as {temperature, curve, context_share, alert_below, fitted_on}",
    )
    parser.add_argument(
        "--fitted-on", help="what --out's fitted_on says, which a run's start-up line repeats (default: the frames); for "
        "a calibration shipped with other weights, whose weights gave the margins",
    )
    parser.add_argument(
        "--for-weights", type=Path, help="a built-in model's weights --out is shipped beside (its weights_sha256; runs of "
        "other weights ignore the file): e.g. streamseg/weights/erfnet.pt for a calibration fitted on the fold's",
    )
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args()
    configure_logging()
    # The run's threshold first (its share is "the" low-confidence share), then the others in order.
    thresholds = (args.threshold, *sorted(t for t in EXTRA_THRESHOLDS if t != args.threshold))

    from streamseg.modelfile import is_model_file

    values = {
        "model": args.model, "weights": args.weights, "precision": args.precision, "confidence_threshold": args.threshold,
        "backend": args.backend or ("auto" if is_model_file(args.model) else "torch"),
    }
    if args.input_size:
        values["input_size"] = args.input_size
    try:
        config = config_from_values(values)
        folder = open_labelled_folder(args.data, args.split, args.hold_out_drive)
        with NetworkMargins(config) as network:
            labelled = labelled_margins(network, folder, args.max_frames)
            if len(labelled.frames) < 2:
                raise SystemExit("error: the halves need at least two labelled frames")
            whole = calibrate(
                labelled.frames, threshold=args.threshold, source=f"{labelled.description}, {len(labelled.frames)} frames",
                context_share=args.context_share,
            )
            given_calibration = None
            if args.calibration is not None:
                given_calibration = Calibration.from_record(json.loads(args.calibration.read_text()), str(args.calibration))
            calibration = given_calibration or whole.calibration
            given = None if given_calibration is None else measure(labelled.frames, given_calibration, args.threshold)
            log.info("out of domain: %s, %s", args.video, args.demo)
            out_of_domain = {
                f"labelled frames ({labelled.description})": reliability_of_margins(
                    [frame.margin for frame in labelled.frames], calibration, thresholds,
                ),
                f"video {Path(args.video).name}": reliability_of(
                    network, unlabelled_frames(args.video, args.ood_frames, args.video_stride), calibration, thresholds,
                ),
                f"demo {args.demo}": reliability_of(network, unlabelled_frames(args.demo, args.ood_frames, 1), calibration, thresholds),
            }
    except StreamsegError as error:
        sys.exit(f"error: {error}")
    fitted_on = f"{labelled.description}, {len(labelled.frames)} frames"
    report = {
        "model": labelled.model,
        "weights": str(args.weights) if args.weights else "bundled",
        "frames": fitted_on,
        "thresholds": list(thresholds),
        "context_share": args.context_share,
        "held_out": held_out(labelled, thresholds, args.context_share),
        "all_frames": fit_row(whole),
        "alert_below": round(whole.alert_below, 4),
        **({"at_given_calibration": figures_row(given, whole.before)} if given is not None else {}),
        "out_of_domain": out_of_domain,
        "per_frame": [
            {"image": name, "predicted_accuracy": p, "true_accuracy": None if math.isnan(t) else round(t, 4)}
            for name, p, t in zip(labelled.names, whole.after.predicted_accuracies, whole.after.true_accuracies)
        ],
    }
    print_report(report)
    if args.out is not None:
        for_weights = None if args.for_weights is None else state_dict_sha256(load_model(args.model, args.for_weights, warn=False)[0])
        write_confidence_json(args.out, confidence_record(whole.calibration, args.fitted_on or fitted_on, for_weights))
        print(f"wrote {args.out}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
