"""``streamseg eval``: a model through a backend on a labelled folder (CamVid, Cityscapes, or images and masks)."""

from __future__ import annotations

import logging
from pathlib import Path

from streamseg.config import RunConfig
from streamseg.data.layouts import open_labelled_folder
from streamseg.data.samples import read_rgb
from streamseg.errors import ConfigError
from streamseg.eval.confusion import ConfusionMatrix, EvaluationResult
from streamseg.eval.predictor import Predictor
from streamseg.observability.progress import Progress
from streamseg.plugins import Plugins
from streamseg.refine import CrfParameters, DenseCRFRefiner

log = logging.getLogger(__name__)


def evaluate_folder(
    data_dir: Path | str,
    config: RunConfig,
    *,
    split: str | None = None,
    hold_out_drive: str | None = None,
    scales: tuple[float, ...] = (1.0,),
    crf: CrfParameters | None = None,
    max_frames: int | None = None,
    plugins: Plugins | None = None,
) -> EvaluationResult:
    """mIoU, per-class IoU (under the model's class names) and pixel accuracy of ``config``'s model on ``data_dir``.

    The layout is read from the folder (streamseg.data.layouts). ``split`` is CamVid's or
    Cityscapes' (val by default; an images/ and masks/ folder has none); ``hold_out_drive``
    scores one CamVid drive's frames of ``split``; ``crf`` refines every frame (sync).
    """
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"max_frames must be at least 1, not {max_frames}")
    folder = open_labelled_folder(data_dir, split, hold_out_drive)
    samples = folder.samples[:max_frames]
    # The backend runs at the first frame's size; frames of other sizes are scaled to it and their scores back.
    image_size = read_rgb(samples[0].image_path).shape[:2]
    refiner = DenseCRFRefiner.from_parameters(crf) if crf is not None else None
    with Predictor(config, scales, image_size, refiner, plugins=plugins) as predictor:
        label_set = predictor.label_set
        folder.check_model_classes(label_set)
        log.info("evaluating %s on %d %s frames: %s", config.model, len(samples), folder.description, predictor.describe())
        # The truth's ignore id is the folder's where it has its own classes (CamVid 11, Cityscapes 255), else the model's.
        confusion = ConfusionMatrix.for_label_set(folder.label_set or label_set)
        with Progress(len(samples), "frames") as progress:
            for index, sample in enumerate(samples):
                image = read_rgb(sample.image_path)
                confusion.update(folder.truth(sample, image.shape), predictor.labels(image))
                progress.update(index + 1)
    if confusion.ignored and folder.label_set is None:  # in a user's masks, perhaps not what was meant (0/255 masks)
        total = confusion.ignored + int(confusion.counts.sum())
        log.info(
            "%.1f%% of the ground truth's pixels were not scored (ids of no class%s)", 100 * confusion.ignored / total,
            f", or the ignore id {confusion.ignore_index}" if confusion.ignore_index is not None else "",
        )
    return EvaluationResult.from_confusion(confusion, len(samples), label_set.names)
