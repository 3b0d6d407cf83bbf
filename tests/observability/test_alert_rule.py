"""The README's Prometheus rule for unreliable labels is valid, and fires for the stream whose accuracy is low.

Checked by Prometheus's own ``promtool`` (the ``prometheus`` package, which tools/install_test_deps.sh
installs), on the rule exactly as the README gives it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"

RULE_TEST = """\
rule_files: [rule.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'streamseg_predicted_accuracy{stream="hills"}'
        values: '0.6x40 0.9x40'
      - series: 'streamseg_predicted_accuracy{stream="street"}'
        values: '0.9x80'
    alert_rule_test:
      - eval_time: 4m  # low, but not yet for 5 minutes
        alertname: StreamsegLabelsUnreliable
        exp_alerts: []
      - eval_time: 20m
        alertname: StreamsegLabelsUnreliable
        exp_alerts:
          - exp_labels: {severity: warning, stream: hills}
            exp_annotations:
              summary: "stream hills: labels unreliable (predicted accuracy 0.60)"
              description: "The road looks unlike the model's training data; its labels are likely wrong."
      - eval_time: 70m  # high again for half an hour
        alertname: StreamsegLabelsUnreliable
        exp_alerts: []
"""


def readme_rule() -> str:
    """The YAML block of the README's section on alerting on unreliable labels."""
    text = README.read_text()
    section = text[text.index("### Alerting on unreliable labels"):]
    start = section.index("```yaml\n") + len("```yaml\n")
    return section[start:section.index("```", start)]


def test_the_readme_rule_fires_for_the_low_stream_only_while_it_is_low(tmp_path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed; run tools/install_test_deps.sh (as root) to install it")
    (tmp_path / "rule.yml").write_text(readme_rule())
    (tmp_path / "test.yml").write_text(RULE_TEST)
    checked = subprocess.run([promtool, "check", "rules", "rule.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr
