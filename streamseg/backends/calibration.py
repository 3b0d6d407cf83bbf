"""Frames that calibrate int8 quantisation (ONNX Runtime and NNCF), and how far the int8 model's labels stay from fp32's.

Post-training quantisation picks each activation's int8 range from what the network sees on real
frames; random noise would give ranges that fit no road scene. ``--calibration-data`` names them:

- a CamVid folder (``train/*.png``): frames spread evenly over the sorted train split, so that
  every sequence (and its lighting) is represented;
- any other folder of images (``*.png``, ``*.jpg``): spread evenly over the sorted names;
- a video file: spread evenly over its first :data:`VIDEO_FRAMES` frames (a user's own camera, say).

A user's model is calibrated on the user's frames; what int8 costs in labels is measured on the
same frames against the fp32 model and printed (:func:`log_agreement`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from streamseg.data.camvid import read_rgb
from streamseg.errors import ConfigError, InputError
from streamseg.image.preprocessing import to_model_input
from streamseg.image.scores import class_labels
from streamseg.options import DEFAULT_CALIBRATION_FRAMES

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
VIDEO_FRAMES = 300  # a video calibrates on frames spread over its first this many
AGREEMENT_FILE_NAME = "agreement.json"  # in an int8 engine entry: its labels against fp32's on the calibration frames
_NEEDS = "pass --calibration-data: a CamVid folder (with train/*.png), a folder of images, or a video file"


@dataclass(frozen=True)
class CalibrationFrames:
    """RGB uint8 frames that calibrate int8, and a fingerprint of where they came from, for cache keys."""

    images: list[np.ndarray]
    fingerprint: str  # other frames, other ranges: part of an int8 entry's recipe
    origin: str  # for messages: "CamVid train", "video road.mp4", ...

    def batches(self, input_size: tuple[int, int]) -> list[np.ndarray]:
        """Each frame as the model's input at ``input_size`` (H, W), made by the function inference uses."""
        return [to_model_input(image, input_size) for image in self.images]


def _spread(count: int, total: int) -> list[int]:
    if count < 1:
        raise ConfigError(f"the number of calibration frames must be at least 1, not {count}")
    picks = np.linspace(0, total - 1, num=min(count, total)).round().astype(int)
    return list(dict.fromkeys(picks.tolist()))


def _files_fingerprint(kind: str, paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.name}:{path.stat().st_size};".encode())
    return f"{kind} {len(paths)}frames-{digest.hexdigest()[:12]}"


def calibration_frame_paths(calibration_data: Path | None, count: int = DEFAULT_CALIBRATION_FRAMES) -> list[Path]:
    """``count`` images of ``calibration_data`` (CamVid's ``train/*.png``, else the folder's own images), evenly spaced."""
    if calibration_data is None:
        raise InputError(f"int8 needs calibration frames: {_NEEDS}")
    folder = Path(calibration_data)
    train_dir = folder / "train"
    paths = sorted(train_dir.glob("*.png")) if train_dir.is_dir() else []
    if not paths and folder.is_dir():
        paths = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InputError(f"int8 needs calibration frames, but {folder} holds no images: {_NEEDS}")
    return [paths[i] for i in _spread(count, len(paths))]


def load_calibration_frames(calibration_data: Path | None, count: int = DEFAULT_CALIBRATION_FRAMES) -> CalibrationFrames:
    """The frames ``--calibration-data`` names (see the module's notes); InputError when there are none."""
    if calibration_data is not None and Path(calibration_data).is_file():
        return _video_frames(Path(calibration_data), count)
    paths = calibration_frame_paths(calibration_data, count)
    camvid = paths[0].parent.name == "train" and paths[0].parent.parent == Path(calibration_data)
    kind = "camvid" if camvid else f"images {Path(calibration_data).name}"
    return CalibrationFrames([read_rgb(path) for path in paths], _files_fingerprint(kind, paths), "CamVid train" if camvid else str(calibration_data))


def _video_frames(path: Path, count: int) -> CalibrationFrames:
    import av

    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) >= VIDEO_FRAMES:
                    break
    except (av.FFmpegError, IndexError) as error:  # IndexError: no video stream
        raise InputError(f"cannot read calibration frames from {path}: {error}") from None
    if not frames:
        raise InputError(f"{path} has no video frames to calibrate with")
    picked = [frames[i] for i in _spread(count, len(frames))]
    digest = hashlib.sha256(f"{path.name}:{path.stat().st_size}".encode()).hexdigest()[:12]
    return CalibrationFrames(picked, f"video {len(picked)}of{len(frames)}frames-{digest}", f"video {path.name}")


def calibration_batches(paths: list[Path], input_size: tuple[int, int]) -> list[np.ndarray]:
    """Each image file as the model's input at ``input_size`` (H, W), made by the function inference uses."""
    return [to_model_input(read_rgb(path), input_size) for path in paths]


def write_agreement(
    directory: Path, batches: list[np.ndarray], fp32: Callable[[np.ndarray], np.ndarray], int8: Callable[[np.ndarray], np.ndarray], origin: str,
) -> None:
    """Records in an int8 entry the share of pixels whose label int8 gives as fp32 does, over the calibration ``batches``."""
    same = total = 0
    for batch in batches:
        reference, quantised = class_labels(fp32(batch)[0]), class_labels(int8(batch)[0])
        same += int(np.count_nonzero(reference == quantised))
        total += reference.size
    record = {"agreement": same / total, "frames": len(batches), "frames_from": origin}
    (directory / AGREEMENT_FILE_NAME).write_text(json.dumps(record) + "\n")


def log_agreement(entry: Path) -> float | None:
    """Prints the agreement recorded in int8 entry ``entry`` (none for a shipped entry or one made before it was recorded)."""
    path = entry / AGREEMENT_FILE_NAME
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    log.info(
        "int8 agrees with fp32 on %.2f%% of pixels over %d calibration frames (%s)",
        100 * record["agreement"], record["frames"], record["frames_from"],
    )
    return float(record["agreement"])


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


__all__ = ["CalibrationFrames", "calibration_batches", "calibration_frame_paths", "load_calibration_frames", "log_agreement", "write_agreement"]
