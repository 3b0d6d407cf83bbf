"""Label sets: what a model's class ids mean (names) and how they are drawn (colours).

A run's label set comes from its model: CamVid's for the built-in networks, else the one a model
file's description names (``--labels cityscapes``, a list of names, a sidecar's ``labels:``).
Class ids are uint8 up to 255 classes and uint16 beyond (:func:`label_dtype`).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from streamseg import classes
from streamseg.errors import ConfigError

MAX_CLASSES = 65535  # class ids are held in uint16 at most
UINT8_CLASSES = 255  # up to this many classes, ids fit uint8 with room for an 'ignore' id


@dataclass(frozen=True)
class LabelSet:
    """Class names, one colour (RGB) per class, and the id ground truth uses for 'not labelled', if any."""

    name: str  # "camvid", "cityscapes", or "custom" for a model's own
    names: tuple[str, ...]
    palette: np.ndarray = field(compare=False)  # (len(names), 3) uint8 RGB
    ignore_index: int | None = None  # in ground-truth masks only; a network never outputs it

    def __post_init__(self) -> None:
        if not 0 < len(self.names) <= MAX_CLASSES:
            raise ConfigError(f"a label set needs 1 to {MAX_CLASSES} classes, not {len(self.names)}")
        palette = np.asarray(self.palette)
        if palette.shape != (len(self.names), 3):
            raise ConfigError(
                f"the palette has {len(palette)} colours for {len(self.names)} classes; give one RGB colour per class"
            )
        object.__setattr__(self, "palette", palette.astype(np.uint8))

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def dtype(self) -> np.dtype:
        return label_dtype(self.num_classes)


def label_dtype(num_classes: int) -> np.dtype:
    """uint8 for up to 255 classes, else uint16."""
    return np.dtype(np.uint8) if num_classes <= UINT8_CLASSES else np.dtype(np.uint16)


def distinct_palette(count: int) -> np.ndarray:
    """``count`` distinct RGB colours: hues spread by the golden ratio, three levels of brightness, the same every time."""
    colours = []
    for index in range(count):
        hue = (index * 0.618033988749895) % 1.0
        value = (0.95, 0.75, 0.55)[index % 3]
        saturation = (0.85, 0.65)[(index // 3) % 2]
        colours.append([round(255 * channel) for channel in colorsys.hsv_to_rgb(hue, saturation, value)])
    return np.array(colours, dtype=np.uint8).reshape(count, 3)


def custom_label_set(names: Sequence[str], palette: Sequence[Sequence[int]] | np.ndarray | None = None) -> LabelSet:
    """A model's own label set: ``names``, with ``palette`` or generated colours."""
    names = tuple(str(name) for name in names)
    if palette is None:
        palette = distinct_palette(len(names))
    palette = np.asarray(palette)
    if palette.ndim != 2 or palette.shape[-1] != 3:
        raise ConfigError(f"a palette is a list of RGB colours, not an array shaped {palette.shape}")
    if palette.size and (palette.min() < 0 or palette.max() > 255):
        raise ConfigError("palette colours are RGB values from 0 to 255")
    return LabelSet("custom", names, palette)


CAMVID = LabelSet("camvid", classes.CLASS_NAMES, classes.PALETTE, ignore_index=classes.IGNORE_INDEX)

# Cityscapes' 19 evaluated classes in train-id order, with the official names and colours.
CITYSCAPES = LabelSet(
    "cityscapes",
    (
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
        "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
    ),
    np.array(
        [
            (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
            (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
            (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
        ],
        dtype=np.uint8,
    ),
    ignore_index=255,
)

# Cityscapes' gtFine *_labelIds.png hold the 34 label ids; evaluation maps them to train ids (255: not evaluated).
CITYSCAPES_TRAIN_ID_OF_LABEL_ID: dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
    24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}


def cityscapes_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """A gtFine labelIds map as uint8 train ids, 255 where Cityscapes does not evaluate."""
    table = np.full(256, CITYSCAPES.ignore_index, dtype=np.uint8)
    for label_id, train_id in CITYSCAPES_TRAIN_ID_OF_LABEL_ID.items():
        table[label_id] = train_id
    return table[np.asarray(label_ids, dtype=np.uint8)]


LABEL_SETS: dict[str, LabelSet] = {"camvid": CAMVID, "cityscapes": CITYSCAPES}


def named_label_set(name: str) -> LabelSet:
    """A built-in label set by name; ConfigError naming the known ones otherwise."""
    try:
        return LABEL_SETS[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown label set {name!r}; built in: {', '.join(LABEL_SETS)}") from None
