"""The confidence of a CRF's result: its marginals' top class against the runner-up, as the network's is.

The network's confidence is ``sigmoid((s1 - s2) / T)`` of its two highest scores, which is
``p1 / (p1 + p2)`` of its (tempered) softmax. A CRF ends with class marginals, so its result's
confidence is that same figure of the marginals' two highest probabilities, held in the same
form (uint8, ``round(255 p)``), at the grid the CRF ran on.

The marginals are not calibrated: the temperature and curve are fitted on the network's scores, and
mean-field inference makes the marginals much surer than those scores (the pairwise terms pull every
pixel towards its neighbours' class). Alone they overstate how right the labels are by far, so the
CRF stage bounds them, per pixel, by the network's calibrated confidence (``stages.refine``).

numpy only: CRF worker processes import this module.
"""

from __future__ import annotations

import numpy as np

from streamseg.image.confidence import CONFIDENCE_SCALE, top_two


def marginal_confidence(marginals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class ids (argmax, first wins a tie) and uint8 confidence ``round(255 p1 / (p1 + p2))`` of (C, h, w) marginals.

    The best and second probabilities come from ``top_two``'s one pass (its margin is p1 - p2), and one
    more reduction for p1: then p1 + p2 = 2 p1 - margin, never under p1.
    """
    labels, margin = top_two(marginals)
    best = marginals.max(axis=0).astype(np.float32, copy=False)
    both = 2.0 * best - margin
    np.maximum(both, np.finfo(np.float32).tiny, out=both)  # all-zero marginals (never a softmax's) give 0, not NaN
    probability = np.divide(best, both, dtype=np.float32)
    probability *= CONFIDENCE_SCALE
    return labels, np.rint(probability).astype(np.uint8)


def refine_with_confidence(refiner, image: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``refiner``'s labels (H, W) and their confidence (uint8 at the grid it refined on), or None for a refiner
    that gives none (one with ``refine`` only, such as a plugin's): its frames keep the network's confidence."""
    given = getattr(refiner, "refine_with_confidence", None)
    if given is None:
        return refiner.refine(image, probabilities), None
    return given(image, probabilities)
