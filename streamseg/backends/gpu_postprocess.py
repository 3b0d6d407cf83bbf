"""Frame pre- and post-processing as tensor operations, so that a GPU backend keeps the CPU out of the per-pixel work.

The CPU pipeline resizes each decoded frame with ``cv2.resize(INTER_AREA)``, scales it to [0, 1]
(``streamseg.image.preprocessing.to_model_input``), and after inference takes the argmax and resizes the labels
back with ``INTER_NEAREST`` (``stages.labels.logits_to_labels``). At 1920x1080 and above those
steps cost more CPU time than a GPU needs for the whole network. The functions here do the same
arithmetic on whatever device their tensors live on, so only uint8 frames go up and class ids come
back, uint8 up to 255 classes and uint16 beyond: 3 or more bytes per pixel less each way than float32
input and logits.

They reproduce OpenCV rather than approximate it: resizing uses OpenCV's own interpolation weights
(area coverage when both axes shrink, its two-tap "area" weights otherwise), applied as two small
matrix products, and label resizing uses OpenCV's nearest-neighbour source indices. Labels from
the two paths therefore agree except where rounding differs by one grey level near a decision
boundary.

How ``CudaBackend.infer_labels`` uses it::

    frames = torch.from_numpy(rgb_uint8).pin_memory().to("cuda", non_blocking=True)   # (N, H, W, 3)
    batch = preprocess_on_gpu(frames, input_size, resizer)       # replaces PreprocessStage
    logits = model(batch)                                         # InferenceStage, still on the GPU
    labels = labels_on_gpu(logits, (H, W)).cpu().numpy()          # replaces LabelStage
    overlay_colours = colours_on_gpu(labels_tensor, palette)      # optional: colour on the GPU too

When no stage after the network needs its scores, ``assemble`` already runs that fusion: one
``LabelInferenceStage`` takes ``Frame.image`` and gives ``Frame.labels`` in place of the
preprocess, inference and label stages, so ``model_input`` and ``logits`` never reach the host.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from streamseg.label_sets import label_dtype

# OpenCV's fixed-point precision for 8-bit linear resizing: weights are rounded to 1/2048.
_OPENCV_COEF_SCALE = 2048


def area_resize_weights(source: int, target: int, *, both_axes_shrink: bool) -> np.ndarray:
    """Float64 (target, source) matrix: row i holds the weight ``cv2.resize(..., INTER_AREA)`` gives each source pixel for target pixel i.

    OpenCV averages over the covered source area only when neither axis grows
    (``both_axes_shrink``); otherwise it uses two-tap weights derived from the area relation,
    rounded to its 8-bit fixed-point precision.
    """
    if source < 1 or target < 1:
        raise ValueError(f"sizes must be positive, not {source} -> {target}")
    weights = np.zeros((target, source), dtype=np.float64)
    if source == target:
        np.fill_diagonal(weights, 1.0)
        return weights
    scale = source / target
    if both_axes_shrink:
        for index in range(target):
            for column, alpha in _area_cell(index, scale, source):
                weights[index, column] += alpha
        return weights
    inverse_scale = target / source
    for index in range(target):
        column = math.floor(index * scale)
        fraction = (index + 1) - (column + 1) * inverse_scale
        fraction = 0.0 if fraction <= 0 else fraction - math.floor(fraction)
        if column >= source - 1:
            column, fraction = source - 1, 0.0
        first = round((1.0 - fraction) * _OPENCV_COEF_SCALE) / _OPENCV_COEF_SCALE
        second = round(fraction * _OPENCV_COEF_SCALE) / _OPENCV_COEF_SCALE
        weights[index, column] += first
        if second:
            weights[index, column + 1] += second
    return weights


def _area_cell(index: int, scale: float, source: int) -> list[tuple[int, float]]:
    """Source pixels and weights of target pixel ``index`` under pure area averaging (OpenCV's computeResizeAreaTab)."""
    start = index * scale
    end = start + scale
    cell_width = min(scale, source - start)
    first_full = math.ceil(start)
    last = min(math.floor(end), source - 1)
    first_full = min(first_full, last)
    cell: list[tuple[int, float]] = []
    if first_full - start > 1e-3:
        cell.append((first_full - 1, (first_full - start) / cell_width))
    cell.extend((column, 1.0 / cell_width) for column in range(first_full, last))
    if end - last > 1e-3:
        cell.append((last, min(end - last, 1.0, cell_width) / cell_width))
    return cell


def nearest_indices(source: int, target: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Int64 source index of each target pixel, as ``cv2.resize(..., INTER_NEAREST)`` picks it, computed on ``device``."""
    # The same double arithmetic as OpenCV's resizeNN, done where the labels are, so no index upload stalls the stream.
    inverse = 1.0 / (target / source)
    positions = torch.arange(target, dtype=torch.float64, device=device) * inverse
    return positions.floor_().to(torch.int64).clamp_(max=source - 1)


class AreaResizer:
    """Resizes batches of RGB images on one device like ``cv2.resize(INTER_AREA)``, keeping the weight matrices it has made.

    One instance per stream of frames: the matrices depend only on the source and target sizes,
    so a video's frames reuse them. Results match OpenCV's uint8 output to within one grey level:
    OpenCV's x86 kernels for the two-tap case truncate intermediate sums in fixed point, which a
    float matrix product does not copy, and exact halves round as OpenCV rounds them.
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self._plans: dict[tuple[int, int, int, int], tuple[torch.Tensor, torch.Tensor, bool]] = {}

    def plan(self, source_size: tuple[int, int], target_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """For (H, W) -> (h, w): row weights (h, H) and column weights (w, W), float32 on the device, and whether ties round to even."""
        key = (*source_size, *target_size)
        if key not in self._plans:
            (source_height, source_width), (target_height, target_width) = source_size, target_size
            shrink = source_height >= target_height and source_width >= target_width
            rows = area_resize_weights(source_height, target_height, both_axes_shrink=shrink)
            columns = area_resize_weights(source_width, target_width, both_axes_shrink=shrink)
            # OpenCV averages integer shrink factors in integers, rounding halves up, and other
            # shrink factors in float, rounding halves to even; its two-tap path rounds halves up.
            integer_factors = source_height % target_height == 0 and source_width % target_width == 0
            self._plans[key] = (
                torch.from_numpy(rows).to(self.device, torch.float32),
                torch.from_numpy(columns).to(self.device, torch.float32),
                shrink and not integer_factors,
            )
        return self._plans[key]

    def __call__(self, images: torch.Tensor, target_size: tuple[int, int]) -> torch.Tensor:
        """uint8 (N, H, W, C) -> float32 (N, h, w, C) holding whole numbers in [0, 255], as OpenCV's uint8 output does."""
        batch, height, width, channels = images.shape
        pixels = images.to(torch.float32)
        if (height, width) == tuple(target_size):
            return pixels
        rows, columns, ties_to_even = self.plan((height, width), target_size)
        target_height, target_width = target_size
        # Columns: (w, W) @ (N, H, W, C) -> (N, H, w, C); rows: (h, H) @ (N, H, w*C) -> (N, h, w*C).
        pixels = torch.matmul(columns, pixels)
        pixels = torch.matmul(rows, pixels.reshape(batch, height, target_width * channels))
        pixels = pixels.reshape(batch, target_height, target_width, channels)
        pixels = pixels.round_() if ties_to_even else pixels.add_(0.5).floor_()
        return pixels.clamp_(0.0, 255.0)


def preprocess_on_gpu(images: torch.Tensor, input_size: tuple[int, int], resizer: AreaResizer | None = None) -> torch.Tensor:
    """RGB uint8 frames (H, W, 3) or (N, H, W, 3) on a device -> the model's input: float32 (N, 3, h, w) in [0, 1] at ``input_size``.

    Equal (up to one grey level of rounding) to ``stages.preprocess.to_model_input`` on each frame.
    The result is a channels-last view, the layout the CUDA backend runs its convolutions in.
    Pass a long-lived ``resizer`` to reuse its weight matrices across calls.
    """
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected RGB frames shaped (N, H, W, 3), not {tuple(images.shape)}")
    resizer = resizer if resizer is not None else AreaResizer(images.device)
    pixels = resizer(images, input_size)
    return pixels.mul_(1.0 / 255.0).permute(0, 3, 1, 2)


def label_tensor_dtype(num_classes: int) -> torch.dtype:
    """The torch dtype of ``num_classes``' ids: uint8 up to 255 classes, uint16 beyond (``label_sets.label_dtype``)."""
    return torch.uint8 if label_dtype(num_classes) == np.uint8 else torch.uint16


def labels_on_gpu(logits: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
    """Logits (N, C, h, w) or (C, h, w) -> class ids (N, H, W) at ``out_size`` (H, W), as ``stages.labels.logits_to_labels``
    computes them: uint8 for up to 255 classes, uint16 beyond."""
    if logits.dim() == 3:
        logits = logits.unsqueeze(0)
    dtype = label_tensor_dtype(logits.shape[1])
    # uint16 is a limited dtype in torch; wide ids are picked out as int32 and narrowed last.
    labels = logits.argmax(dim=1).to(torch.uint8 if dtype == torch.uint8 else torch.int32)
    height, width = labels.shape[-2:]
    out_height, out_width = out_size
    if (height, width) != (out_height, out_width):
        rows = nearest_indices(height, out_height, labels.device)
        columns = nearest_indices(width, out_width, labels.device)
        labels = labels.index_select(1, rows).index_select(2, columns)
    return labels.to(dtype)


def colours_on_gpu(labels: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Class ids (..., H, W), uint8 or uint16 -> uint8 RGB (..., H, W, 3) from ``palette`` (classes, 3) on the same device;
    ids past the palette are black."""
    ids = max(len(palette), 256 if labels.dtype == torch.uint8 else 65536)  # one row for every id the dtype holds
    table = torch.zeros((ids, 3), dtype=torch.uint8, device=palette.device)
    table[: len(palette)] = palette
    return table[labels.long()]
