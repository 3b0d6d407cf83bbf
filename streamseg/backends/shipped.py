"""int8 models quantised when the weights were packaged, shipped beside them, so int8 needs no data of the user's.

Post-training quantisation needs real road frames to pick each activation's range; a user has
none, so ``tools/package_int8.py`` quantises every model that ships with weights (NNCF for
OpenVINO, static QDQ for ONNX Runtime, both calibrated on CamVid train frames) and stores each
result under ``streamseg/weights/int8/<model>-<kind>/`` in the engine cache's own entry format:
a manifest with the key and every file's SHA-256.

A shipped entry is used only for the weights it was quantised from (their SHA-256 is in its
key) and at the input size it was quantised at, and only after every file is verified; anything
else (other weights, another size, a changed file) falls back to calibrating from
``--calibration-data`` as before.
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields, replace
from pathlib import Path

from torch import nn

from streamseg.backends.engine_cache import (
    DYNAMIC_BATCH,
    MANIFEST_NAME,
    EngineKey,
    verify_entry,
)
from streamseg.backends.export import model_cache_name, state_dict_sha256
from streamseg.options import BackendOptions

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "weights" / "int8"
# Where the shipped artifacts came from, for messages: ``--backend auto`` says it picked them.
ORIGIN = "shipped int8, calibrated on CamVid train frames"


def shipped_entry_dir(model_name: str, kind: str, root: Path = SHIPPED_DIR) -> Path:
    """The folder of ``model_name``'s shipped ``kind`` entry ("openvino-int8", "ort-int8")."""
    return root / f"{model_name}-{kind}"


def find_shipped(wanted: EngineKey, root: Path = SHIPPED_DIR) -> Path | None:
    """The verified shipped entry for ``wanted``'s kind, model, weights and input size; None when there is none.

    The library versions, device, recipe and batch are those the entry records (they describe how
    it was made, not what it must match: a file with a fixed batch of one still runs, batches
    frame by frame); every other field of ``wanted`` must be equal.
    """
    entry = shipped_entry_dir(wanted.model_name, wanted.kind, root)
    try:
        recorded = json.loads((entry / MANIFEST_NAME).read_text())["key"]
        known = {field.name for field in fields(EngineKey)}
        recorded_key = EngineKey(**{name: value for name, value in recorded.items() if name in known})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("ignoring the shipped int8 model in %s: unreadable manifest (%s)", entry, type(error).__name__)
        return None
    expected = replace(
        wanted,
        library_version=recorded_key.library_version,
        device=recorded_key.device,
        recipe=recorded_key.recipe,
        batch=recorded_key.batch,
    )
    if replace(recorded_key, input_size=tuple(recorded_key.input_size)) != expected:
        return None  # quantised for other weights or another input size: not a fault, just not for this run
    problem = verify_entry(entry, expected)
    if problem is not None:
        log.warning("ignoring the shipped int8 model in %s: %s", entry, problem)
        return None
    return entry


def find_shipped_int8(
    kind: str, model: nn.Module, input_size: tuple[int, int], options: BackendOptions, root: Path = SHIPPED_DIR
) -> Path | None:
    """The verified shipped ``kind`` entry ("openvino-int8", "ort-int8") for ``model``'s weights at ``input_size``, or None."""
    wanted = EngineKey(
        kind=kind, model_name=model_cache_name(model, options), weights_sha256=state_dict_sha256(model),
        input_size=tuple(input_size), batch=DYNAMIC_BATCH, precision="int8", library_version="", device="",
    )
    return find_shipped(wanted, root)
