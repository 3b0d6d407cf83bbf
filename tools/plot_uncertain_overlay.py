"""One overlay frame with its uncertain pixels shown (``--show-uncertain``), for docs/.

    python tools/plot_uncertain_overlay.py [SOURCE] [--frame 100] [--out docs/confidence-uncertain.png]

Runs the default model on SOURCE (the road video by default) through the API with the overlay
drawn, and writes frame ``--frame``'s overlay at half size, with its predicted accuracy in the name
line printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from streamseg.api import Pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default="../shared/data/video/solidWhiteRight.mp4")
    parser.add_argument("--frame", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("docs/confidence-uncertain.png"))
    args = parser.parse_args()
    with Pipeline(args.source, render=True, show_uncertain=True, max_frames=args.frame + 1) as pipeline:
        chosen = None
        for result in pipeline:
            if result.frame_id == args.frame:
                chosen = result
    if chosen is None:
        raise SystemExit(f"{args.source} has no frame {args.frame}")
    overlay = chosen.overlay
    half = cv2.resize(overlay, (overlay.shape[1] // 2, overlay.shape[0] // 2), interpolation=cv2.INTER_AREA)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(half, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"{args.out}: frame {args.frame}, confidence {chosen.confidence}")


if __name__ == "__main__":
    main()
