"""Flow end-point error on held-out generated pairs (exact ground truth), with CPU time per pair.

    python tools/flow_epe.py --pairs 50 --estimators dis farneback flownet [--json F]

Held-out pairs are cut from CamVid val frames with seeds of their own, so no estimator
trained by this project has seen them. An estimator that cannot be made (FlowNet without
trained weights) is reported and skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streamseg.errors import StreamsegError
from streamseg.plugins import Plugins
from streamseg.temporal.measures import flow_accuracy
from streamseg.temporal.synthetic_pairs import HELD_OUT_SEEDS, FlowPairGenerator

DEFAULT_CAMVID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--camvid", type=Path, default=DEFAULT_CAMVID)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--size", type=int, nargs=2, default=(360, 480), metavar=("H", "W"))
    parser.add_argument("--estimators", nargs="+", default=["dis", "farneback", "flownet"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    generator = FlowPairGenerator.from_camvid(args.camvid, held_out=True, size=tuple(args.size))
    pairs = list(generator.pairs(HELD_OUT_SEEDS[: args.pairs]))
    plugins = Plugins()
    rows = []
    print(f"| estimator | EPE (px) | EPE visible (px) | ms per pair |  ({len(pairs)} pairs at {args.size[1]}x{args.size[0]})")
    print("|---|---|---|---|")
    for name in args.estimators:
        try:
            estimator = plugins.flow_estimator(name)
        except StreamsegError as error:
            print(f"| {name} | not measured: {error} | | |")
            continue
        accuracy = flow_accuracy(estimator, pairs)
        estimator.close()
        rows.append({"estimator": name, "epe": accuracy.epe, "epe_visible": accuracy.epe_visible,
                     "ms_per_pair": 1000 * accuracy.seconds_per_pair, "pairs": accuracy.pairs})
        print(f"| {name} | {accuracy.epe:.2f} | {accuracy.epe_visible:.2f} | {1000 * accuracy.seconds_per_pair:.1f} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
