"""CPU time per frame of each piece of a run, measured alone: decode, every stage, every sink, and the network.

    python tools/cpu_per_piece.py ../shared/data/video/solidWhiteRight.mp4 --out-dir /tmp/pieces [--json F] [run options]

The run is assembled exactly as ``streamseg run SOURCE --out DIR/out.mp4`` assembles it; then each
piece runs over every frame on its own, one after the other, in this thread, and its process CPU
time (every thread of the process: FFmpeg's decoder and x264's encoder threads count) is divided by
the frames. "network" is the backend's pixels-to-class-ids call alone on frames already at the
input size; "around the network" is every piece but the infer stage, plus the one thing that
stage does besides the network: scaling the class ids back to the frame.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from streamseg.config import build_config
from streamseg.observability.logs import configure_logging
from streamseg.pipeline.assemble import assemble
from streamseg.image.resize import resize_labels, resize_rgb


def cpu_ms(seconds: float, frames: int) -> float:
    return round(1000.0 * seconds / frames, 2)


def measure(source: str, out_dir: Path, overrides: dict) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    config = build_config(None, {"source": source, "out": out_dir / "out.mp4", **overrides})
    pieces: dict[str, float] = {}
    with assemble(config) as assembly:
        started = time.process_time()
        frames = list(assembly.source)
        pieces["decode"] = time.process_time() - started
        for stage in assembly.stages:
            started = time.process_time()
            for frame in frames:
                stage.process(frame)
            pieces[stage.name] = time.process_time() - started
        for sink in assembly.sinks:
            started = time.process_time()
            for frame in frames:
                sink.write(frame)
            sink.close()  # the encoder's flush belongs to its cost
            pieces[sink.name] = time.process_time() - started
        backend = assembly.backend
        images = [resize_rgb(frame.image, backend.input_size) for frame in frames]
        started = time.process_time()
        labels = [backend.model_labels(image[None])[0] for image in images]
        network = time.process_time() - started
        # The infer stage also scales the class ids back to the frame: timed alone, since the
        # network's own CPU time varies by more than this between two passes.
        started = time.process_time()
        for frame, ids in zip(frames, labels):
            resize_labels(ids, (frame.height, frame.width))
        pieces["labels to frame size"] = time.process_time() - started
        described = backend.describe()
    count = len(frames)
    table = {name: cpu_ms(seconds, count) for name, seconds in pieces.items()}
    around = sum(seconds for name, seconds in pieces.items() if name != "infer")
    return {
        "source": source, "frames": count, "backend": described,
        "frame_size": f"{frames[0].width}x{frames[0].height}" if frames else None,
        "cpu_ms_per_frame": table, "network_ms": cpu_ms(network, count), "around_network_ms": cpu_ms(around, count),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("--out-dir", type=Path, required=True, help="where the measured run writes its mp4")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--backend")
    parser.add_argument("--precision")
    args = parser.parse_args()
    result = measure(args.source, args.out_dir, {"backend": args.backend, "precision": args.precision})
    for name, value in result["cpu_ms_per_frame"].items():
        print(f"| {name} | {value:.2f} |")
    print(f"| the network alone | {result['network_ms']:.2f} |")
    print(f"| **around the network** | **{result['around_network_ms']:.2f}** |")
    print(f"{result['frames']} frames of {result['frame_size']}, {result['backend']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    configure_logging()  # the library's diagnostics (engine builds, warnings) as the CLI shows them
    main()
