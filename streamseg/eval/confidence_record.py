"""Where a fitted confidence calibration is kept: a model file's sidecar, or a JSON file beside built-in weights.

Both hold the same mapping, ``{temperature: float, curve: [256 ints], context_share: float, alert_below: float, fitted_on:
str}`` (``context_share`` only where it is not 0, so that a record written before it existed reads the same): in the
sidecar ``MODEL.streamseg.yaml`` under the key ``confidence``, in the JSON file as the whole
document. A JSON file shipped beside built-in weights also names them, ``weights_sha256`` (their
``state_dict_sha256``): a run takes it for those weights only. The sidecar is edited as text, so
that its other keys, their layout and its comments stay as the user wrote them; only a previous
``confidence:`` block is replaced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from streamseg.errors import ConfigError, OutputError
from streamseg.image.confidence import Calibration
from streamseg.modelfile import sidecar_path

CONFIDENCE_KEY = "confidence"
_TOP_LEVEL = re.compile(r"^\S")  # a line at column 0: the next top-level entry, or a comment of its own


def confidence_record(calibration: Calibration, fitted_on: str, weights_sha256: str | None = None) -> dict:
    """The mapping a model's confidence is described by; figures to 4 decimals, as a run reports them."""
    record = {"temperature": round(float(calibration.temperature), 4)}
    if calibration.curve is not None:
        record["curve"] = list(calibration.curve)
    if calibration.context_share:
        record["context_share"] = float(calibration.context_share)  # not rounded: T and the curve were fitted at this share
    if calibration.alert_below is not None:
        record["alert_below"] = round(float(calibration.alert_below), 4)
    record["fitted_on"] = str(fitted_on)
    if weights_sha256 is not None:
        record["weights_sha256"] = weights_sha256
    return record


def write_sidecar_confidence(model_path: Path, record: Mapping) -> Path:
    """``record`` under ``confidence:`` in ``model_path``'s sidecar (made if there is none), the sidecar's other keys kept."""
    path = sidecar_path(Path(model_path))
    text = _read(path) if path.is_file() else ""
    try:
        before = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]}); not changed") from None
    if not isinstance(before, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (labels:, input:, output:), not {type(before).__name__}; not changed")
    # Flow style for lists only: the curve's 256 values take a few wrapped lines, not 256.
    block = yaml.safe_dump({CONFIDENCE_KEY: dict(record)}, sort_keys=False, default_flow_style=None)
    kept = _without_block(text, CONFIDENCE_KEY)
    if kept and not kept.endswith("\n"):
        kept += "\n"
    updated = kept + block
    try:
        after = yaml.safe_load(updated)
    except yaml.YAMLError:
        after = None
    # The text edit must have changed that key alone: anything else (an unusual layout) is refused, not written.
    if not isinstance(after, dict) or _others(after) != _others(before):
        raise ConfigError(f"{path}: its {CONFIDENCE_KEY}: entry could not be replaced on its own; remove it and run again")
    _write(path, updated)
    return path


def write_confidence_json(path: Path, record: Mapping) -> Path:
    _write(Path(path), json.dumps(dict(record), indent=2) + "\n")
    return Path(path)


def _others(document: dict) -> dict:
    return {key: value for key, value in document.items() if key != CONFIDENCE_KEY}


def _without_block(text: str, key: str) -> str:
    """``text`` less its top-level ``key:`` entry: that line and the indented (or blank) lines under it."""
    lines = text.splitlines(keepends=True)
    kept, inside = [], False
    for line in lines:
        if inside and _TOP_LEVEL.match(line):
            inside = False
        if not inside and re.match(rf"^{re.escape(key)}\s*:", line):
            inside = True
        if not inside:
            kept.append(line)
    return "".join(kept)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from None
