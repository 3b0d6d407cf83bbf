"""The fitted calibration written into a model file's sidecar: only the confidence: entry changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from streamseg.errors import ConfigError
from streamseg.eval.confidence_record import confidence_record, write_confidence_json, write_sidecar_confidence
from streamseg.image.confidence import Calibration

CURVE = tuple(max(0, 2 * level - 255) for level in range(256))
RECORD = confidence_record(Calibration(1.83456, 0.812345, "fitted", CURVE), "CamVid val, 101 frames")


def test_the_record_is_rounded_as_a_run_reports() -> None:
    assert RECORD == {"temperature": 1.8346, "curve": list(CURVE), "alert_below": 0.8123, "fitted_on": "CamVid val, 101 frames"}
    assert confidence_record(Calibration(2.0), "frames") == {"temperature": 2.0, "fitted_on": "frames"}


def test_the_record_reads_back_as_the_calibration() -> None:
    calibration = Calibration.from_record(RECORD, "the record")
    assert (calibration.temperature, calibration.curve, calibration.alert_below) == (1.8346, CURVE, 0.8123)


def test_a_context_share_is_kept_in_the_record_and_read_back() -> None:
    record = confidence_record(Calibration(2.0, context_share=0.35), "frames")
    assert record == {"temperature": 2.0, "context_share": 0.35, "fitted_on": "frames"}
    assert Calibration.from_record(record, "the record").context_share == 0.35
    assert Calibration.from_record(RECORD, "the record").context_share == 0.0  # a record without one: the margin alone


def test_a_model_without_a_sidecar_gets_one(tmp_path: Path) -> None:
    path = write_sidecar_confidence(tmp_path / "net.onnx", RECORD)
    assert path == tmp_path / "net.streamseg.yaml"
    assert yaml.safe_load(path.read_text()) == {"confidence": RECORD}


@pytest.mark.parametrize("old", [
    "confidence:\n  temperature: 3.0\n  alert_below: 0.5\n\n  fitted_on: old frames\n",
    "confidence: {temperature: 3.0, alert_below: 0.5, fitted_on: old frames}\n",
])
def test_a_previous_entry_is_replaced_and_the_rest_kept_as_written(tmp_path: Path, old: str) -> None:
    before = "# my model\nlabels: [a, b]\n" + old + "# the input, as exported\ninput: {scale: 0.5}\noutput:\n  kind: scores\n"
    (tmp_path / "net.streamseg.yaml").write_text(before)
    text = write_sidecar_confidence(tmp_path / "net.onnx", RECORD).read_text()
    assert len(text.splitlines()) < 40  # the curve's values in a few wrapped lines, not one a line
    assert text.startswith("# my model\nlabels: [a, b]\n# the input, as exported\ninput: {scale: 0.5}\noutput:\n  kind: scores\n")
    assert text.count("confidence:") == 1
    assert yaml.safe_load(text) == {"labels": ["a", "b"], "input": {"scale": 0.5}, "output": {"kind": "scores"}, "confidence": RECORD}


def test_a_sidecar_that_is_not_a_mapping_is_left_alone(tmp_path: Path) -> None:
    sidecar = tmp_path / "net.streamseg.yaml"
    sidecar.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        write_sidecar_confidence(tmp_path / "net.onnx", RECORD)
    sidecar.write_text("labels: [a\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        write_sidecar_confidence(tmp_path / "net.onnx", RECORD)
    assert sidecar.read_text() == "labels: [a\n"


def test_the_json_file_holds_the_record_alone(tmp_path: Path) -> None:
    path = write_confidence_json(tmp_path / "erfnet-confidence.json", RECORD)
    assert json.loads(path.read_text()) == RECORD


def test_the_json_file_is_what_confidence_curve_takes(tmp_path: Path) -> None:
    from streamseg.modelfile.description import parse_field

    path = write_confidence_json(tmp_path / "fold-confidence.json", RECORD)
    assert parse_field("confidence_curve", str(path), "--confidence-curve") == CURVE
    assert parse_field("confidence_curve", json.dumps(list(CURVE)), "--confidence-curve") == CURVE
    with pytest.raises(ConfigError, match=r"^confidence-curve from --confidence-curve: expected a readable \.json file"):
        parse_field("confidence_curve", str(tmp_path / "missing.json"), "--confidence-curve")
    with pytest.raises(ConfigError, match="256 values"):
        parse_field("confidence_curve", "[1, 2, 3]", "--confidence-curve")
