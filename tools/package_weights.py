"""Ships trained weights inside the package, with their model card: what `tools/gpu_train.py` wrote, as it is.

    python tools/package_weights.py --model erfnet --gpu-run OUT/final \
        --command "python3 tools/gpu_train.py OUT --data .camvid --recipe batch64 --epochs 707" \
        --fold-run OUT/fold --hold-out-drive 0006R0

``--gpu-run`` is a `gpu_train.py` output folder: ``MODEL.pt`` (the last epoch's weights: what
ships is never a checkpoint picked by a score) and ``train.json`` (recipe, epochs, seconds,
machine). ``--fold-run`` is the same recipe's run without ``--hold-out-drive``'s frames; its
weights are scored here, on the CPU in fp32, on every frame of that drive: the card's
``cross_drive`` figure, the one that says how the recipe does on a road it never saw.

The card (``streamseg/weights/MODEL.json``) keeps what it held that still holds (earlier fold
runs, speed figures, notes); the fields this tool knows are replaced, figures of the old weights
it cannot measure again are dropped, and the card it replaces is kept in one line under
``previous_weights``. Then re-make the int8
models for the new weights with ``python tools/package_int8.py --model MODEL`` and check
them with ``tools/parity.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # streamseg from this checkout, installed or not

from streamseg.eval.camvid import evaluate_camvid
from streamseg.observability.logs import configure_logging
from streamseg.models import MODELS
from streamseg.models.complexity import count_macs, count_parameters
from streamseg.models.weights import load_state

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "streamseg" / "weights"
# Figures of the weights being replaced: dropped unless measured again here (speed figures hold for the
# architecture and stay; so do the records of earlier fold runs).
STALE_WITH_NEW_WEIGHTS = ("cross_drive", "steps", "schedule_chosen_by", "val_class_iou", "val_pixel_accuracy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--gpu-run", type=Path, required=True, help="gpu_train.py's output folder: MODEL.pt and train.json")
    parser.add_argument("--command", required=True, help="the training command, for the card")
    parser.add_argument("--fold-run", type=Path, help="the same recipe trained without --hold-out-drive: scored on that drive")
    parser.add_argument("--hold-out-drive", default="0006R0")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/camvid"))
    parser.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR, help="where the package's weights live")
    args = parser.parse_args(argv)

    report = json.loads((args.gpu_run / "train.json").read_text())
    spec = MODELS.get(args.model)
    model = spec.build()
    load_state(model, args.gpu_run / f"{args.model}.pt", model_name=args.model)  # every key checked, tensors only
    target = args.weights_dir / f"{args.model}.pt"
    torch.save(model.state_dict(), target)

    card_path = args.weights_dir / f"{args.model}.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    if card:
        card["previous_weights"] = f"{card.get('date', '?')}: {card.get('summary') or card.get('recipe', '?')}"
    for stale in STALE_WITH_NEW_WEIGHTS:
        card.pop(stale, None)
    split = report["config"]["train_split"] if "config" in report else "train+val"
    val_trained_on = "val" in split.split("+")
    config = report.get("config", {})
    card.update(
        model=args.model,
        description=spec.description,
        data=f"CamVid (SegNet tutorial layout) {split}, 480x360, 11 classes; trained from scratch (no pre-training of any kind)",
        recipe=report["recipe"],
        batch_size=int(config["batch_size"]) if "batch_size" in config else None,
        learning_rate=float(config["learning_rate"]) if "learning_rate" in config else None,
        epochs=report["epochs"],
        selection="the last epoch of a fixed schedule: no checkpoint was picked by a score",
        command=args.command,
        train_seconds=report.get("train_seconds"),
        median_epoch_seconds=report.get("median_epoch_seconds"),
        time_note=(
            "train_seconds sums each epoch's wall-clock seconds, pauses included (a CPU run is paused for "
            "benchmarks and resumed across sessions), and images_per_second is derived from it; "
            "median_epoch_seconds times the epochs is the run's time without them"
        ),
        images_per_second=report.get("images_per_second"),
        machine=f"{report.get('device')}, torch {report.get('torch')}, Python {report.get('python')}",
        params=count_parameters(model),
        gmacs_480x360=round(count_macs(model, (360, 480)) / 1e9, 3),
        date=date.today().isoformat(),
        file_mb=round(target.stat().st_size / 1e6, 2),
    )
    val = evaluate_camvid(args.data, split="val", model=args.model, weights=target)
    card.update(val_miou=round(val.mean_iou, 4), val_note=(
        "val is trained on, so this figure only shows that the weights load and run; it says nothing about unseen roads"
        if val_trained_on else "val shares drive 0016E5 with 204 training frames, so it flatters; see cross_drive"
    ))
    summary = f"trained on CamVid {split} ({report.get('frames', '?')} frames), recipe {report['recipe']} for {report['epochs']} epochs"
    if args.fold_run is not None:
        fold_weights = args.fold_run / f"{args.model}.pt"
        fold = evaluate_camvid(args.data, split="train+val", model=args.model, weights=fold_weights, hold_out_drive=args.hold_out_drive)
        fold_report = json.loads((args.fold_run / "train.json").read_text())
        card["cross_drive"] = {
            "held_out": f"drive {args.hold_out_drive}, never trained on",
            "epochs": fold_report["epochs"],
            "miou": round(fold.mean_iou, 4),
            "pixel_accuracy": round(fold.pixel_accuracy, 4),
            "class_iou": {name: round(value, 4) for name, value in fold.class_iou.items()},
            "command": f"streamseg eval {args.data} --split train+val --hold-out-drive {args.hold_out_drive} --weights FOLD/{args.model}.pt",
        }
        summary += f"; its recipe scores {100 * fold.mean_iou:.1f} mIoU on a drive it never saw ({args.hold_out_drive} held out)"
        print(f"cross-drive ({args.hold_out_drive}): {100 * fold.mean_iou:.1f} mIoU")
    card["summary"] = summary
    card_path.write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n")
    print(val.table())
    print(f"wrote {target} ({card['file_mb']} MB) and its card {card_path}")
    return 0


if __name__ == "__main__":
    configure_logging()  # the library's diagnostics (engine builds, warnings) as the CLI shows them
    sys.exit(main())
