#!/bin/bash
# A/B: ONNX Runtime fp32 bench, before (0b71321) and after (denormals flushed), alternating
for round in 1 2; do
  for side in before after; do
    dir=/work/main; [ $side = before ] && dir=/tmp/wt-base
    cd $dir && flock /tmp/heavy.lock /work/main/.venv/bin/python -m streamseg bench /work/shared/data/video/solidWhiteRight.mp4 --model erfnet --backend onnxruntime --precision fp32 --max-frames 40 --json /tmp/bench/daz-$side-$round.json > /tmp/bench/daz-$side-$round.log 2>&1
  done
done
