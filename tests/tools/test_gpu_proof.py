"""The GPU proof's dry run: tools/gpu_proof.sh's steps on the CPU with tiny sizes, so the proof cannot rot without a GPU.

Each test runs the wrapper as the GPU machine would (bash, a fresh Python), into tmp_path, and reads the JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
STEPS = ["install", "tests", "parity", "model_fps", "end_to_end", "crf", "streams"]


def run_proof(out: Path, *arguments: str, budget_s: int = 470) -> tuple[subprocess.CompletedProcess, dict]:
    environment = dict(os.environ, PYTHON=sys.executable, GPU_PROOF_BUDGET_S=str(budget_s))
    completed = subprocess.run(
        ["bash", "tools/gpu_proof.sh", str(out), "--dry-run", *arguments],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=300, check=False,
    )
    report = json.loads((out / "gpu_proof.json").read_text())
    return completed, report


def numbers_in(value: object) -> list[float]:
    if isinstance(value, dict):
        return [number for item in value.values() for number in numbers_in(item)]
    if isinstance(value, list):
        return [number for item in value for number in numbers_in(item)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


@pytest.mark.slow
def test_dry_run_records_every_step_with_figures_or_a_reason(tmp_path: Path, tiny_camvid: Path) -> None:
    completed, report = run_proof(tmp_path / "out", "--data", str(tiny_camvid))

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert report["dry_run"] is True and report["passed"] is True
    assert list(report["steps"]) == STEPS
    for name, step in report["steps"].items():
        assert step["status"] in ("ok", "skipped"), (name, step)
        if step["status"] == "ok":
            assert numbers_in(step["figures"]) and step["wall_s"] >= 0, name
        else:
            assert step["reason"], name
    assert report["environment"]["versions"]["torch"] == torch.__version__
    assert report["wall_s"] < report["budget_s"]
    assert (tmp_path / "out" / "pytest.log").is_file() and (tmp_path / "out" / "install.tsv").is_file()

    # Without CUDA each step's CUDA side is skipped with the reason and its CPU side measured.
    steps = {name: step.get("figures", {}) for name, step in report["steps"].items()}

    assert steps["install"]["wrapper"][0]["status"] == "skipped"  # a dry run installs nothing
    assert steps["tests"]["counts"]["passed"] >= 2 and steps["tests"]["counts"].get("failed", 0) == 0
    parity = steps["parity"]["erfnet"]
    assert steps["parity"]["frames"] == 2 and 0 <= parity["torch_cpu_fp32"]["val_miou"] <= 1
    assert "dry run" in parity["cuda"]["skipped"]
    model_fps = steps["model_fps"]["erfnet"]
    assert "dry run" in model_fps["cuda_fp16"]["skipped"]
    assert all(model_fps["torch_cpu_fp32"][f"batch_{batch}"]["model_fps"] > 0 for batch in (1, 2))
    # The end-to-end figure is the package's own run over the image folder, to its max_frames (the folder's 8 images).
    end_to_end = steps["end_to_end"]
    assert end_to_end["source"]["images"] == 8 and end_to_end["source"]["size"] == "96x54" and end_to_end["source_only_fps"] > 0
    assert "dry run" in end_to_end["erfnet"]["cuda_fp16"]["skipped"]
    run = end_to_end["erfnet"]["torch_cpu_fp32"]
    assert run["run_frames"] == 8 and not run["stopped_early"] and run["run_seconds"] > 0 and run["run_fps"] > 0, run
    assert run["command"].startswith("streamseg run FOLDER") and run["described"].startswith("torch fp32")
    assert all(run["in_memory"][f"batch_{batch}"]["in_memory_fps"] > 0 for batch in (1, 2))
    crf = steps["crf"]
    assert "dry run" in crf["convcrf_cuda"]["skipped"]
    assert len(crf["convcrf_cpu"]) == 4 and all(row["ms_per_frame"] > 0 for row in crf["convcrf_cpu"].values())
    assert "ms_per_frame" in crf["pydensecrf"] or "not installed" in crf["pydensecrf"]["skipped"]
    streams = steps["streams"]
    assert "dry run" in streams["cuda"]["skipped"]
    for count in (1, 2):
        run = streams["torch_cpu"][f"streams_{count}"]
        assert run["aggregate_fps"] > 0 and len(run["per_stream_fps"]) == count and run["mean_batch"] >= 1, run
        assert run["source_only_fps"] > 0, run
    assert all(streams["torch_cpu"]["model_only"][f"batch_{batch}"]["model_fps"] > 0 for batch in (1, 2))


@pytest.mark.slow
def test_a_failing_step_is_recorded_and_the_others_still_run(tmp_path: Path, tiny_camvid: Path) -> None:
    (tiny_camvid / "valannot" / "f001.png").unlink()  # parity and crf cannot read this frame's labels

    completed, report = run_proof(tmp_path / "out", "--data", str(tiny_camvid), "--skip", "tests", "end_to_end", "streams")

    assert completed.returncode == 1
    statuses = {name: step["status"] for name, step in report["steps"].items()}
    assert statuses == {"install": "ok", "tests": "skipped", "parity": "error", "model_fps": "ok", "end_to_end": "skipped", "crf": "ok",
                        "streams": "skipped"}
    assert "f001.png" in report["steps"]["parity"]["error"]
    assert report["passed"] is False


@pytest.mark.slow
def test_a_spent_budget_skips_steps_with_the_reason(tmp_path: Path, tiny_camvid: Path) -> None:
    completed, report = run_proof(tmp_path / "out", "--data", str(tiny_camvid), budget_s=1)

    assert completed.returncode == 0
    assert [step["status"] for step in report["steps"].values()] == ["skipped"] * len(STEPS)
    assert all("budget" in step["reason"] for step in report["steps"].values())
