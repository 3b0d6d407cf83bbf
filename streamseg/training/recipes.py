"""Named training recipes: the settings a shipped model was trained with, so a run can repeat them by name.

A recipe fills the settings of ``TrainConfig`` that define how a model learns (augmentation,
loss, crop, schedule length); explicit options still override it. Each was compared on the
cross-drive fold (drive 0006R0 held out); the figures are in the model cards and in BENCHMARKS.md,
Quality on an unseen road.
"""

from __future__ import annotations

from streamseg.errors import ConfigError

# For unseen roads: whole 360x480 crops over a 0.5-2x scale range, and dusk-like and camera-like photometric
# changes (hue, blur, noise).
_ROAD_AUGMENTATION = {"crop": (360, 480), "scale_range": (0.5, 2.0), "jitter": 0.3, "hue": 0.05, "blur": 0.3, "noise": 0.03}

RECIPES: dict[str, dict] = {
    # TrainConfig's defaults, and the recipe of the shipped erfnet (trained on train+val, after it won the
    # fold): 320x320 crops of frames scaled 0.5-1.5x, colour jitter, ENet-weighted cross entropy.
    "baseline": {},
    # The road augmentation with OHEM, so thin classes keep getting gradient once road and sky are easy.
    "road": {**_ROAD_AUGMENTATION, "loss": "ohem"},
    # The road augmentation with the baseline's ENet-weighted cross entropy: OHEM alone lost points on
    # the fold, so the augmentation is also tried without it.
    "road-ce": {**_ROAD_AUGMENTATION, "loss": "weighted-ce"},
    # The baseline's augmentation and loss in batches of 64 at Adam 4e-3, for a GPU: where small batches leave it
    # launch-bound, a step of 64 costs about what a step of 16 does, so the same minutes buy several times the
    # epochs; the learning rate grows with the batch. It beat baseline on the fold for the same time budget
    # (BENCHMARKS.md, Quality on an unseen road).
    "batch64": {"batch_size": 64, "learning_rate": 4e-3},
}


RECIPE_SETTINGS = frozenset(key for settings in RECIPES.values() for key in settings)


def recipe(name: str) -> dict:
    try:
        return dict(RECIPES[name])
    except KeyError:
        raise ConfigError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}") from None
