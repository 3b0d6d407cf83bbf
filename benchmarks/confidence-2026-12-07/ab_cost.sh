#!/bin/bash
# Confidence on against off, `streamseg bench` on the road video with the defaults (OpenVINO int8, the fused graph),
# alternating in fresh processes: CPU ms per frame and fps of the pipelined run, and model-only.
# Usage: bash benchmarks/confidence-2026-12-07/ab_cost.sh OUT_DIR [ROUNDS]
out=${1:?OUT_DIR}; rounds=${2:-3}; mkdir -p "$out"
video=../shared/data/video/solidWhiteRight.mp4
for round in $(seq 1 "$rounds"); do
  for side in off on; do
    .venv/bin/python -m streamseg bench "$video" --confidence "$side" --json "$out/confidence-$side-$round.json" > "$out/confidence-$side-$round.log" 2>&1
  done
done
.venv/bin/python - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
runs = {side: [json.load(open(f"{out}/confidence-{side}-{r}.json")) for r in range(1, rounds + 1)] for side in ("off", "on")}
def median(side, part, key):
    return statistics.median(run[part][key] for run in runs[side])
for part in ("model_only", "pipelined"):
    off_fps, on_fps = median("off", part, "fps"), median("on", part, "fps")
    off_cpu, on_cpu = median("off", part, "cpu_ms_per_frame"), median("on", part, "cpu_ms_per_frame")
    print(f"{part}: fps off {off_fps} on {on_fps} (ratio {on_fps / off_fps:.3f}); CPU ms/frame off {off_cpu} on {on_cpu} (+{on_cpu - off_cpu:.2f})")
PY
