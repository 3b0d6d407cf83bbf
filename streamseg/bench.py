"""``streamseg bench``: the model alone, a naive one-thread loop, and the pipeline, measured in one run.

All three use the same source, the same stage objects and the same warmed backend, so
their ratios mean something on a shared, noisy machine where absolute figures drift.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np

from streamseg.config import RunConfig
from streamseg.cpu import cpu_model_name
from streamseg.frame import Frame
from streamseg.pipeline.assemble import Assembly, assemble
from streamseg.sources import open_source
from streamseg.stages.preprocess import to_model_input


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {}
    values = np.asarray(seconds) * 1000.0
    return {
        "mean": round(float(values.mean()), 2),
        "p50": round(float(np.percentile(values, 50)), 2),
        "p95": round(float(np.percentile(values, 95)), 2),
        "p99": round(float(np.percentile(values, 99)), 2),
    }


def stage_table(frames: list[tuple[dict[str, float], float]]) -> tuple[dict[str, dict], dict[str, float]]:
    """Per-stage and end-to-end latency percentiles from (timings, end-to-end seconds) records."""
    names = list(frames[0][0]) if frames else []
    stages = {name: percentiles_ms([timings[name] for timings, _ in frames if name in timings]) for name in names}
    return stages, percentiles_ms([latency for _, latency in frames])


def measure_model_only(assembly: Assembly, seconds: float = 3.0) -> dict[str, float]:
    """Backend.infer alone on one real frame, repeated: the ceiling for the pipeline."""
    with open_source(assembly.config.source) as source:
        image = next(iter(source)).image
    batch = to_model_input(image, assembly.config.input_size)
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        started = time.perf_counter()
        assembly.backend.infer(batch)
        times.append(time.perf_counter() - started)
    return {"fps": round(1.0 / float(np.mean(times)), 2), "latency_ms": percentiles_ms(times), "iterations": len(times)}


def measure_naive(assembly: Assembly, max_frames: int | None) -> dict:
    """Decode, preprocess, infer, label and render one frame after another in this thread."""
    records = []
    started = time.perf_counter()
    with open_source(assembly.config.source) as source:
        frames = iter(source)
        while max_frames is None or len(records) < max_frames:
            decode_started = time.perf_counter()
            frame: Frame | None = next(frames, None)
            if frame is None:
                break
            frame.timings["source"] = time.perf_counter() - decode_started
            for stage in assembly.stages:
                stage_started = time.perf_counter()
                stage.process(frame)
                frame.timings[stage.name] = time.perf_counter() - stage_started
            records.append((frame.timings, time.perf_counter() - frame.captured_at))
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    elapsed = time.perf_counter() - started
    stages, end_to_end = stage_table(records)
    return {"frames": len(records), "seconds": round(elapsed, 3), "fps": round(len(records) / elapsed, 2),
            "stage_latency_ms": stages, "end_to_end_ms": end_to_end}


def measure_pipelined(assembly: Assembly) -> dict:
    records: list[tuple[dict[str, float], float]] = []

    def record(frame: Frame) -> None:
        records.append((dict(frame.timings), time.perf_counter() - frame.captured_at))

    result = assembly.pipeline(on_frame=record).run()
    if result.error:
        raise RuntimeError(result.error)
    stages, end_to_end = stage_table(records)
    slowest = max(stages, key=lambda name: stages[name]["mean"]) if stages else None
    bound = 1000.0 / stages[slowest]["mean"] if slowest else 0.0
    return {
        "frames": result.frames, "seconds": round(result.seconds, 3), "fps": round(result.fps, 2), "dropped": result.dropped,
        "stage_latency_ms": stages, "end_to_end_ms": end_to_end,
        "slowest_stage": slowest, "slowest_stage_bound_fps": round(bound, 2),
        "efficiency_vs_slowest_stage": round(result.fps / bound, 3) if bound else None,
    }


def run_benchmark(config: RunConfig, log=sys.stderr) -> dict:
    """Runs the three measurements; returns what ``--json`` writes."""
    with assemble(config, log=log) as assembly:
        print("measuring the model alone ...", file=log)
        model_only = measure_model_only(assembly)
        print("measuring the naive single-threaded loop ...", file=log)
        naive = measure_naive(assembly, config.max_frames)
        print("measuring the pipeline ...", file=log)
        pipelined = measure_pipelined(assembly)
        backend = assembly.backend.describe()
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{cpu_model_name()}, {len(os.sched_getaffinity(0))} CPUs, {platform.platform()}",
        "source": config.source, "model": config.model, "backend": backend,
        "input_size": f"{config.input_size[1]}x{config.input_size[0]}",
        "model_only": model_only, "naive": naive, "pipelined": pipelined,
        "pipelined_over_naive": round(pipelined["fps"] / naive["fps"], 3) if naive["fps"] else None,
        "pipelined_over_model_only": round(pipelined["fps"] / model_only["fps"], 3) if model_only["fps"] else None,
    }


def summary(results: dict) -> str:
    pipe, naive, model = results["pipelined"], results["naive"], results["model_only"]
    lines = [
        f"{results['model']} on {results['backend']}, source {results['source']}",
        f"model only   {model['fps']:7.2f} fps",
        f"naive loop   {naive['fps']:7.2f} fps  ({naive['frames']} frames)",
        f"pipelined    {pipe['fps']:7.2f} fps  ({pipe['frames']} frames, {pipe['dropped']} dropped)  "
        f"= {results['pipelined_over_naive']:.2f}x naive, {results['pipelined_over_model_only']:.2f}x model only",
        f"slowest stage {pipe['slowest_stage']} bounds it at {pipe['slowest_stage_bound_fps']:.2f} fps; "
        f"pipeline reaches {pipe['efficiency_vs_slowest_stage']:.2f} of that",
        "stage latency ms (pipelined): " + ", ".join(
            f"{name} p50 {s['p50']:.1f} p95 {s['p95']:.1f} p99 {s['p99']:.1f}" for name, s in pipe["stage_latency_ms"].items()),
        f"end-to-end ms: p50 {pipe['end_to_end_ms'].get('p50', 0):.1f} p95 {pipe['end_to_end_ms'].get('p95', 0):.1f} "
        f"p99 {pipe['end_to_end_ms'].get('p99', 0):.1f}",
    ]
    return "\n".join(lines)
