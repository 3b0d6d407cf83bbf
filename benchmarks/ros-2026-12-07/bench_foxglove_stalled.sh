#!/bin/bash
# What a Foxglove client that stops reading costs a run: `streamseg run` on the road video played 4 times over (884 frames,
# 960x540) with the defaults (OpenVINO int8 at 480x360), in fresh processes, alternating back to back:
#   none     no --foxglove
#   idle     --foxglove, no client
#   stalled  --foxglove, a client subscribed to every topic (image, overlay, labels, confidence, legend, classes)
#            that never reads after subscribing (foxglove_bench_client.py stalled)
#   reading  --foxglove, the same client reading everything it is sent: what watching costs, stalled or not
# fps is the run's own figure (its "stream ...: N frames in S s (F fps)" line). FOXGLOVE_FPS is --foxglove-fps (the
# view's default unless given). Run it under the heavy-work lock:
#   flock /tmp/heavy.lock bash benchmarks/ros-2026-12-07/bench_foxglove_stalled.sh OUT_DIR [ROUNDS] [FOXGLOVE_FPS]
set -euo pipefail
out=${1:?OUT_DIR}; rounds=${2:-3}; mkdir -p "$out"
rate=(); [ -n "${3:-}" ] && rate=(--foxglove-fps "$3")
here=$(dirname "$0")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
video="$work/road4.mp4"
ffmpeg -loglevel error -stream_loop 3 -i ../shared/data/video/solidWhiteRight.mp4 -c copy "$video"
port=18764

run_side() {  # side round
  local side=$1 round=$2 log="$out/$1-$2.log" client=""
  port=$((port + 1))  # a fresh port each run: none is left in use by the run before
  case $side in
    none) .venv/bin/python -m streamseg run "$video" > "$log" 2>&1 ;;
    idle) .venv/bin/python -m streamseg run "$video" --foxglove "127.0.0.1:$port" "${rate[@]}" > "$log" 2>&1 ;;
    stalled|reading)
      rm -f "$work/ready"
      .venv/bin/python "$here/foxglove_bench_client.py" "$side" "$port" "$work/ready" > "$out/$side-$round.client.log" 2>&1 &
      client=$!
      .venv/bin/python -m streamseg run "$video" --foxglove "127.0.0.1:$port" "${rate[@]}" > "$log" 2>&1
      kill "$client"; wait "$client" 2>/dev/null || true
      cat "$work/ready" >> "$log" 2>/dev/null || echo "the client never subscribed" >> "$log" ;;
  esac
}

for round in $(seq 1 "$rounds"); do
  for side in none idle stalled reading; do
    run_side "$side" "$round"
  done
done

.venv/bin/python - "$out" "$rounds" <<'PY'
import re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
line = re.compile(r"stream \S+: (\d+) frames in ([\d.]+) s \(([\d.]+) fps\)")
fps = {}
for side in ("none", "idle", "stalled", "reading"):
    fps[side] = []
    for r in range(1, rounds + 1):
        text = open(f"{out}/{side}-{r}.log").read()
        frames, _, value = line.search(text).groups()
        assert side in ("none", "idle") or "subscribed:" in text, f"{side}-{r}: the client never subscribed"
        fps[side].append(float(value))
    print(f"{side:<8} fps {fps[side]} median {statistics.median(fps[side])} ({frames} frames)")
stalled, reading, idle, none = (statistics.median(fps[side]) for side in ("stalled", "reading", "idle", "none"))
print(f"stalled / idle = {stalled / idle:.3f}; reading / idle = {reading / idle:.3f}; idle / none = {idle / none:.3f}")
print(f"per alternation stalled / idle: {[round(s / i, 3) for s, i in zip(fps['stalled'], fps['idle'])]}")
PY
