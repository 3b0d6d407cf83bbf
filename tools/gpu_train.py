"""Trains a model on a GPU machine in one call, sized to a time budget; the same trainer as ``streamseg train``.

Here (once, with ../shared/data): pack CamVid train+val as JPEG q90 + PNG labels into a git-ignored folder
(about 27 MB, which travels along with the code):

    python tools/gpu_train.py --pack-into .camvid

On the GPU machine (Python with torch and CUDA, OpenCV, numpy; nothing else is needed), with the device tool:

    run  command: python tools/gpu_train.py "$OUT" --data .camvid   carry: [".camvid"]   timeout_s: 540

It loads every frame onto the GPU as uint8, times a few batches (augmentation on the GPU, bf16 autocast,
channels-last, fused Adam), sizes the number of epochs to what is left of ``--budget-s`` (capped by
``--max-epochs``), trains that fixed schedule and writes into OUT: ``MODEL.pt`` (the last epoch's weights,
in the package's format), ``train.json`` (device, versions, epochs, seconds, epochs per second, images per
second, the recipe, the held-out score if a drive was held out), and the run folder ``run/`` (log.jsonl,
last.pt every few epochs, so a stopped run still leaves weights).

Without a GPU, the same fixed schedule runs on the CPU (in bf16 where the CPU has it natively, else fp32), for hours,
with a checkpoint every epoch; the same command again resumes it from ``OUT/run/last.pt`` (pause it with SIGSTOP while
benchmarking):

    nohup python tools/gpu_train.py OUT --data ../shared/data/camvid --recipe batch64 --epochs 707 &

Anywhere, on the CPU, on a few frames (what ``make test`` runs, so the trainer cannot rot):

    python tools/gpu_train.py OUT --data CAMVID --dry-run
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # streamseg from this checkout, installed or not

from streamseg.cpu import cpu_has_native_bf16, cpu_model_name
from streamseg.data.camvid import write_packed_copy
from streamseg.training.recipes import RECIPES, recipe
from streamseg.training.trainer import TrainConfig, Trainer

PROBE_BATCHES = 12  # timed after 3 warm-up batches (cuDNN picks its kernels on the first ones)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", type=Path, help="output folder (the device tool's $OUT)")
    parser.add_argument("--data", type=Path, default=Path(".camvid"), help="CamVid layout, PNG or packed JPEG frames")
    parser.add_argument("--pack-into", type=Path, help="write a packed copy of --data's train+val here and stop")
    parser.add_argument("--model", default="erfnet")
    parser.add_argument("--recipe", default="baseline", choices=sorted(RECIPES), help="default baseline, the fold's choice")
    parser.add_argument("--split", default="train+val", help="training frames (train+val: all 468)")
    parser.add_argument("--hold-out-drive", help="never train on this drive; score on it (cross-drive validation)")
    parser.add_argument("--budget-s", type=float, default=420.0, help="wall time for everything, loading included")
    parser.add_argument("--max-epochs", type=int, help="cap on the epochs (default 3000; 2 in a dry run)")
    parser.add_argument("--epochs", type=int, help="exactly this many epochs, whatever the budget (a schedule fixed on a fold)")
    parser.add_argument("--batch-size", type=int, help="default: the recipe's, else 16")
    parser.add_argument("--lr", type=float, help="Adam's base rate, poly-decayed (default: the recipe's, else 2e-3)")
    parser.add_argument("--save-every", type=int, help="epochs between checkpoints of the run (default 25; on a CPU, 1)")
    parser.add_argument("--dry-run", action="store_true", help="CPU, a few 32x32 crops, 2 epochs at most")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    if args.pack_into is not None:
        data = args.data if args.data != Path(".camvid") else Path("../shared/data/camvid")
        count = write_packed_copy(data, args.pack_into, "train+val")
        size = sum(path.stat().st_size for path in args.pack_into.rglob("*") if path.is_file())
        print(f"packed {count} CamVid frames into {args.pack_into} ({size / 1e6:.1f} MB)")
        return 0
    if args.out is None:
        parser.error("name an output folder (or --pack-into FOLDER)")

    device = "cuda" if torch.cuda.is_available() and not args.dry_run else "cpu"
    # The recipe's settings, then the command line's; batch 16 and Adam 2e-3 where neither says (a GPU's defaults,
    # where `streamseg train` on a CPU has 8 and 1e-3).
    settings = {"batch_size": 16, "learning_rate": 2e-3} | recipe(args.recipe)
    settings.update({name: value for name, value in (("batch_size", args.batch_size), ("learning_rate", args.lr)) if value is not None})
    if args.dry_run:
        settings.update(crop=(32, 32), batch_size=2)
    config = TrainConfig(
        model=args.model, data=args.data, out=args.out / "run", device=device,
        bf16=device == "cpu" and not args.dry_run and cpu_has_native_bf16(),  # emulated bf16 trained 10x slower
        train_split=args.split,
        hold_out_drive=args.hold_out_drive, eval_every=50 if not args.dry_run else 1,
        save_every=args.save_every or (25 if device == "cuda" else 1),
        **settings,
    )
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick the fastest kernels once
    report: dict = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"), "dry_run": args.dry_run,
        "device": torch.cuda.get_device_name() if device == "cuda" else cpu_model_name(),
        "torch": torch.__version__, "python": platform.python_version(), "recipe": args.recipe,
    }
    # A fixed schedule (--epochs) has nothing to size, so no probe: on a CPU it takes minutes, at every resume.
    epochs = args.epochs
    if not epochs:
        images_per_second, frames = probe_speed(config)
        left = args.budget_s - (time.perf_counter() - started)
        # 0.85 of what is left: evaluation, checkpoints and the final save take the rest.
        affordable = int(0.85 * left * images_per_second / frames)
        epochs = max(1, min(args.max_epochs or (2 if args.dry_run else 3000), affordable))
        report["probe_images_per_second"] = round(images_per_second, 1)
        print(f"{images_per_second:.0f} images/s on {report['device']}: {epochs} epochs of {frames} frames fit in {left:.0f} s")
    trainer = Trainer(replace(config, epochs=epochs))  # resumes from the run folder's last.pt, if there is one
    frames = len(trainer.images)
    report.update(frames=frames, epochs=epochs)
    trainer.run()
    weights = args.out / f"{args.model}.pt"
    torch.save({name: tensor.cpu() for name, tensor in trainer.model.state_dict().items()}, weights)
    log = [json.loads(line) for line in (config.out / "log.jsonl").read_text().splitlines()]
    scored = [record for record in log if "held_out_miou" in record]
    # Every epoch's seconds, over a run resumed any number of times (an epoch redone after a stop counts once).
    # They are wall-clock seconds, so a CPU run paused for benchmarks counts its pauses; the median epoch does not.
    epoch_seconds = [record["seconds"] for record in {record["epoch"]: record for record in log}.values()]
    seconds = sum(epoch_seconds)
    report.update(
        config={key: str(value) for key, value in asdict(trainer.config).items()}, train_seconds=round(seconds, 1),
        median_epoch_seconds=round(statistics.median(epoch_seconds), 2),
        epochs_per_second=round(epochs / seconds, 3), images_per_second=round(epochs * frames / seconds, 1),
        final_loss=log[-1]["loss"], weights=weights.name, total_seconds=round(time.perf_counter() - started, 1),
    )
    if scored:
        report.update(held_out=scored[-1]["held_out"], held_out_miou=scored[-1]["held_out_miou"],
                      held_out_class_iou=scored[-1]["held_out_class_iou"])
    (args.out / "train.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{epochs} epochs in {seconds:.0f} s ({epochs / seconds:.2f} epochs/s); wrote {weights} and {args.out / 'train.json'}")
    return 0


def probe_speed(config: TrainConfig) -> tuple[float, int]:
    """Images per second of whole training steps (augmentation included) on a throwaway model, and the frame count."""
    with tempfile.TemporaryDirectory() as scratch:
        probe = Trainer(replace(config, out=Path(scratch), epochs=1, max_batches=3))
        probe.train_epoch()  # warm-up
        steps = min(PROBE_BATCHES, probe.batches_per_epoch)
        probe.config.max_batches = steps
        synchronise = torch.cuda.synchronize if config.device.startswith("cuda") else (lambda: None)
        synchronise()
        started = time.perf_counter()
        probe.train_epoch()
        synchronise()
        return steps * config.batch_size / (time.perf_counter() - started), len(probe.images)


if __name__ == "__main__":
    sys.exit(main())
