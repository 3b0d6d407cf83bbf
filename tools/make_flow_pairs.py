"""Writes FlyingChairs-style pairs with exact flow (generated from CamVid) to .npz files.

Training pairs come from CamVid's train frames and seeds 0, 1, ...; the held-out set from its
val frames and seeds 1e9, 1e9 + 1, ... (see streamseg.temporal.synthetic_pairs). Training
itself generates pairs on the fly; files are for inspection and for other tools.

    .venv/bin/python tools/make_flow_pairs.py --out /tmp/pairs --count 50 [--held-out] [--size 360 480]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from streamseg.temporal.synthetic_pairs import (
    HELD_OUT_SEEDS,
    TRAIN_SEEDS,
    FlowPairGenerator,
    write_pairs,
)

DEFAULT_CAMVID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camvid", type=Path, default=DEFAULT_CAMVID)
    parser.add_argument("--out", type=Path, required=True, help="folder for pair_<seed>.npz files")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--first", type=int, default=0, help="index of the first pair within its seed range")
    parser.add_argument("--held-out", action="store_true", help="the held-out set (CamVid val frames, its own seeds)")
    parser.add_argument("--size", type=int, nargs=2, default=(360, 480), metavar=("H", "W"))
    args = parser.parse_args()

    generator = FlowPairGenerator.from_camvid(args.camvid, held_out=args.held_out, size=tuple(args.size))
    seeds = (HELD_OUT_SEEDS if args.held_out else TRAIN_SEEDS)[args.first: args.first + args.count]
    paths = write_pairs(generator, seeds, args.out)
    magnitudes = [np.linalg.norm(np.load(path)["flow"], axis=2).mean() for path in paths[:20]]
    print(f"wrote {len(paths)} pairs to {args.out} (mean flow of the first {len(magnitudes)}: {np.mean(magnitudes):.1f} px)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
