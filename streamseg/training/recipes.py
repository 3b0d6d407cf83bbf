"""Named training recipes: the settings a shipped model was trained with, so a run can repeat them by name.

A recipe fills the settings of ``TrainConfig`` that define how a model learns (augmentation,
loss, crop, schedule length); explicit options still override it. Each was compared on the
cross-drive fold (drive 0006R0 held out); the figures are in the model cards and BENCHMARKS.md.
"""

from __future__ import annotations

from streamseg.errors import ConfigError

# For unseen roads: whole 360x480 crops over a 0.5-2x scale range, and dusk-like and camera-like photometric
# changes (hue, blur, noise).
_ROAD_AUGMENTATION = {"crop": (360, 480), "scale_range": (0.5, 2.0), "jitter": 0.3, "hue": 0.05, "blur": 0.3, "noise": 0.03}

RECIPES: dict[str, dict] = {
    # TrainConfig's defaults, and the recipe of the shipped erfnet (2026-11-22, and since 2026-11-28 on
    # train+val, where it won the fold on the H200): 320x320 crops of frames scaled 0.5-1.5x, colour
    # jitter, ENet-weighted cross entropy.
    "baseline": {},
    # The road augmentation with OHEM, so thin classes keep getting gradient once road and sky are easy.
    "road": {**_ROAD_AUGMENTATION, "loss": "ohem"},
    # The road augmentation with the baseline's ENet-weighted cross entropy: OHEM alone cost 2.3 points
    # on the fold at 20 epochs (BENCHMARKS.md), so the augmentation is also tried without it.
    "road-ce": {**_ROAD_AUGMENTATION, "loss": "weighted-ce"},
    # The baseline's augmentation and loss in batches of 64 at Adam 4e-3: a GPU step costs about what a batch of 16
    # costs (the H200 was launch-bound at batch 16, 45% busy), so the same minutes buy 3.6x the epochs. On the fold,
    # 707 epochs in 202 s scored 44.8 on 0006R0, against 42.4 for baseline (195 epochs, batch 16, the same budget)
    # and 39.5 for the 2026-11-22 schedule (baseline, 100 epochs, batch 8, Adam 1e-3).
    "batch64": {"batch_size": 64, "learning_rate": 4e-3},
}


RECIPE_SETTINGS = frozenset(key for settings in RECIPES.values() for key in settings)


def recipe(name: str) -> dict:
    try:
        return dict(RECIPES[name])
    except KeyError:
        raise ConfigError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}") from None
