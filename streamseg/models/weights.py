"""Weights are data: a record of the file, the preprocessing it expects and how it was made."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from streamseg.image.confidence import UNCALIBRATED, Calibration
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


def bundled_confidence(model: str, weights_sha256: str) -> Calibration:
    """The confidence calibration shipped for ``model`` (``<model>-confidence.json``) when it was fitted for the weights
    of this digest (``export.state_dict_sha256``; its ``weights_sha256``), else T = 1: other weights, such as a user's
    own or new ones shipped before their calibration was refitted, never run under another model's calibration."""
    path = Path(str(resources.files(_WEIGHTS_PACKAGE))) / f"{model}-confidence.json"
    if not path.exists():
        return UNCALIBRATED
    record = json.loads(path.read_text())
    if record.get("weights_sha256") != weights_sha256:
        return UNCALIBRATED
    return Calibration.from_record(record, f"shipped: {record.get('fitted_on', path.name)}")


def read_state_file(path: Path) -> object:
    """What ``torch.save`` wrote to ``path``, read safely (tensors and plain containers, no pickled code)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. torch's note on a pickle protocol: not the user's business
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"weights file {path} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"weights {path} is a folder; give the .pt file") from None
    except OSError as error:
        raise InputError(f"cannot read weights {path}: {error.strerror or error}") from None
    except Exception as error:  # torch raises several types for a corrupt, foreign or hostile file
        raise InputError(f"cannot load weights {path}: {_why_unloadable(path, error)}") from None
    return state


def read_state(path: Path) -> dict:
    """A state dict read safely (tensors only, no pickled code), from a shipped file or a training checkpoint."""
    state = read_state_file(path)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a training checkpoint
    if not isinstance(state, dict):
        raise InputError(f"weights {path} hold a {type(state).__name__}, not a state dict")
    not_tensors = [str(name) for name, value in state.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise InputError(f"weights {path} are not a state dict: {not_tensors[0]!r} is not a tensor")
    return state


def _why_unloadable(path: Path, error: Exception) -> str:
    """One line on why torch.load refused a file, in place of its own advice (which ends in weights_only=False)."""
    with open(path, "rb") as handle:
        is_zip = handle.read(4) == b"PK\x03\x04"  # what torch.save writes
    if not is_zip:
        return "not a PyTorch weights file (a state dict saved by torch.save)"
    if isinstance(error, pickle.UnpicklingError):
        names = re.findall(r"GLOBAL ([\w.]+)", str(error))
        found = f" ({names[0]})" if names else ""
        return f"it holds Python objects{found} besides tensors; only plain state dicts load, no code from a file runs"
    return "the file is truncated or damaged"


def describe_mismatch(model: nn.Module, state: dict) -> str | None:
    """What keeps ``state`` from loading into ``model``: missing and unexpected names, different shapes; None if it fits."""
    expected = model.state_dict()
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    reshaped = [name for name in expected if name in state and getattr(state[name], "shape", None) != expected[name].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:2])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:2])})")
    if reshaped:
        name = reshaped[0]
        problems.append(
            f"{len(reshaped)} of another shape (e.g. {name}: {_shape(state[name])} in the file, {_shape(expected[name])} in the model)"
        )
    return ", ".join(problems) or None


def _shape(tensor: object) -> str:
    if not isinstance(tensor, torch.Tensor):
        return f"a {type(tensor).__name__}"
    return "x".join(str(side) for side in tensor.shape) or "scalar"


def load_state(model: nn.Module, path: Path, model_name: str | None = None) -> None:
    """Loads a state dict and insists that every key matches; else one line naming the model and what differs."""
    state = read_state(path)
    problem = describe_mismatch(model, state)
    if problem is not None:
        name = model_name or type(model).__name__
        raise InputError(f"weights {path} do not fit model {name}: {problem}")
    model.load_state_dict({k: v.float() for k, v in state.items()})


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
