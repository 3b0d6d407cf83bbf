"""Trains the FlowNetS-style flow network on generated pairs, or exports a run's best weights.

    .venv/bin/python tools/train_flownet.py --out runs/flownet [--steps 100000] [--bf16] [--threads 2]
    .venv/bin/python tools/train_flownet.py --out runs/flownet --export streamseg/weights \
        [--command "how it was trained"] [--epe-json benchmarks/flow-epe.json]

Running again with the same --out resumes from its last.pt. Every --eval-every steps the
end-point error on --eval-pairs held-out pairs is printed and appended to log.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from streamseg.observability.logs import configure_logging
from streamseg.temporal.training import FlowNetTrainer, FlowTrainConfig, export_weights

DEFAULT_CAMVID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camvid", type=Path, default=DEFAULT_CAMVID)
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log.jsonl)")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, nargs=2, default=(360, 480), metavar=("H", "W"))
    parser.add_argument("--width", type=float, default=0.25, help="channel multiplier of the network")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on the CPU (needs native bf16)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--eval-pairs", type=int, default=50)
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--export", type=Path, metavar="FOLDER", help="write flownet.pt and flownet.json from best.pt, then stop")
    parser.add_argument("--command", default="", help="with --export: the training command, for the model card")
    parser.add_argument("--epe-json", type=Path, help="with --export: tools/flow_epe.py --json output, for the model card")
    args = parser.parse_args()

    if args.export is not None:
        best = args.out / "best.pt"
        if not best.exists():
            sys.exit(f"error: {best} does not exist; train first")
        measured = json.loads(args.epe_json.read_text()) if args.epe_json else None
        print(f"wrote {export_weights(best, args.export, args.command, measured)}", file=sys.stderr)
        return
    config = FlowTrainConfig(
        camvid=args.camvid, out=args.out, steps=args.steps, batch_size=args.batch_size, size=tuple(args.size),
        width=args.width, learning_rate=args.lr, bf16=args.bf16, device=args.device, threads=args.threads,
        eval_every=args.eval_every, eval_pairs=args.eval_pairs, checkpoint_every=args.checkpoint_every, seed=args.seed,
    )
    best_epe = FlowNetTrainer(config).run()
    print(f"best held-out EPE {best_epe:.3f} px; checkpoints in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    configure_logging()  # the library's diagnostics (engine builds, warnings) as the CLI shows them
    main()
