"""A real Prometheus server scrapes the pipeline's /metrics during a run and answers queries on it."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path


def query(prometheus_port: int, expression: str) -> list[dict]:
    """The instant-vector result of ``expression`` from Prometheus's HTTP API ([] while it has nothing)."""
    url = f"http://127.0.0.1:{prometheus_port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
    except OSError:
        return []  # not listening yet
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_prometheus_scrapes_frames_total(demo_run, program, spawn, free_port, wait_until, tmp_path: Path) -> None:
    prometheus = program("prometheus")
    run = demo_run()
    metrics_port = run.assembly.server.port
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: streamseg\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n"
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    spawn(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=log,
    )

    def frames_scraped() -> float:
        result = query(port, "streamseg_frames_total")
        return float(result[0]["value"][1]) if result else 0.0

    assert wait_until(lambda: frames_scraped() > 0, timeout=60, interval=0.5), (
        "Prometheus has no streamseg_frames_total > 0; its log:\n" + (tmp_path / "prometheus.log").read_text()[-3000:]
    )
    target = query(port, 'up{job="streamseg"}')
    assert target and target[0]["value"][1] == "1"
    assert run.running
    info = query(port, "streamseg_info")
    assert info and info[0]["metric"]["model"] == "erfnet-half"
