"""BENCHMARKS.md's figures, drawn from the raw results in benchmarks/ into docs/*.png.

    python tools/plot_benchmarks.py            # needs matplotlib: pip install 'streamseg[report]'

Each figure names the raw files it was drawn from, the machine and the date in its title, so
it can be checked against them. The figures of one ``streamseg bench`` run are drawn by
``streamseg.bench.report``, the same code as ``streamseg bench --report DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamseg.bench.report import COLOURS, new_figure, require_matplotlib, save_figure, write_figures  # noqa: E402

BENCH = ROOT / "benchmarks"
CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist")


def read(relative: str) -> dict:
    return json.loads((BENCH / relative).read_text())


def read_eval_printout(relative: str) -> dict:
    """``streamseg eval``'s printed table (``Sky  84.6`` … ``mIoU  45.0  pixel accuracy …``) as its JSON would hold it."""
    figures = {}
    for line in (BENCH / relative).read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and (words[0] in CLASSES or words[0] == "mIoU"):
            figures[words[0]] = float(words[1]) / 100
    return {"miou": figures.pop("mIoU"), "class_iou": figures}


def streams_figure():
    """Aggregate fps against the number of streams: the 2-vCPU Intel Xeon, and the H200."""
    cpu = read("streams-2026-11-28d/table-3rounds-at-f4704d6.json")["results"]
    gpu = read("gpu-2026-11-28/gpu_proof-streams.json")["steps"]["streams"]["figures"]["cuda"]
    figure, (left, right) = new_figure(columns=2)

    counts = sorted(int(n) for n in cpu)
    for k, (key, label) in enumerate((("batched_fps", "one process, streams batched"),
                                      ("independent_fps", "one process per stream"),
                                      ("model_only_fps", "the network alone, batches of N"))):
        values = [cpu[str(n)][key] for n in counts]
        style = "--" if key == "model_only_fps" else "-"
        left.plot(counts, values, style, marker="o", color=COLOURS[k], label=label)
    for n in counts:  # the gain of batching, written between the two lines it compares
        middle = (cpu[str(n)]["batched_fps"] + cpu[str(n)]["independent_fps"]) / 2
        left.annotate(f"{cpu[str(n)]['batched_over_independent']:.2f}x", (n, middle), xytext=(6, 0),
                      textcoords="offset points", ha="left", va="center", fontsize=8)
    left.set_title("Intel Xeon, 2 vCPUs, OpenVINO int8, 2026-11-28\n"
                   "streams-2026-11-28d/table-3rounds-at-f4704d6.json, medians of 3", fontsize=9)
    left.set_ylim(0, max(cpu[str(n)]["model_only_fps"] for n in counts) * 1.25)

    gpu_counts = sorted(int(key.split("_")[1]) for key in gpu if key.startswith("streams_"))
    right.plot(gpu_counts, [gpu[f"streams_{n}"]["aggregate_fps"] for n in gpu_counts], "-", marker="o",
               color=COLOURS[0], label="one process, streams batched (demo scene drawn on the CPU)")
    batches = sorted(int(key.split("_")[1]) for key in gpu["model_only"] if key.startswith("batch_"))
    right.plot(batches, [gpu["model_only"][f"batch_{n}"]["model_fps"] for n in batches], "--", marker="o",
               color=COLOURS[2], label="the network alone, batches of N")
    right.set_title("NVIDIA H200, CUDA fp16, 2026-11-28\ngpu-2026-11-28/gpu_proof-streams.json", fontsize=9)
    right.set_ylim(0, max(gpu["model_only"][f"batch_{n}"]["model_fps"] for n in batches) * 1.25)

    for axes in (left, right):
        axes.set_xscale("log", base=2)
        ticks = sorted(set(counts + gpu_counts + (batches if axes is right else [])))
        axes.set_xticks(ticks, [str(n) for n in ticks])
        axes.set_xlabel("streams (N)")
        axes.set_ylabel("frames per second, all streams together")
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right" if axes is left else "upper left", fontsize=8)
    left.set_xlim(0.8, 11)
    right.set_xlabel("streams (N); for the network alone, frames per batch (N)")
    figure.suptitle("Many streams in one process: 960x540 in, erfnet at 480x360 (labels: batched / one process per stream)",
                    fontsize=10)
    return figure


