#!/bin/bash
# One stream through `streamseg run`: base (00a44a4, before this session) against head, alternating, 4 rounds.
VIDEO=/work/shared/data/video/solidWhiteRight.mp4
for round in 1 2 3 4; do
  for side in base head; do
    dir=/tmp/base; [ $side = head ] && dir=/work/main
    for src in demo "$VIDEO"; do
      line=$(cd $dir && /work/main/.venv/bin/python -m streamseg run "$src" --max-frames 300 2>&1 | grep -E "frames in .* fps" | tail -1)
      echo "$round $side $(basename $src) :: $line"
    done
  done
done
