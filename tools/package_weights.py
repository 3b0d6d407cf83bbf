"""Ships a trained checkpoint inside the package: the state dict and its model card.

    python tools/package_weights.py --model erfnet --run runs/erfnet \
        --command "streamseg train --model erfnet --out runs/erfnet --epochs 120 --bf16" [--fps 24.1 --fps-note "..."]

The card records the data, the command, the epochs, the parameter count, GMACs at 480x360,
and the val mIoU per class measured now by `streamseg eval` on the packaged weights.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import torch

from streamseg.evaluate_camvid import evaluate_camvid
from streamseg.logs import configure_logging
from streamseg.models import MODELS
from streamseg.models.complexity import count_macs, count_parameters

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "streamseg" / "weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--run", type=Path, required=True, help="training run folder holding best.pt and log.jsonl")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/camvid"))
    parser.add_argument("--command", required=True, help="the training command, for the card")
    parser.add_argument("--fps", type=float, help="measured fps at 480x360 on this CPU, for the card")
    parser.add_argument("--fps-note", default="", help="how the fps was measured")
    parser.add_argument("--note", default="", help="anything a user should know")
    args = parser.parse_args()

    checkpoint = torch.load(args.run / "best.pt", map_location="cpu", weights_only=True)
    spec = MODELS.get(args.model)
    model = spec.build()
    model.load_state_dict(checkpoint["model"])
    target = WEIGHTS_DIR / f"{args.model}.pt"
    torch.save(model.state_dict(), target)

    result = evaluate_camvid(args.data, split="val", model=args.model, weights=target)
    log = [json.loads(line) for line in (args.run / "log.jsonl").read_text().splitlines()]
    card = {
        "model": args.model,
        "description": spec.description,
        "data": "CamVid (SegNet tutorial layout) train split, 367 frames at 480x360, 11 classes; trained from scratch",
        "command": args.command,
        # An averaged checkpoint (tools/average_weights.py) has no single epoch; it lists its sources.
        "epochs": int(checkpoint["epoch"]) if "epoch" in checkpoint else None,
        "averaged_from": checkpoint.get("averaged", []),
        "epochs_run": len(log),
        "params": count_parameters(model),
        "gmacs_480x360": round(count_macs(model, (360, 480)) / 1e9, 3),
        "val_miou": round(result.mean_iou, 4),
        "val_pixel_accuracy": round(result.pixel_accuracy, 4),
        "val_class_iou": {name: round(value, 4) for name, value in result.class_iou.items()},
        "fps_480x360_this_cpu": args.fps,
        "fps_note": args.fps_note,
        "note": args.note,
        "date": date.today().isoformat(),
        "file_mb": round(target.stat().st_size / 1e6, 2),
    }
    (WEIGHTS_DIR / f"{args.model}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(result.table())
    print(f"wrote {target} ({card['file_mb']} MB) and its card")


if __name__ == "__main__":
    configure_logging()  # the library's diagnostics (engine builds, warnings) as the CLI shows them
    main()