def live_latency_figure():
    """Live RTSP latency, frame arrival to its written output, p50 and p95, by queue size and precision."""
    runs = [(precision, run, read(f"latency/{name}-{run}.json")["rows"])
            for precision, name in (("OpenVINO int8 (the default)", "default"), ("OpenVINO bf16", "bf16"))
            for run in (1, 2)]
    figure, axes = new_figure(columns=2)
    sizes = [row["queue_size"] for row in runs[0][2]]
    width = 0.8 / len(runs)
    for ax, key, title in zip(axes, ("arrival_to_labels_ms", "arrival_to_written_ms"), ("arrival → labels", "arrival → written")):
        for k, (precision, run, rows) in enumerate(runs):
            positions = [i - 0.4 + width * (k + 0.5) for i in range(len(sizes))]
            colour = COLOURS[0] if "int8" in precision else COLOURS[1]
            p50 = [row[key]["p50"] for row in rows]
            p95 = [row[key]["p95"] for row in rows]
            ax.bar(positions, p50, width=width * 0.9, color=colour, alpha=1.0 if run == 1 else 0.6,
                   label=f"{precision}, run {run}")
            ax.vlines(positions, p50, p95, color="black", linewidth=1.5)
            ax.scatter(positions, p95, marker="_", s=60, color="black", label="p95" if k == 0 else None)
            for position, row in zip(positions, rows):
                if row["dropped"]:
                    ax.text(position, 6, str(row["dropped"]), fontsize=8, ha="center", va="bottom", color="black")
        ax.set_yscale("log")
        ax.set_ylim(5, 1000)
        ax.set_xticks(range(len(sizes)), [f"queues of {n}" for n in sizes])
        ax.set_ylabel("ms (bar: p50, whisker to p95; log scale)")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3, which="both")
    axes[0].legend(fontsize=7, loc="upper left")
    figure.suptitle("Live latency over RTSP (solidWhiteRight served in real time, --out mp4): Intel Xeon, 2 vCPUs, 2026-11-28\n"
                    "numbers at the foot of a bar: frames dropped of 200; benchmarks/latency/{default,bf16}-{1,2}.json",
                    fontsize=10)
    return figure


def class_iou_figure():
    """Per-class IoU on the drive training never saw (0006R0), with and without the CRF."""
    series = [
        ("the shipped erfnet's recipe (baseline, 152 epochs)", read("gpu-2026-11-28/eval-fold-baseline-cpu.json")),
        ("the same + CRF (shipped settings)", read("crf-fold/eval-fold-settings.json")),
        ("batch64, 707 epochs (not shipped yet)", read_eval_printout("gpu-2026-11-28b/call2-batch64-fold-cpu-eval.txt")),
        ("batch64 + CRF (shipped settings)", read("crf-fold-batch64/eval-shipped-settings.json")),
    ]
    figure, axes = new_figure()
    width = 0.8 / len(series)
    for k, (label, result) in enumerate(series):
        positions = [i - 0.4 + width * (k + 0.5) for i in range(len(CLASSES))]
        axes.bar(positions, [100 * result["class_iou"][name] for name in CLASSES], width=width, color=COLOURS[k],
                 label=f"{label}: mIoU {100 * result['miou']:.1f}")
    for i, name in enumerate(CLASSES):
        if all(result["class_iou"][name] < 0.02 for _, result in series):
            axes.text(i, 2, "0-1 in\nevery run", ha="center", va="bottom", fontsize=8)
    axes.set_xticks(range(len(CLASSES)), CLASSES, rotation=20)
    axes.set_ylabel("IoU %")
    axes.set_ylim(0, 100)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8, loc="upper right")
    axes.set_title("erfnet per class on CamVid drive 0006R0, never trained on (the cross-drive fold), 101 frames, 480x360\n"
                   "trained on the H200, scored on the CPU in fp32, 2026-11-28; gpu-2026-11-28/, "
                   "gpu-2026-11-28b/, crf-fold/, crf-fold-batch64/", fontsize=9)
    return figure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go (default docs/)")
    args = parser.parse_args(argv)
    require_matplotlib("plot_benchmarks.py")
    written = [
        save_figure(streams_figure(), args.out / "streams-fps.png"),
        save_figure(live_latency_figure(), args.out / "live-latency.png"),
        save_figure(class_iou_figure(), args.out / "class-iou-0006R0.png"),
        *write_figures(read("fast-default/bench-default.json"), args.out, prefix="bench-default-"),
    ]
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
