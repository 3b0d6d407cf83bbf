"""The built-in erfnet ships a confidence calibration and an alert level for its weights; a run takes them for those
weights only, unless told otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import streamseg.weights
from streamseg.backends.export import state_dict_sha256
from streamseg.config import config_from_values
from streamseg.image.confidence import UNCALIBRATED, Calibration
from streamseg.models import load_model
from streamseg.models.weights import bundled_confidence
from streamseg.pipeline.assemble import built_in_calibration

WEIGHTS = Path(streamseg.weights.__file__).parent
SHIPPED = WEIGHTS / "erfnet-confidence.json"


@pytest.fixture(scope="module")
def erfnet() -> torch.nn.Module:
    return load_model("erfnet", warn=False)[0]


def shipped_record() -> dict:
    return json.loads(SHIPPED.read_text())


def test_the_shipped_record_is_for_the_shipped_weights_and_fitted_on_a_drive_their_recipe_never_trained_on(erfnet) -> None:
    # New weights shipped without refitting fail here (and would run uncalibrated): tools/confidence_report.py --for-weights.
    record = shipped_record()
    assert record["weights_sha256"] == state_dict_sha256(erfnet)
    shipped = bundled_confidence("erfnet", record["weights_sha256"])
    assert shipped == Calibration(
        record["temperature"], record["alert_below"], shipped.source, tuple(record["curve"]), record.get("context_share", 0.0),
    )
    assert 0.5 < shipped.alert_below < 1
    assert "0006R0" in record["fitted_on"] and record["fitted_on"] in shipped.source  # the start-up line says where it came from


def test_a_run_of_the_shipped_weights_takes_it_given_or_not(erfnet) -> None:
    shipped = bundled_confidence("erfnet", state_dict_sha256(erfnet))
    assert shipped.curve is not None
    assert built_in_calibration(config_from_values({"source": "demo"}), erfnet) == shipped
    same_file = config_from_values({"source": "demo", "weights": WEIGHTS / "erfnet.pt"})
    assert built_in_calibration(same_file, load_model("erfnet", same_file.weights)[0]) == shipped


def test_other_weights_run_uncalibrated_and_a_model_without_a_file_too(tmp_path: Path, erfnet) -> None:
    other = load_model("erfnet", warn=False)[0]
    with torch.no_grad():
        next(other.parameters()).mul_(1.01)  # one's own weights: the same network, fine-tuned a little
    path = tmp_path / "mine.pt"
    torch.save(other.state_dict(), path)
    mine = config_from_values({"source": "demo", "weights": path})
    assert built_in_calibration(mine, load_model("erfnet", path)[0]) == UNCALIBRATED
    deeplab = config_from_values({"source": "demo", "model": "deeplab"})
    assert built_in_calibration(deeplab, load_model("deeplab")[0]) == UNCALIBRATED


@pytest.mark.parametrize("with_curve", [False, True])
def test_a_temperature_from_the_command_line_runs_without_the_shipped_curve_unless_one_is_given(with_curve: bool, erfnet) -> None:
    curve = list(range(256))
    values = {"source": "demo", "temperature": 2.5} | ({"confidence_curve": json.dumps(curve)} if with_curve else {})
    calibration = built_in_calibration(config_from_values(values), erfnet)
    assert calibration.temperature == 2.5
    assert calibration.curve == (tuple(curve) if with_curve else None)
    assert calibration.alert_below == shipped_record()["alert_below"]  # the alert level is a predicted accuracy: it stays
