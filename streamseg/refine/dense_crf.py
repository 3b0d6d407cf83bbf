"""Fully connected CRF (Krähenbühl & Koltun 2011) over a network's class probabilities, with pydensecrf.

The CRF pulls labels towards image edges: pixels that are close and alike in colour
are encouraged to share a class (the bilateral term), and nearby pixels in general
to agree (the Gaussian term, which removes isolated specks).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np

from streamseg.errors import ConfigError
from streamseg.image.resize import resize_labels, resize_rgb
from streamseg.image.scores import class_labels
from streamseg.label_sets import MAX_CLASSES, label_dtype
from streamseg.refine.marginal_confidence import marginal_confidence

# -log(0) is infinite; probabilities are floored here before the log.
_MIN_PROBABILITY = 1e-8
# cv2.resize handles at most this many channels in one call (OpenCV 5; 4.x took 512).
_CV_MAX_CHANNELS = 128


@dataclass(frozen=True)
class CrfParameters:
    """The settings a CRF refiner runs with; distances are in pixels of the input image.

    Args:
        gaussian_sxy: spatial standard deviation of the smoothness (Gaussian) kernel.
        gaussian_compat: weight of the smoothness kernel.
        bilateral_sxy: spatial standard deviation of the appearance (bilateral) kernel.
        bilateral_srgb: colour standard deviation of the appearance kernel, in 0..255 units.
        bilateral_compat: weight of the appearance kernel.
        iterations: mean-field iterations.
        scale: the CRF runs at the image size times ``scale`` (``0.5``: a quarter of the pixels);
            spatial deviations are scaled with it so that they keep their meaning.
    """

    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 80.0
    bilateral_srgb: float = 13.0
    bilateral_compat: float = 10.0
    iterations: int = 5
    scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("gaussian_sxy", "bilateral_sxy", "bilateral_srgb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("gaussian_compat", "bilateral_compat"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be zero or positive, got {getattr(self, name)}")
        if int(self.iterations) != self.iterations or self.iterations < 1:
            raise ValueError(f"iterations must be a whole number of at least 1, got {self.iterations}")
        if not 0 < self.scale <= 4:
            raise ValueError(f"scale must be in (0, 4], got {self.scale}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_crf_parameters(path: Path | str) -> CrfParameters:
    """Reads CRF settings from a YAML mapping (as ``tools/tune_crf.py`` writes); unknown keys are an error."""
    import yaml  # only this reader needs it

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"CRF settings file {path} does not exist") from None
    except OSError as error:  # a folder, a path under a file, no permission
        raise ConfigError(f"cannot read CRF settings file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"CRF settings file {path} is not a text file") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"CRF settings file {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    return crf_parameters_from_mapping(data or {}, where=str(path))


def crf_parameters_from_mapping(data: Mapping[str, Any], *, where: str = "CRF settings") -> CrfParameters:
    """``CrfParameters`` from a mapping of field names, with one clear ConfigError for any mistake."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of CRF settings, got {type(data).__name__}")
    known = {f.name for f in fields(CrfParameters)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown CRF settings {unknown}; known: {', '.join(sorted(known))}")
    try:
        return CrfParameters(**data)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from None


def check_refine_inputs(image: np.ndarray, probabilities: np.ndarray) -> None:
    """Raises ValueError unless ``image`` is RGB uint8 (H, W, 3) and ``probabilities`` float (C, h, w)."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be RGB uint8 (H, W, 3), got {_describe(image)}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image is empty: {image.shape}")
    if (
        not isinstance(probabilities, np.ndarray)
        or probabilities.ndim != 3
        or not np.issubdtype(probabilities.dtype, np.floating)
    ):
        raise ValueError(f"probabilities must be float (C, h, w), got {_describe(probabilities)}")
    classes, height, width = probabilities.shape
    if not 1 <= classes <= MAX_CLASSES:
        raise ValueError(f"probabilities must have 1 to {MAX_CLASSES} classes (labels are uint16 at most), got {classes}")
    if height < 1 or width < 1:
        raise ValueError(f"probabilities are empty: {probabilities.shape}")


def crf_size(image_shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    """(height, width) the CRF runs at for an image of ``image_shape`` and ``scale``."""
    return max(1, round(image_shape[0] * scale)), max(1, round(image_shape[1] * scale))


def resize_probabilities(probabilities: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) -> float32 (C, H, W) with bilinear interpolation, renormalised to sum to one per pixel."""
    classes = probabilities.shape[0]
    height, width = size
    if probabilities.shape[1:] == (height, width):
        resized = probabilities.astype(np.float32, copy=True)
    else:
        planes = []
        hwc = np.ascontiguousarray(probabilities.transpose(1, 2, 0), dtype=np.float32)
        for start in range(0, classes, _CV_MAX_CHANNELS):
            chunk = cv2.resize(hwc[..., start : start + _CV_MAX_CHANNELS], (width, height), interpolation=cv2.INTER_LINEAR)
            planes.append(chunk.reshape(height, width, -1))
        resized = np.concatenate(planes, axis=2).transpose(2, 0, 1)
    np.maximum(resized, _MIN_PROBABILITY, out=resized)
    resized /= resized.sum(axis=0, keepdims=True)
    return np.ascontiguousarray(resized)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``resize_rgb`` made contiguous, as pydensecrf requires."""
    return np.ascontiguousarray(resize_rgb(image, size))


def labels_to_image_size(labels: np.ndarray, image_shape: tuple[int, ...], num_classes: int) -> np.ndarray:
    """Class ids at the image's (H, W), in the dtype ``num_classes`` calls for (``label_sets.label_dtype``)."""
    return resize_labels(labels.astype(label_dtype(num_classes), copy=False), image_shape[:2])


class DenseCRFRefiner:
    """Refines class probabilities into labels with a fully connected CRF (pydensecrf).

    ``refine`` resizes the probabilities to the CRF resolution (image size times ``scale``),
    runs mean-field inference there with Potts compatibilities, and resizes the labels back
    to the image with nearest neighbour. The object holds settings only, so it is cheap to
    pickle into worker processes.

    Args: see ``CrfParameters``; defaults are the DeepLab settings for 5 iterations.
    """

    def __init__(
        self,
        gaussian_sxy: float = 3.0,
        gaussian_compat: float = 3.0,
        bilateral_sxy: float = 80.0,
        bilateral_srgb: float = 13.0,
        bilateral_compat: float = 10.0,
        iterations: int = 5,
        scale: float = 1.0,
    ) -> None:
        self.parameters = CrfParameters(
            gaussian_sxy, gaussian_compat, bilateral_sxy, bilateral_srgb, bilateral_compat, int(iterations), scale
        )

    @classmethod
    def from_parameters(cls, parameters: CrfParameters) -> "DenseCRFRefiner":
        return cls(**parameters.as_dict())

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value}" for key, value in self.parameters.as_dict().items())
        return f"DenseCRFRefiner({settings})"

    def refine(self, image: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) and float (C, h, w) probabilities -> class ids (H, W): uint8 up to 255 classes, else uint16."""
        labels = self.refine_at_crf_size(image, probabilities)
        return labels_to_image_size(labels, image.shape, probabilities.shape[0])

    def refine_with_confidence(self, image: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Like ``refine``, and the labels' confidence: uint8 ``round(255 p1 / (p1 + p2))`` of the CRF's marginals,
        at the CRF resolution (``streamseg.refine.marginal_confidence``; not temperature-calibrated)."""
        labels, confidence = marginal_confidence(self.marginals(image, probabilities))
        return labels_to_image_size(labels, image.shape, probabilities.shape[0]), confidence

    def refine_at_crf_size(self, image: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """Like ``refine`` but returns the labels at the CRF resolution, before resizing back."""
        return class_labels(self.marginals(image, probabilities))

    def marginals(self, image: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """The CRF's class marginals, float32 (C, H', W') at the CRF resolution."""
        import pydensecrf.densecrf as dcrf  # an optional dependency: the `crf` extra

        check_refine_inputs(image, probabilities)
        p = self.parameters
        height, width = crf_size(image.shape, p.scale)
        classes = probabilities.shape[0]
        unary = resize_probabilities(probabilities, (height, width))
        np.log(unary, out=unary)
        np.negative(unary, out=unary)
        crf = dcrf.DenseCRF2D(width, height, classes)
        crf.setUnaryEnergy(unary.reshape(classes, height * width))
        crf.addPairwiseGaussian(sxy=p.gaussian_sxy * p.scale, compat=p.gaussian_compat)
        crf.addPairwiseBilateral(
            sxy=p.bilateral_sxy * p.scale,
            srgb=p.bilateral_srgb,
            rgbim=resize_image(image, (height, width)),
            compat=p.bilateral_compat,
        )
        q = np.asarray(crf.inference(p.iterations), dtype=np.float32)
        return q.reshape(classes, height, width)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__
