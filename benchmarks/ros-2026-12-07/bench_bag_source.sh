#!/bin/bash
# The bag source against the same frames from an MP4: `streamseg bench` with the defaults (OpenVINO int8 at 480x360) on
# the road video, and on ROS 2 bags (MCAP storage, as `ros2 bag record` writes them) holding the video's 221 frames as a
# camera driver records them: raw rgb8 Images, and JPEG CompressedImages (quality 90). Back to back, alternating, each in
# a fresh process: pipelined fps and CPU ms per frame, and the source's own ms per frame in the naive (one frame at a
# time) run. Usage: bash benchmarks/ros-2026-12-07/bench_bag_source.sh OUT_DIR [ROUNDS]
set -euo pipefail
out=${1:?OUT_DIR}; rounds=${2:-3}; mkdir -p "$out"
video=../shared/data/video/solidWhiteRight.mp4
bags=$(mktemp -d); trap 'rm -rf "$bags"' EXIT

.venv/bin/python - "$video" "$bags" <<'PY'
import sys
from pathlib import Path

import av
import cv2
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

video, bags = sys.argv[1], Path(sys.argv[2])
typestore = get_typestore(Stores.ROS2_HUMBLE)
types = typestore.types
start_ns = 1_700_000_000 * 10**9
with av.open(video) as container:
    frames = [(frame.time, frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)]
for kind, msgtype in (("rgb8", "sensor_msgs/msg/Image"), ("jpeg", "sensor_msgs/msg/CompressedImage")):
    with Writer(bags / kind, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection("/camera/image_raw", msgtype, typestore=typestore)
        for seconds, rgb in frames:
            stamp = start_ns + round(seconds * 1e9)
            header = types["std_msgs/msg/Header"](
                stamp=types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="camera",
            )
            if kind == "rgb8":
                message = types[msgtype](header=header, height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8",
                                         is_bigendian=0, step=rgb.strides[0], data=rgb.ravel())
            else:
                ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
                message = types[msgtype](header=header, format="jpeg", data=data.ravel())
            writer.write(connection, stamp, typestore.serialize_cdr(message, msgtype))
    size = sum(file.stat().st_size for file in (bags / kind).iterdir())
    print(f"{kind}: {len(frames)} frames, {size / 2**20:.0f} MiB")
PY

declare -A sources=([mp4]="$video" [bag-rgb8]="bag:$bags/rgb8" [bag-jpeg]="bag:$bags/jpeg")
for round in $(seq 1 "$rounds"); do
  for side in mp4 bag-rgb8 bag-jpeg; do
    .venv/bin/python -m streamseg bench "${sources[$side]}" --json "$out/$side-$round.json" > "$out/$side-$round.log" 2>&1
  done
done

.venv/bin/python - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
sides = ("mp4", "bag-rgb8", "bag-jpeg")
runs = {side: [json.load(open(f"{out}/{side}-{r}.json")) for r in range(1, rounds + 1)] for side in sides}
def median(side, *keys):
    values = []
    for run in runs[side]:
        for key in keys:
            run = run[key]
        values.append(run)
    return statistics.median(values)
print(f"{runs['mp4'][0]['machine']}; {runs['mp4'][0]['model']} {runs['mp4'][0]['backend']}; medians of {rounds} alternations")
print(f"{'source':<9} {'pipelined fps':>13} {'CPU ms/frame':>12} {'source ms/frame (naive)':>24} {'frames':>6}")
for side in sides:
    print(
        f"{side:<9} {median(side, 'pipelined', 'fps'):>13} {median(side, 'pipelined', 'cpu_ms_per_frame'):>12} "
        f"{median(side, 'naive', 'stage_latency_ms', 'source', 'mean'):>24} {median(side, 'pipelined', 'frames'):>6}"
    )
PY
