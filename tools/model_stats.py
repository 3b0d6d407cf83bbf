"""Parameters and multiply-accumulates of every registered model at one input size (480x360 by default).

See streamseg.models.complexity for what is counted. One GMAC is about two GFLOPs.

    .venv/bin/python tools/model_stats.py [--size 360 480] [--models deeplab erfnet]
"""

from __future__ import annotations

import argparse

from streamseg.models import MODELS
from streamseg.models.complexity import count_macs, count_parameters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(360, 480), metavar=("H", "W"))
    parser.add_argument("--models", nargs="+", default=MODELS.names(), help="registered names (default: all)")
    args = parser.parse_args()
    height, width = args.size
    print(f"{'model':<16} {'params (M)':>10} {'GMACs':>8} {'GFLOPs':>8}   at {width}x{height}")
    for name in args.models:
        model = MODELS.get(name).build()
        macs = count_macs(model, (height, width))
        print(f"{name:<16} {count_parameters(model) / 1e6:>10.3f} {macs / 1e9:>8.2f} {2 * macs / 1e9:>8.2f}")


if __name__ == "__main__":
    main()
