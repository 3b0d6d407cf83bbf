"""A model's top-two margins on frames, at the network's own grid: what a run's confidence is made of.

The network runs at the size a run gives it (``--input-size``, else 480x360 for a built-in model
and a model file's own size), so that the temperature fitted here is the one a run needs; its raw
scores are not resized, and the truth is brought to their grid by nearest neighbour, as a run's
confidence map sits on the network's grid (``Frame.confidence``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamseg.config import DEFAULT_INPUT_SIZE, RunConfig
from streamseg.data.layouts import LabelledFolder, open_labelled_folder
from streamseg.data.samples import read_rgb
from streamseg.errors import ConfigError, InputError
from streamseg.eval.calibration import FrameMargins
from streamseg.eval.predictor import Predictor
from streamseg.image.confidence import top_two
from streamseg.image.preprocessing import to_model_input
from streamseg.image.resize import resize_labels
from streamseg.label_sets import LabelSet
from streamseg.modelfile import is_model_file
from streamseg.observability.progress import Progress
from streamseg.plugins import Plugins

log = logging.getLogger(__name__)


class NetworkMargins:
    """A model on a backend, built as eval builds it: RGB frame in, class ids and top-two margins at the network's grid out."""

    def __init__(self, config: RunConfig, plugins: Plugins | None = None) -> None:
        if config.input_size is None and not is_model_file(config.model):
            config = dataclasses.replace(config, input_size=DEFAULT_INPUT_SIZE)  # a run's size for a built-in model
        self._predictor = Predictor(config, (1.0,), config.input_size or DEFAULT_INPUT_SIZE, plugins=plugins)
        self.backend = self._predictor.backends[0]
        if self.backend.scores_from_class_ids:
            self.close()
            raise ConfigError(f"{config.model} gives class ids only: confidence needs a model that outputs class scores")

    @property
    def label_set(self) -> LabelSet:
        return self.backend.label_set

    def describe(self) -> str:
        return self._predictor.describe()

    def top_two(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class ids and the margins of the raw scores (h, w), at the network's output grid."""
        scores = self.backend.infer(to_model_input(image, self.backend.input_size))[0]
        return top_two(scores)

    def close(self) -> None:
        self._predictor.close()

    def __enter__(self) -> "NetworkMargins":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class LabelledMargins:
    """The margins of a labelled folder's frames, with what was scored and by what."""

    frames: list[FrameMargins]
    names: list[str]  # each frame's image file name
    description: str  # "CamVid val drive 0006R0"
    model: str  # the backend's description


def labelled_margins(network: NetworkMargins, folder: LabelledFolder, max_frames: int | None = None) -> LabelledMargins:
    """Every frame of ``folder`` (up to ``max_frames``) through ``network``; truth not in the scored classes does not count."""
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"max_frames must be at least 1, not {max_frames}")
    samples = folder.samples[:max_frames]
    folder.check_model_classes(network.label_set)
    classes = folder.label_set or network.label_set  # the truth's ignore id is the folder's where it has its own classes
    log.info("confidence of %d %s frames: %s", len(samples), folder.description, network.describe())
    frames = []
    with Progress(len(samples), "frames") as progress:
        for index, sample in enumerate(samples):
            image = read_rgb(sample.image_path)
            labels, margin = network.top_two(image)
            truth = resize_labels(folder.truth(sample, image.shape), labels.shape)
            frames.append(FrameMargins.of_labels(labels, margin, truth, classes.num_classes, classes.ignore_index))
            progress.update(index + 1)
    if not any(frame.labelled.any() for frame in frames):
        raise InputError(f"no pixel of {folder.description} has truth in the model's {classes.num_classes} classes")
    return LabelledMargins(frames, [sample.image_path.name for sample in samples], folder.description, network.describe())


def folder_margins(
    data_dir: Path | str, config: RunConfig, *, split: str | None = None, hold_out_drive: str | None = None,
    max_frames: int | None = None, plugins: Plugins | None = None,
) -> LabelledMargins:
    """``config``'s model on a labelled folder (CamVid, Cityscapes, or images/ and masks/; one split, one drive)."""
    folder = open_labelled_folder(data_dir, split, hold_out_drive)
    with NetworkMargins(config, plugins) as network:
        return labelled_margins(network, folder, max_frames)
