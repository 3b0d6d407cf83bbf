"""CamVid train frames as calibration data for int8 quantisation (ONNX Runtime and NNCF).

Post-training quantisation picks each activation's int8 range from what the network sees on real
frames; random noise would give ranges that fit no road scene. The frames are spread evenly over
the sorted train split so that every sequence (and its lighting) is represented.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from streamseg.data.camvid import read_rgb
from streamseg.errors import ConfigError, InputError
from streamseg.options import DEFAULT_CALIBRATION_FRAMES
from streamseg.image.preprocessing import to_model_input


def calibration_frame_paths(calibration_data: Path | None, count: int = DEFAULT_CALIBRATION_FRAMES) -> list[Path]:
    """``count`` frames of ``<calibration_data>/train/*.png``, evenly spaced; InputError when there is no such folder."""
    if calibration_data is None:
        raise InputError("int8 needs calibration frames: pass --calibration-data pointing at a CamVid folder (with train/*.png)")
    train_dir = Path(calibration_data) / "train"
    paths = sorted(train_dir.glob("*.png")) if train_dir.is_dir() else []
    if not paths:
        raise InputError(
            f"int8 needs calibration frames, but {train_dir} has no PNG frames: "
            "pass --calibration-data pointing at a CamVid folder (with train/*.png)"
        )
    if count < 1:
        raise ConfigError(f"the number of calibration frames must be at least 1, not {count}")
    picks = np.linspace(0, len(paths) - 1, num=min(count, len(paths))).round().astype(int)
    return [paths[i] for i in dict.fromkeys(picks.tolist())]


def calibration_batches(paths: list[Path], input_size: tuple[int, int]) -> list[np.ndarray]:
    """Each frame as the model's input at ``input_size`` (H, W), made by the function inference uses."""
    return [to_model_input(read_rgb(path), input_size) for path in paths]


def calibration_fingerprint(paths: list[Path]) -> str:
    """A short hash of which frames calibrate (names and sizes), for cache keys: other frames, other ranges."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.name}:{path.stat().st_size};".encode())
    return f"{len(paths)}frames-{digest.hexdigest()[:12]}"


class OrtCalibrationReader(CalibrationDataReader):
    """Feeds calibration batches to ``onnxruntime.quantization.quantize_static`` one at a time."""

    def __init__(self, batches: list[np.ndarray], input_name: str) -> None:
        self._batches = batches
        self._input_name = input_name
        self._position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._position >= len(self._batches):
            return None
        batch = self._batches[self._position]
        self._position += 1
        return {self._input_name: batch}

    def rewind(self) -> None:
        self._position = 0
