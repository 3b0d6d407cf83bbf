"""A pip-installed plugin's model, backend, source, sink, refiner and flow estimator run by name in `streamseg run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FRAMES = 7
TIMEOUT_S = 300  # a bound for a run of a few seconds, not a timing check


@pytest.fixture(scope="module")
def plugin_env(install_plugin) -> dict[str, str]:
    """The environment of a process that has tests/plugins/tiny_parts_plugin installed."""
    site = str(install_plugin("tiny_parts_plugin"))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [site, os.environ.get("PYTHONPATH")]))}


def streamseg(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streamseg", *args], capture_output=True, text=True, env=env, timeout=TIMEOUT_S
    )


@pytest.mark.slow
def test_one_run_uses_the_plugins_model_backend_source_sink_refiner_and_flow_estimator(plugin_env, tmp_path: Path) -> None:
    record, refined, estimated = tmp_path / "record.jsonl", tmp_path / "refine.log", tmp_path / "flow.log"
    completed = streamseg(
        "run", f"tiny-frames:{FRAMES}", "--backend", "tiny-torch", "--model", "tiny-net", "--input-size", "160x120",
        "--crf", "sync", "--refiner", f"tiny-constant:label=5,log={refined}",
        "--flow", f"tiny-still:log={estimated}", "--sink", f"tiny-record:{record}",
        env=plugin_env,
    )
    assert completed.returncode == 0, completed.stderr
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    # The sink saw every frame of the plugin's source, with the rate the source gave, in the run's context.
    assert [line["index"] for line in lines] == list(range(FRAMES))
    assert all(line["size"] == [96, 64] and line["pixel"] == [10, 200, 30] and line["fps"] == 12.5 for line in lines)
    # The refiner ran on every frame (sync), and its labels are what reached the sink.
    assert len(refined.read_text().splitlines()) == FRAMES
    assert all(line["labels"] == [5] for line in lines)
    # The smoother asked the plugin's estimator for flow between frames.
    assert estimated.read_text().startswith("estimate ")
    # The network was the plugin's model on the plugin's backend.
    assert "model tiny-net (untrained weights), backend tiny-torch" in completed.stderr


@pytest.mark.slow
def test_a_plugins_model_and_backend_segment_a_built_in_source(plugin_env, tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    completed = streamseg(
        "run", "demo:160x120", "--max-frames", "4", "--model", "tiny-net", "--backend", "tiny-torch",
        "--precision", "fp32", "--input-size", "160x120", "--sink", f"tiny-record:{record}",
        env=plugin_env,
    )
    assert completed.returncode == 0, completed.stderr
    assert "backend tiny-torch fp32 at 160x120" in completed.stderr
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    # tiny-net puts class 3 ahead everywhere: every frame's labels are its, not a built-in model's.
    assert len(lines) == 4 and all(line["labels"] == [3] for line in lines)


@pytest.mark.slow
def test_plugins_lists_each_part_with_its_origin(plugin_env) -> None:
    completed = streamseg("plugins", env=plugin_env)
    assert completed.returncode == 0, completed.stderr
    rows = {tuple(line.split()[:2]): line for line in completed.stdout.splitlines()}
    for table, name in [("sources", "tiny-frames"), ("sinks", "tiny-record"), ("refiners", "tiny-constant"),
                        ("flow_estimators", "tiny-still"), ("models", "tiny-net"), ("backends", "tiny-torch")]:
        assert "plugin tiny-parts (tiny-parts-plugin 0.1.0)" in rows[(table, name)]
    # The built-ins are listed from the same tables.
    for table, name in [("sources", "demo"), ("sources", "rtsp"), ("sinks", "video-file"), ("refiners", "dense-crf"),
                        ("models", "erfnet"), ("backends", "torch")]:
        assert "built-in" in rows[(table, name)]


@pytest.mark.slow
def test_an_unknown_sink_name_is_a_one_line_error(plugin_env, tmp_path: Path) -> None:
    completed = streamseg(
        "run", "tiny-frames:2", "--backend", "torch", "--model", "erfnet-half", "--input-size", "160x120",
        "--sink", f"nope:{tmp_path / 'x'}", env=plugin_env,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1].startswith("streamseg: error: unknown sink 'nope'; known: video-file, jsonl")
