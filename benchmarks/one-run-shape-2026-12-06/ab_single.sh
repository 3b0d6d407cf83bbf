#!/bin/bash
# One stream through `streamseg run`: base (00a44a4, a worktree at /tmp/base) against head (/work/main), alternating.
# Usage: ab_single.sh [ROUNDS]  (3 rounds gave ab_single-batcher-handover.log, 4 gave ab_single-inline.log)
ROUNDS=${1:-4}
VIDEO=/work/shared/data/video/solidWhiteRight.mp4
for round in $(seq 1 "$ROUNDS"); do
  for side in base head; do
    dir=/tmp/base; [ $side = head ] && dir=/work/main
    for src in demo "$VIDEO"; do
      line=$(cd $dir && /work/main/.venv/bin/python -m streamseg run "$src" --max-frames 300 2>&1 | grep -E "frames in .* fps" | tail -1)
      echo "$round $side $(basename $src) :: $line"
    done
  done
done
