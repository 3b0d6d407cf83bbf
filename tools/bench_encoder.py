"""CPU per frame and file size of x264's speed presets on a real clip, as the video sink encodes it.

    python tools/bench_encoder.py ../shared/data/video/solidWhiteRight.mp4 [--presets ultrafast superfast veryfast]

Decodes the clip once, converts every frame to I420 as ``VideoFileSink`` does, then encodes all of
them with each preset (fragmented MP4, no B-frames, a key frame a second, crf 23) and prints the
process CPU time per frame, the wall time per frame and the file's size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import cv2

from streamseg.frame import Frame
from streamseg.sinks.video_file import VideoFileSink


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("--presets", nargs="+", default=["ultrafast", "superfast", "veryfast"])
    args = parser.parse_args()
    with av.open(str(args.video)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        images = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    frames = [Frame(index=i, timestamp=i / rate, image=image) for i, image in enumerate(images)]
    height, width = images[0].shape[:2]
    print(f"{len(frames)} frames of {width}x{height}, {cv2.getNumberOfCPUs()} CPUs")
    with tempfile.TemporaryDirectory() as scratch:
        for preset in args.presets:
            path = Path(scratch) / f"{preset}.mp4"
            cpu, wall = time.process_time(), time.perf_counter()
            with VideoFileSink(path, fps=rate, preset=preset) as sink:
                for frame in frames:
                    sink.write(frame)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(f"| {preset} | {1000 * cpu / len(frames):.2f} | {1000 * wall / len(frames):.2f} | {path.stat().st_size / 1e6:.2f} MB |")


if __name__ == "__main__":
    main()
