#!/bin/bash
# Confidence on (with the fold's temperature and curve, the costliest form) against off: `streamseg bench` on the road
# video with the defaults (OpenVINO int8, the fused graph), alternating in fresh processes, ROUNDS times (default 4),
# each bench taking the median of 3 rounds: CPU ms per frame and fps of the pipelined run.
# Usage: bash benchmarks/confidence-curve-2026-12-07/ab_cost.sh OUT_DIR [ROUNDS]
out=${1:?OUT_DIR}; rounds=${2:-4}; mkdir -p "$out"
here=$(dirname "$0")
video=../shared/data/video/solidWhiteRight.mp4
curve=$(.venv/bin/python -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))['curve']))" "$here/fold-confidence.json")
temperature=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['temperature'])" "$here/fold-confidence.json")
for round in $(seq 1 "$rounds"); do
  .venv/bin/python -m streamseg bench "$video" --rounds 3 --confidence off --json "$out/off-$round.json" > "$out/off-$round.log" 2>&1
  .venv/bin/python -m streamseg bench "$video" --rounds 3 --confidence on --temperature "$temperature" --confidence-curve "$curve" \
    --json "$out/on-$round.json" > "$out/on-$round.log" 2>&1
done
.venv/bin/python benchmarks/confidence-cost-2026-12-07/summarise_ab.py "$out" "$rounds"
