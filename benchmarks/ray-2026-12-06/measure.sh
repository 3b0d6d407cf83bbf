#!/bin/bash
# Frames per second of 4 streams through 2 inference replicas on a local Ray head, one run.
#
#   benchmarks/ray-2026-12-06/measure.sh TREE COMMAND OUT.log
#
# TREE is a checkout of streamseg (its code runs in the driver and, through PYTHONPATH on the
# head, in every actor); COMMAND is how that checkout names the Ray run: "serve" (before) or
# "run" (after). Each run starts a fresh head and stops it, so no worker outlives its checkout.
# Run it under the heavy lock: flock /tmp/heavy.lock benchmarks/ray-2026-12-06/measure.sh ...
set -u
TREE=$1 COMMAND=$2 LOG=$3
VIDEO=${VIDEO:-/work/shared/data/video/solidWhiteRight.mp4}
FRAMES=${FRAMES:-200}
PORT=${PORT:-46400}
PY=/work/main/.venv/bin/python
RAY=/work/main/.venv/bin/ray
export RAY_USAGE_STATS_ENABLED=0
PYTHONPATH=$TREE $RAY start --head --node-ip-address=127.0.0.1 --port=$PORT --num-cpus=6 \
    --include-dashboard=false --disable-usage-stats > "/tmp/$(basename "$LOG").head" 2>&1 || { cat "/tmp/$(basename "$LOG").head"; exit 1; }
cd "$TREE"
{
    echo "# $(date -u +%FT%TZ) tree=$TREE ($(git -C "$TREE" rev-parse --short HEAD)) command=$COMMAND frames=$FRAMES video=$VIDEO"
    echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(nproc) vCPUs"
    start=$(date +%s.%N)
    PYTHONPATH=$TREE timeout 900 $PY -m streamseg "$COMMAND" --ray 127.0.0.1:$PORT "$VIDEO" "$VIDEO" "$VIDEO" "$VIDEO" \
        --replicas 2 --max-frames "$FRAMES" 2>&1
    echo "# exit $? after $(echo "$(date +%s.%N) - $start" | bc) s"
} > "$LOG"
$RAY stop --force > /dev/null 2>&1
cat "$LOG"
