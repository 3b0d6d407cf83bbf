"""The one-call GPU trainer, run on the CPU in dry-run mode: a short run on a few frames lowers the loss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import pytest
import torch

from streamseg.models.registry import MODELS
from streamseg.sources.demo import DemoSource

ROOT = Path(__file__).resolve().parents[2]


def _demo_camvid(root: Path, frames: int = 8) -> Path:
    """A CamVid-layout folder of demo frames with their exact labels, two drives, frames as JPEG like a packed copy."""
    for split in ("train", "trainannot", "val", "valannot"):
        (root / split).mkdir(parents=True)
    for frame in DemoSource(width=64, height=48, frames=frames, seed=3):
        split = "train" if frame.index < frames - 2 else "val"
        name = f"{'0001TP' if frame.index % 2 else '0016E5'}_{frame.index:05d}"
        cv2.imwrite(str(root / split / f"{name}.jpg"), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        cv2.imwrite(str(root / f"{split}annot" / f"{name}.png"), frame.truth)
    return root


@pytest.mark.slow
def test_a_dry_run_trains_and_writes_weights_and_a_report(tmp_path):
    data = _demo_camvid(tmp_path / "camvid")
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "tools/gpu_train.py", str(out), "--data", str(data), "--dry-run", "--model", "erfnet-half",
         "--max-epochs", "12", "--budget-s", "600", "--lr", "1e-2", "--hold-out-drive", "0001TP"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads((out / "train.json").read_text())
    assert report["dry_run"] is True and report["device"] and report["epochs"] == 12
    assert report["frames"] == 4  # the 0016E5 frames of train+val; 0001TP is held out and scored
    assert report["held_out"] == "drive 0001TP" and 0.0 <= report["held_out_miou"] <= 1.0
    losses = [json.loads(line)["loss"] for line in (out / "run" / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 12 and sum(losses[-3:]) < 0.96 * sum(losses[:3])  # seeded, so the same every run
    model = MODELS.get("erfnet-half").build()
    model.load_state_dict(torch.load(out / "erfnet-half.pt", weights_only=True))


@pytest.mark.slow
def test_a_fixed_schedule_stopped_part_way_resumes_to_its_end(tmp_path):
    """A CPU run of a fixed schedule lasts hours: run again, the command picks up from the last epoch's checkpoint."""
    data = _demo_camvid(tmp_path / "camvid")
    out = tmp_path / "out"
    command = [sys.executable, "tools/gpu_train.py", str(out), "--data", str(data), "--dry-run", "--model", "erfnet-half"]
    for epochs in ("2", "3"):  # the first call stands for a run stopped after two epochs of three
        completed = subprocess.run([*command, "--epochs", epochs], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
        assert completed.returncode == 0, completed.stderr[-2000:]
    log = [json.loads(line) for line in (out / "run" / "log.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in log] == [1, 2, 3]  # resumed at epoch 3, not started again
    report = json.loads((out / "train.json").read_text())
    assert report["epochs"] == 3 and "probe_images_per_second" not in report  # a fixed schedule is not sized
    assert report["train_seconds"] == round(sum(record["seconds"] for record in log), 1)  # both calls' epochs


@pytest.mark.slow
def test_a_recipe_sets_its_batch_and_rate_and_the_command_line_overrides_them(tmp_path):
    data = _demo_camvid(tmp_path / "camvid")
    for extra, rate in (([], "0.004"), (["--lr", "3e-3"], "0.003")):
        out = tmp_path / f"out{len(extra)}"
        completed = subprocess.run(
            [sys.executable, "tools/gpu_train.py", str(out), "--data", str(data), "--dry-run", "--model", "erfnet-half",
             "--max-epochs", "1", "--recipe", "batch64", *extra],
            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        )
        assert completed.returncode == 0, completed.stderr[-2000:]
        assert json.loads((out / "train.json").read_text())["config"]["learning_rate"] == rate


@pytest.mark.slow
def test_packaging_ships_the_last_epoch_and_scores_the_fold_on_the_held_out_drive(tmp_path):
    data = _demo_camvid(tmp_path / "camvid")
    runs = {}
    for name, fold in (("final", []), ("fold", ["--hold-out-drive", "0001TP"])):
        runs[name] = tmp_path / name
        completed = subprocess.run(
            [sys.executable, "tools/gpu_train.py", str(runs[name]), "--data", str(data), "--dry-run", "--model", "erfnet-half",
             "--max-epochs", "2", *fold], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        )
        assert completed.returncode == 0, completed.stderr[-2000:]
    package = tmp_path / "weights"
    package.mkdir()
    (package / "erfnet-half.json").write_text(json.dumps(
        {"date": "2026-01-01", "summary": "the old weights", "cross_drive": {"miou": 0.99}, "later_fold_runs": {"kept": True}}
    ))
    completed = subprocess.run(
        [sys.executable, "tools/package_weights.py", "--model", "erfnet-half", "--gpu-run", str(runs["final"]),
         "--command", "the command", "--fold-run", str(runs["fold"]), "--hold-out-drive", "0001TP",
         "--data", str(data), "--weights-dir", str(package)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    shipped = torch.load(package / "erfnet-half.pt", weights_only=True)
    trained = torch.load(runs["final"] / "erfnet-half.pt", weights_only=True)
    assert all(torch.equal(shipped[name], trained[name]) for name in trained)  # the last epoch, as trained
    card = json.loads((package / "erfnet-half.json").read_text())
    assert card["epochs"] == 2 and card["command"] == "the command" and card["recipe"] == "baseline"
    assert 0 < card["median_epoch_seconds"] <= card["train_seconds"]
    assert card["previous_weights"] == "2026-01-01: the old weights" and card["later_fold_runs"] == {"kept": True}
    assert card["cross_drive"]["held_out"] == "drive 0001TP, never trained on" and card["cross_drive"]["miou"] != 0.99
    assert "on a drive it never saw (0001TP held out)" in card["summary"]


def test_packing_writes_jpeg_frames_and_png_labels_the_trainer_reads(tmp_path):
    from streamseg.data.camvid import CamVid, write_packed_copy

    source = tmp_path / "png"
    for split in ("train", "trainannot", "val", "valannot"):
        (source / split).mkdir(parents=True)
    for frame in DemoSource(width=64, height=48, frames=3):
        split = "train" if frame.index < 2 else "val"
        cv2.imwrite(str(source / split / f"0001TP_{frame.index:05d}.png"), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(source / f"{split}annot" / f"0001TP_{frame.index:05d}.png"), frame.truth)
    assert write_packed_copy(source, tmp_path / "packed", "train+val") == 3
    packed, original = CamVid(tmp_path / "packed", "train+val"), CamVid(source, "train+val")
    assert [s.image_path.suffix for s in packed.samples] == [".jpg"] * 3
    for a, b in zip(packed.labels, original.labels):
        assert (a == b).all()  # labels are copied exactly
    for a, b in zip(packed.images, original.images):
        assert abs(a.astype(int) - b.astype(int)).mean() < 6  # JPEG q90 is close


@pytest.mark.parametrize("fold_epochs", [None, "3"])
@pytest.mark.slow
def test_the_fold_then_final_script_trains_the_fold_winner_on_all_frames_for_its_epochs(tmp_path, fold_epochs):
    data = _demo_camvid(tmp_path / "camvid")
    out = tmp_path / "out"
    environment = {
        **os.environ, "PYTHON": sys.executable, "MODEL": "erfnet-half", "HOLD_OUT": "0001TP",
        "RECIPES_TO_TRY": "baseline road-ce", "FOLD_BUDGET_S": "60", "FINAL_BUDGET_S": "60", "OMP_NUM_THREADS": "1",
        "REFERENCE": "--recipe baseline --epochs 2 --lr 1e-3",
        **({"FOLD_EPOCHS": fold_epochs} if fold_epochs else {}),
    }
    completed = subprocess.run(
        ["bash", "tools/gpu_fold_then_final.sh", str(out), "--dry-run", "--data", str(data)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=environment, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:] + completed.stdout[-2000:]
    with tarfile.open(out / "folds.tar") as folds:
        names = folds.getnames()
        reports = {name: json.load(folds.extractfile(f"fold-{name}/train.json")) for name in ("baseline", "road-ce")}
        reference = json.load(folds.extractfile("fold-reference/train.json"))
    # The yardstick trained on the same fold, quoted, and never a candidate.
    assert reference["epochs"] == 2 and reference["held_out"] == "drive 0001TP"
    assert "fold reference (today's recipe): 2 epochs" in completed.stderr
    chosen = max(reports, key=lambda name: reports[name]["held_out_miou"])
    if fold_epochs:  # equal epochs, not equal time
        assert [report["epochs"] for report in reports.values()] == [int(fold_epochs)] * 2
    assert f"chosen on the fold: recipe {chosen}" in completed.stdout
    # The chosen fold's weights and the yardstick's beside the tar (the device tool returns no file over 16 MiB), no others.
    assert not [name for name in names if name.endswith(".pt")]
    assert sorted(path.name for path in out.glob("*.pt")) == sorted([f"fold-{chosen}-erfnet-half.pt", "fold-reference-erfnet-half.pt"])
    with tarfile.open(out / "final.tar") as final:
        report = json.load(final.extractfile("final/train.json"))
        assert "final/erfnet-half.pt" in final.getnames()
    assert report["recipe"] == chosen and report["epochs"] == reports[chosen]["epochs"]
    assert report["frames"] == 8 and "held_out" not in report  # all of train+val, nothing held out


@pytest.mark.slow
def test_a_run_of_the_demo_scene_never_imports_pyav(tmp_path):
    # The GPU machine has no PyAV: the streams proof there assembles demo streams, so nothing on that path may need it.
    program = (
        "import sys; sys.modules['av'] = None\n"  # any import of av now raises ImportError
        "from streamseg.config import config_from_values\n"
        "from streamseg.pipeline.assemble import assemble_run\n"
        "config = config_from_values({'streams': [{'name': 'a', 'source': 'demo:96x64'}, {'name': 'b', 'source': 'demo:96x64'}],"
        " 'model': 'erfnet-half', 'backend': 'torch', 'input_size': (48, 64), 'max_frames': 3})\n"
        "with assemble_run(config) as streams:\n"
        "    print('frames', streams.run().frames)\n"
    )
    completed = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "frames 6" in completed.stdout
