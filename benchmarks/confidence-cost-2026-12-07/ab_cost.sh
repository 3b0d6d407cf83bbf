#!/bin/bash
# Confidence on (the built-in erfnet's shipped temperature and curve: the margin table in OpenVINO's graph) against off:
# `streamseg bench` with the defaults (OpenVINO int8, the fused graph) at 480x360, alternating in fresh processes,
# ROUNDS times (default 10), each bench the median of 3 rounds of FRAMES frames (default 600) of SOURCE (default the
# demo scene at 480x360: longer rounds than the road video's 221 frames, so less noise a round).
# Usage: bash benchmarks/confidence-cost-2026-12-07/ab_cost.sh OUT_DIR [ROUNDS] [SOURCE] [FRAMES]
out=${1:?OUT_DIR}; rounds=${2:-10}; source=${3:-demo:480x360}; frames=${4:-600}; mkdir -p "$out"
for round in $(seq 1 "$rounds"); do
  for side in off on; do
    .venv/bin/python -m streamseg bench "$source" --max-frames "$frames" --rounds 3 --confidence "$side" \
      --json "$out/$side-$round.json" > "$out/$side-$round.log" 2>&1 || { cat "$out/$side-$round.log"; exit 1; }
  done
done
.venv/bin/python benchmarks/confidence-cost-2026-12-07/summarise_ab.py "$out" "$rounds"
