"""``streamseg bench``: the model alone, a naive one-thread loop, and the pipeline, measured in one run.

All three use the same source, the same stage objects and the same warmed backend, so
their ratios mean something on a shared, noisy machine where absolute figures drift.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from datetime import datetime, timezone

import numpy as np

from streamseg.config import RunConfig
from streamseg.cpu import cpu_model_name
from streamseg.errors import ConfigError
from streamseg.frame import Frame
from streamseg.pipeline.assemble import Assembly, assemble, build_sinks
from streamseg.pipeline.runner import process_timed, read_timed
from streamseg.image.preprocessing import to_model_input
from streamseg.plugins import Plugins
from streamseg.sources import open_source

log = logging.getLogger(__name__)


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


def cpu_ms_per_frame(cpu_seconds: float, frames: int) -> float | None:
    """The whole process's CPU time (every thread: the backend's, the decoder's, the stages') per frame."""
    return round(1000.0 * cpu_seconds / frames, 2) if frames else None


def call_concurrently(backend, batch: np.ndarray, seconds: float) -> tuple[list[float], float]:
    """``backend.infer(batch)`` repeated for ``seconds`` from one thread per concurrent call: each call's time, and the wall time."""
    times: list[list[float]] = [[] for _ in range(backend.concurrent_calls)]
    failures: list[BaseException] = []
    deadline = time.perf_counter() + seconds

    def call_repeatedly(own_times: list[float]) -> None:
        try:
            while time.perf_counter() < deadline or len(own_times) < 5:
                started = time.perf_counter()
                backend.infer(batch)
                own_times.append(time.perf_counter() - started)
        except BaseException as error:  # re-raised in the measuring thread below
            failures.append(error)

    started = time.perf_counter()
    if backend.concurrent_calls == 1:
        # In this thread, as the naive loop calls it: torch's thread pool runs slower for a fresh thread.
        call_repeatedly(times[0])
    else:
        callers = [threading.Thread(target=call_repeatedly, args=(own,), name=f"model-only-{i}") for i, own in enumerate(times)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
    if failures:
        raise failures[0]
    return [t for own in times for t in own], time.perf_counter() - started


def measure_model_only(assembly: Assembly, seconds: float = 3.0, settle_seconds: float = 1.0) -> dict[str, float]:
    """Backend.infer alone on one real frame, repeated: the ceiling for the pipeline.

    A backend with several concurrent calls is called from as many threads at once, as the
    pipeline calls it, so that its ceiling counts every call. The first ``settle_seconds`` are not
    timed: lazy work (graph specialisation, memory pools) must not lower the ceiling.
    """
    with open_source(assembly.config.source, sources=Plugins().registry.sources) as source:
        image = next(iter(source)).image
    batch = to_model_input(image, assembly.backend.input_size)
    call_concurrently(assembly.backend, batch, settle_seconds)
    cpu_started = time.process_time()
    times, elapsed = call_concurrently(assembly.backend, batch, seconds)
    return {"fps": round(len(times) / elapsed, 2), "latency_ms": percentiles_ms(times), "iterations": len(times),
            "inference_calls": assembly.backend.concurrent_calls, "cpu_ms_per_frame": cpu_ms_per_frame(time.process_time() - cpu_started, len(times))}


def measure_naive(assembly: Assembly, max_frames: int | None) -> dict:
    """Decode, preprocess, infer, label and render one frame after another in this thread."""
    records = []
    started, cpu_started = time.perf_counter(), time.process_time()
    with open_source(assembly.config.source, sources=Plugins().registry.sources) as source:
        frames = iter(source)
        while max_frames is None or len(records) < max_frames:
            frame = read_timed(frames)  # timed as the pipeline times them, so the two tables compare
            if frame is None:
                break
            for stage in assembly.stages:
                process_timed(stage, frame)
            records.append((frame.timings, time.perf_counter() - frame.captured_at))
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    elapsed, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    stages, end_to_end = stage_table(records)
    return {"frames": len(records), "seconds": round(elapsed, 3), "fps": round(len(records) / elapsed, 2),
            "cpu_ms_per_frame": cpu_ms_per_frame(cpu_seconds, len(records)),
            "stage_latency_ms": stages, "end_to_end_ms": end_to_end}


def measure_pipelined(assembly: Assembly, *, fresh_source: bool = False) -> dict:
    """The pipeline over the source; ``fresh_source`` reopens it, for rounds after the first (a source is read once)."""
    records: list[tuple[dict[str, float], float]] = []

    def record(frame: Frame) -> None:
        records.append((dict(frame.timings), time.perf_counter() - frame.captured_at))

    source, sinks = None, None
    if fresh_source:  # the pipeline closes what it ran with, so a later round needs its own
        source = open_source(assembly.config.source, sources=Plugins().registry.sources)
        source.model_size = assembly.source.model_size
        sinks = build_sinks(assembly.config, source, label_set=assembly.backend.label_set)
    cpu_started = time.process_time()
    result = assembly.pipeline(source=source, sinks=sinks, on_frame=record).run()
    cpu_seconds = time.process_time() - cpu_started
    if result.error:
        raise RuntimeError(result.error)
    stages, end_to_end = stage_table(records)
    slowest = max(stages, key=lambda name: stages[name]["mean"]) if stages else None
    bound = 1000.0 / stages[slowest]["mean"] if slowest else 0.0
    return {
        "frames": result.frames, "seconds": round(result.seconds, 3), "fps": round(result.fps, 2), "dropped": result.dropped,
        "cpu_ms_per_frame": cpu_ms_per_frame(cpu_seconds, result.frames),
        "stage_latency_ms": stages, "end_to_end_ms": end_to_end,
        "slowest_stage": slowest, "slowest_stage_bound_fps": round(bound, 2),
        "efficiency_vs_slowest_stage": round(result.fps / bound, 3) if bound else None,
    }


MEASUREMENTS = ("model_only", "naive", "pipelined")


def median_run(runs: list[dict]) -> dict:
    """The run with the median fps (the lower of the middle two for an even count), with every round's fps beside it."""
    chosen = dict(sorted(runs, key=lambda run: run["fps"])[(len(runs) - 1) // 2])
    chosen["fps_each_round"] = [run["fps"] for run in runs]
    return chosen


def run_benchmark(config: RunConfig, rounds: int = 1) -> dict:
    """Runs the three measurements; returns what ``--json`` writes.

    With several rounds the measurements alternate and each figure is the median run: the
    speed of a shared machine drifts over seconds, and only interleaved runs see the same drift.
    """
    if rounds < 1:
        raise ConfigError(f"rounds must be at least 1, not {rounds}")
    runs: dict[str, list[dict]] = {name: [] for name in MEASUREMENTS}
    with assemble(config) as assembly:
        for number in range(1, rounds + 1):
            prefix = f"round {number}/{rounds}: " if rounds > 1 else ""
            log.info("%smeasuring the model alone ...", prefix)
            runs["model_only"].append(measure_model_only(assembly))
            log.info("%smeasuring the naive single-threaded loop ...", prefix)
            runs["naive"].append(measure_naive(assembly, config.max_frames))
            log.info("%smeasuring the pipeline ...", prefix)
            runs["pipelined"].append(measure_pipelined(assembly, fresh_source=number > 1))
        backend, (height, width) = assembly.backend.describe(), assembly.backend.input_size
    model_only, naive, pipelined = (median_run(runs[name]) for name in MEASUREMENTS)
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{cpu_model_name()}, {len(os.sched_getaffinity(0))} CPUs, {platform.platform()}",
        "source": config.source, "model": config.model, "backend": backend,
        "input_size": f"{width}x{height}", "rounds": rounds,
        "model_only": model_only, "naive": naive, "pipelined": pipelined,
        "pipelined_over_naive": round(pipelined["fps"] / naive["fps"], 3) if naive["fps"] else None,
        "pipelined_over_model_only": round(pipelined["fps"] / model_only["fps"], 3) if model_only["fps"] else None,
    }


def summary(results: dict) -> str:
    pipe, naive, model = results["pipelined"], results["naive"], results["model_only"]
    lines = [
        f"{results['model']} on {results['backend']}, source {results['source']}",
        f"model only   {model['fps']:7.2f} fps" + _cpu(model) + _rounds(model),
        f"naive loop   {naive['fps']:7.2f} fps  ({naive['frames']} frames)" + _cpu(naive) + _rounds(naive),
        f"pipelined    {pipe['fps']:7.2f} fps  ({pipe['frames']} frames, {pipe['dropped']} dropped)" + _cpu(pipe)
        + f"  = {results['pipelined_over_naive']:.2f}x naive, {results['pipelined_over_model_only']:.2f}x model only" + _rounds(pipe),
        f"slowest stage {pipe['slowest_stage']} bounds it at {pipe['slowest_stage_bound_fps']:.2f} fps; "
        f"pipeline reaches {pipe['efficiency_vs_slowest_stage']:.2f} of that",
        "stage latency ms (pipelined): " + ", ".join(
            f"{name} p50 {s['p50']:.1f} p95 {s['p95']:.1f} p99 {s['p99']:.1f}" for name, s in pipe["stage_latency_ms"].items()),
        f"end-to-end ms: p50 {pipe['end_to_end_ms'].get('p50', 0):.1f} p95 {pipe['end_to_end_ms'].get('p95', 0):.1f} "
        f"p99 {pipe['end_to_end_ms'].get('p99', 0):.1f}",
    ]
    return "\n".join(lines)


def _cpu(run: dict) -> str:
    cpu = run.get("cpu_ms_per_frame")
    return f"  cpu {cpu:.1f} ms/frame" if cpu is not None else ""


def _rounds(run: dict) -> str:
    each = run.get("fps_each_round", [])
    return f"  (median of {', '.join(f'{fps:.2f}' for fps in each)})" if len(each) > 1 else ""
