"""Stochastic weight averaging: the mean of several checkpoints of one run.

Checkpoints taken a few epochs apart at a small constant learning rate sit around a wide
minimum; their average usually generalises better than any one of them (Izmailov et al.,
2018). Batch-norm running statistics are averaged with the weights, a fair approximation
for checkpoints this close. ``--recalibrate-bn`` measures them afresh instead (one pass over
the whole train frames, dropout off), as the paper does; on CamVid it *lowered* a single
DeepLab checkpoint from 65.9 to 64.0 % val (whole frames are not the augmented crops the
network trained on), so it is off by default. Writes ``OUT/best.pt`` (loadable by
``streamseg eval --weights``) after scoring it on val.

    .venv/bin/python tools/average_weights.py --model deeplab --out runs/deeplab-avg \
        runs/deeplab-swa/snapshot-*.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from streamseg.data.camvid import CamVid
from streamseg.models import MODELS
from streamseg.models.weights import read_state
from streamseg.training.trainer import evaluate_model

DEFAULT_CAMVID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid"


def average_states(paths: list[Path]) -> dict[str, torch.Tensor]:
    states = [read_state(path) for path in paths]
    averaged = {}
    for name, first in states[0].items():
        if first.is_floating_point():  # weights and batch-norm running statistics
            averaged[name] = torch.stack([state[name].float() for state in states]).mean(0)
        else:
            averaged[name] = first  # counters such as num_batches_tracked
    return averaged


def recalibrate_batch_norm(model: nn.Module, dataset: CamVid) -> None:
    model.eval()  # dropout off: the statistics should be those inference sees
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over every batch of the pass
            module.train()
    with torch.no_grad():
        for index in range(len(dataset)):
            image, _ = dataset[index]
            model(torch.from_numpy(image)[None])
            print(f"\rbatch norm: {index + 1}/{len(dataset)} frames", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--model", required=True, choices=MODELS.names())
    parser.add_argument("--out", type=Path, required=True, help="folder for best.pt")
    parser.add_argument("--camvid", type=Path, default=DEFAULT_CAMVID)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--recalibrate-bn", action="store_true", help="re-estimate batch norm on the train frames")
    args = parser.parse_args()
    if len(args.checkpoints) < 2:
        parser.error("averaging needs at least two checkpoints")

    model = MODELS.get(args.model).build()
    model.load_state_dict(average_states(args.checkpoints))
    torch.set_num_threads(args.threads)
    if args.recalibrate_bn:
        recalibrate_batch_norm(model, CamVid(args.camvid, "train"))
    result = evaluate_model(model, CamVid(args.camvid, "val"), "cpu", nullcontext)
    print(f"averaged {len(args.checkpoints)} checkpoints: val mIoU {100 * result.mean_iou:.2f}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "val": result.as_dict(),
                "averaged": [str(path) for path in args.checkpoints]}, args.out / "best.pt")
    (args.out / "average.json").write_text(json.dumps(
        {"checkpoints": [str(path) for path in args.checkpoints], "val": result.as_dict()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
