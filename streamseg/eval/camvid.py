"""``streamseg eval`` on a CamVid split, as the project's tools call it (tools/package_weights.py)."""

from __future__ import annotations

from pathlib import Path

from streamseg.config import config_from_values
from streamseg.data.layouts import detect_layout
from streamseg.errors import InputError
from streamseg.eval.confusion import EvaluationResult
from streamseg.eval.folder import evaluate_folder
from streamseg.eval.predictor import MAX_SCALE, Predictor
from streamseg.refine import CrfParameters

__all__ = ["MAX_SCALE", "Predictor", "evaluate_camvid"]  # Predictor lived here: tools still import it from here


def evaluate_camvid(
    data_dir: Path,
    *,
    split: str = "val",
    model: str = "erfnet",
    weights: Path | None = None,
    backend: str = "torch",
    precision: str = "fp32",
    scales: tuple[float, ...] = (1.0,),
    crf: CrfParameters | None = None,
    max_frames: int | None = None,
    hold_out_drive: str | None = None,
    calibration_data: Path | None = None,
) -> EvaluationResult:
    """mIoU, per-class IoU and pixel accuracy of a model on a CamVid split; ``crf`` refines every frame (sync).

    ``hold_out_drive`` scores that drive's frames of ``split`` instead (train+val for the cross-drive fold).
    """
    if detect_layout(Path(data_dir)) != "CamVid":
        raise InputError(f"{data_dir} is not a CamVid folder: expected {Path(data_dir) / split} and {Path(data_dir) / split}annot")
    config = config_from_values({
        "model": model, "weights": weights, "backend": backend, "precision": precision,
        "calibration_data": calibration_data,
    })
    return evaluate_folder(
        data_dir, config, split=split, hold_out_drive=hold_out_drive, scales=scales, crf=crf, max_frames=max_frames,
    )
