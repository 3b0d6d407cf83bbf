"""Weights are data: a record of the file, the preprocessing it expects and how it was made."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from streamseg.errors import InputError

_WEIGHTS_PACKAGE = "streamseg.weights"


@dataclass(frozen=True)
class Weights:
    """A trained state dict shipped with the package, and its model card (``<name>.json`` beside it)."""

    model: str
    path: Path
    card: dict

    def sha256(self) -> str:
        return file_sha256(self.path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bundled_weights(model: str) -> Weights | None:
    """The weights shipped for ``model``, or None when this project has not trained them yet."""
    folder = Path(str(resources.files(_WEIGHTS_PACKAGE)))
    state_path, card_path = folder / f"{model}.pt", folder / f"{model}.json"
    if not state_path.exists():
        return None
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    return Weights(model=model, path=state_path, card=card)


def bundled_crf_parameters(model: str) -> Path | None:
    """The CRF settings tuned for ``model`` by tools/tune_crf.py (``<model>-crf.yaml``), if they ship."""
    path = Path(str(resources.files(_WEIGHTS_PACKAGE))) / f"{model}-crf.yaml"
    return path if path.exists() else None


def read_state(path: Path) -> dict:
    """A state dict read safely (tensors only, no pickled code), from a shipped file or a training checkpoint."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"weights file {path} does not exist") from None
    except Exception as error:  # torch raises several types for a corrupt or hostile file
        raise InputError(f"cannot load weights {path}: {error}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a training checkpoint
    if not isinstance(state, dict):
        raise InputError(f"weights {path} hold a {type(state).__name__}, not a state dict")
    return state


def load_state(model: nn.Module, path: Path) -> None:
    """Loads a state dict and insists that every key matches."""
    state = read_state(path)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, AttributeError) as error:
        raise InputError(f"weights {path} do not fit this model: {str(error).splitlines()[0]}") from None


def load_encoder_state(model: nn.Module, path: Path, prefix: str = "encoder.") -> int:
    """Loads only the ``prefix`` tensors (another model's encoder); every one of the model's must be there.

    Returns how many tensors were loaded. The rest of the model keeps its initialisation.
    """
    state = read_state(path)
    wanted = {name: tensor for name, tensor in model.state_dict().items() if name.startswith(prefix)}
    if not wanted:
        raise InputError(f"this model has no {prefix}* tensors to start from {path}")
    unfit = [name for name, tensor in wanted.items() if name not in state or state[name].shape != tensor.shape]
    if unfit:
        raise InputError(f"weights {path} do not fit this model's encoder: {len(unfit)} tensors, first {unfit[0]}")
    model.load_state_dict({name: state[name].float() for name in wanted}, strict=False)
    return len(wanted)
