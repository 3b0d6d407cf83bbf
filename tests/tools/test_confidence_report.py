"""tools/confidence_report.py end to end on a tiny CamVid folder, so the acceptance report cannot rot unnoticed.

The untrained erfnet-half gives no meaningful figures; this checks that every part of the report is
made and agrees with itself: both halves, the all-frames fit, the alert level, the out-of-domain
sources (an image folder stands for the video) and the file to ship.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from streamseg.image.confidence import DEFAULT_THRESHOLD

REPO = Path(__file__).resolve().parents[2]


def test_the_report_has_every_figure(tmp_path: Path, tiny_camvid: Path) -> None:
    report, shipped = tmp_path / "report.json", tmp_path / "erfnet-half-confidence.json"
    completed = subprocess.run(
        [
            sys.executable, "tools/confidence_report.py", "--data", str(tiny_camvid), "--split", "train", "--model", "erfnet-half",
            "--input-size", "64x48", "--video", str(tiny_camvid / "val"), "--video-stride", "1", "--demo", "demo:64x48",
            "--ood-frames", "2", "--json", str(report), "--out", str(shipped),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    figures = json.loads(report.read_text())
    assert figures["frames"] == "CamVid train, 4 frames"
    assert [row["frames"] for row in figures["held_out"].values()] == [2, 2, 2, 2]
    assert list(figures["held_out"]) == [
        "fit on the first half, measured on the second half", "fit on the second half, measured on the first half",
        # four frames: blocks of one, so that both sides have two
        "fit on the even blocks of 1, measured on the odd blocks of 1", "fit on the odd blocks of 1, measured on the even blocks of 1",
    ]
    for row in [*figures["held_out"].values(), figures["all_frames"]]:
        assert 0.05 <= row["temperature"] <= 20 and row["curve"]
        for ece in ("ece_before", "ece_temperature_only", "ece_after"):
            assert 0 <= row[ece] <= 1
        assert 0 <= row["auroc"] <= 1
        assert 0 <= row["mean_predicted_accuracy"] <= 1 and 0 <= row["mean_true_accuracy"] <= 1
    predicted = [frame["predicted_accuracy"] for frame in figures["per_frame"]]
    assert len(predicted) == 4
    assert figures["alert_below"] == round(float(np.percentile(predicted, 5)), 4)
    assert [row["frames"] for row in figures["out_of_domain"].values()] == [4, 2, 2]
    for row in figures["out_of_domain"].values():
        assert set(row["low_confidence_fraction_under"]) == {f"{t:g}" for t in (DEFAULT_THRESHOLD, 0.5, 0.6, 0.75, 0.9)}
    written = json.loads(shipped.read_text())
    assert len(written.pop("curve")) == 256
    assert written == {
        "temperature": figures["all_frames"]["temperature"], "context_share": 0.5, "alert_below": figures["alert_below"],
        "fitted_on": "CamVid train, 4 frames",
    }
    assert figures["context_share"] == 0.5  # calibrate-confidence's default share
    assert "All frames (in-sample), the calibration to ship" in completed.stdout
