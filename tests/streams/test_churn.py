"""A run that lives for weeks: adding and removing streams over HTTP leaves its memory and /metrics flat.

A removed stream keeps only its small result for the run's summary; its source, stages, sinks,
queues and metric series go. The quick test counts what is left of removed streams in a run in
this process; the slow one runs ``tools/soak_churn.py`` against a ``streamseg run`` process, as a
user's client would, and bounds the process's resident memory and the size of /metrics.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from streamseg.api import Pipeline
from streamseg.pipeline.runner import Runner
from streamseg.sources.demo import DemoSource

REPO = Path(__file__).resolve().parents[2]
FAST = {"model": "erfnet-half", "input_size": "160x120", "backend": "torch"}
WAIT_S = 120.0  # generous: two busy cores; the waits usually end in seconds

# The slow soak: the acceptance's bounds (the are over 180 cycles after the first 20). Before a
# removed stream let go of its parts, this run grew by about 1 MB and its /metrics by about 17 KB a cycle.
CYCLES = 60
SETTLED = 20
RSS_GROWTH_MB = 20.0
METRICS_BYTES = 64 * 1024


def request(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=60) as answer:
        return answer.status, answer.read()


def live(kind: type) -> int:
    gc.collect()
    return sum(1 for thing in gc.get_objects() if type(thing) is kind)


def test_a_removed_stream_lets_go_of_its_parts_and_its_series(tmp_path: Path, wait_until) -> None:
    runners, sources = live(Runner), live(DemoSource)
    run = Pipeline([{"name": "base", "source": "demo:160x120"}], out=str(tmp_path / "{name}.mp4"), metrics_port=0, **FAST)
    try:
        run.start()
        base = run.metrics_url.removesuffix("/metrics")
        names = [f"cam-{number}" for number in range(4)] + ["cam-0"]  # a name used again, too
        for name in names:
            status, _ = request(f"{base}/streams", "POST", {"name": name, "source": "demo:160x120", "out": f"{name}.mp4"})
            assert status == 201
            assert wait_until(lambda: any(entry["name"] == name and entry["frames"] >= 2 for entry in run.describe()), WAIT_S)
            status, body = request(f"{base}/streams/{name}", "DELETE")
            assert status == 200 and json.loads(body)["frames"] >= 2
        metrics = request(f"{base}/metrics")[1].decode()
        assert 'stream="base"' in metrics and 'stream="cam-' not in metrics
        assert 'streamseg_class_fraction{class="Road",stream="base"}' in metrics  # per-class series go with their stream
        assert run.names() == ["base"]
        assert live(Runner) - runners == 1, "only the running stream's runner is left"
        assert live(DemoSource) - sources == 1, "only the running stream's source is left"
    finally:
        run.close()
    # What the summary needs stays: every stream's result, the name used twice under NAME#2.
    assert sorted(run.result.streams) == ["base", "cam-0", "cam-0#2", "cam-1", "cam-2", "cam-3"]
    assert all(result.frames >= 2 and result.error is None for result in run.result.streams.values())


@pytest.mark.slow
def test_adding_and_removing_a_stream_over_http_leaves_memory_and_metrics_flat(tmp_path: Path) -> None:
    """``tools/soak_churn.py`` for CYCLES cycles: RSS after cycle SETTLED grows by less than RSS_GROWTH_MB."""
    lines = tmp_path / "churn.jsonl"
    completed = subprocess.run(
        [sys.executable, "tools/soak_churn.py", "--cycles", str(CYCLES), "--out-dir", str(tmp_path / "out"), "--json", str(lines),
         "--max-seconds", "300"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    cycles = [record for record in records if record.get("cycle")]
    summary = records[-1]["summary"]
    assert len(cycles) == CYCLES, summary
    assert summary["empty_outputs"] == 0 and not any(record["error"] for record in cycles)
    assert summary["rss_growth_mb"] < RSS_GROWTH_MB, summary
    assert summary["metrics_bytes_max"] < METRICS_BYTES, summary
    assert summary["threads_last"] <= summary["threads_first"] + 2 and summary["fds_last"] <= summary["fds_first"] + 2, summary
