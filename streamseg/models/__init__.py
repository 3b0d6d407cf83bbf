"""Segmentation networks: builders, the registry of names, and loading of trained weights."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from streamseg.models.registry import MODELS, ModelSpec, ModelTable
from streamseg.models.weights import Weights, load_state
from streamseg.options import DEFAULT_MODEL

log = logging.getLogger(__name__)


def load_model(
    name: str, weights: Path | None = None, *, warn: bool = True, models: ModelTable = MODELS
) -> tuple[nn.Module, str]:
    """Builds model ``name`` of ``models`` (a run's table, with its plugins' models; default the built-ins)
    with ``weights`` (a file) or its bundled weights.

    Returns the model in eval mode and where its weights came from ("bundled weights erfnet.pt"). With no trained
    weights at all it says so clearly (a warning, unless ``warn`` is false): the architecture
    runs, but its labels mean nothing.
    """
    spec = models.get(name)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # untrained models are the same every start, so their cached engines are reused
        model = spec.build()
    if weights is not None:
        load_state(model, weights, model_name=name)
        origin = f"weights {weights}"
    elif spec.weights is not None:
        load_state(model, spec.weights.path, model_name=name)
        origin = f"bundled weights {spec.weights.path.name}"
    else:
        origin = "untrained weights"
        if warn:
            log.warning(
                "model %s has no trained weights in this build; it runs with random weights "
                "and its labels are meaningless (train with `streamseg train` or pass --weights)", name,
            )
    return model.eval(), origin


__all__ = ["DEFAULT_MODEL", "MODELS", "ModelSpec", "ModelTable", "Weights", "load_model"]
