#!/bin/bash
# One stream through `streamseg run`: the commit before this session's work (base) against now (head), alternating.
VIDEO=/work/shared/data/video/solidWhiteRight.mp4
for round in 1 2 3; do
  for side in base head; do
    dir=/tmp/base; [ $side = head ] && dir=/work/main
    for src in demo "$VIDEO"; do
      line=$(cd $dir && /work/main/.venv/bin/python -m streamseg run "$src" --max-frames 300 2>&1 | grep -E "frames in .* fps" | tail -1)
      echo "$round $side $(basename $src) :: $line"
    done
  done
done
