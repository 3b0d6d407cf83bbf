#!/usr/bin/env python3
"""Churn soak: add and remove a stream over HTTP many times, and watch what the run keeps.

Starts ``streamseg run`` as a many-streams run with one endless stream (``base``, the demo
scene) and ``--metrics-port``, then repeats, ``--cycles`` times:

    POST /streams {"name": "churn-0001", "source": SOURCE, "out": "churn-0001.mp4"}
    wait until GET /streams/churn-0001 counts ``--frames`` frames
    DELETE /streams/churn-0001      (its outputs are closed, whole, before the answer)

and after each cycle samples the run's resident memory (VmRSS in /proc/PID/status), its
threads and open files, and the size of ``/metrics``. Each sample is one JSON line; the
first line says what ran (machine, date, command) and the last sums up: RSS at cycle 20 and
at the last cycle, the growth between them, and the largest /metrics.

Everything binds and talks to 127.0.0.1. The run's working folder is ``--out-dir``, where its
own ``--out {name}.mp4`` and each added stream's ``out`` go, so the HTTP-named outputs lie
under the run's output root. Each added stream's video is checked (it exists and is not
empty) and deleted after its cycle, unless ``--keep-outputs``. The soak stops by itself after
``--cycles`` or ``--max-seconds``, whichever comes first, and stops the run with SIGINT.

    python tools/soak_churn.py --cycles 200 --json benchmarks/churn-2026-12-06/after.jsonl

Arguments after ``--`` go to ``streamseg run`` in place of the default model options
(``--model erfnet-half --backend torch --precision fp32 --input-size 160x120``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_RUN_ARGS = ["--model", "erfnet-half", "--backend", "torch", "--precision", "fp32", "--input-size", "160x120"]
SETTLED_CYCLE = 20  # growth is measured from here: the first cycles fill caches and pools that then stay
_METRICS_URL = re.compile(r"metrics on (http://127\.0\.0\.1:\d+)/metrics")


def cpu_name() -> str:
    """The CPU's model name, with AMX named when it has it (the name alone often says only "Xeon")."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return f"{name} with AMX" if "amx_tile" in flags else name


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS (kB) and Threads of process ``pid``, and its open file descriptors."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "Threads"):
            values[key] = int(rest.split()[0])
    values["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return values


def request(url: str, method: str = "GET", body: dict | None = None, timeout: float = 60.0) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers), timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Run:
    """``streamseg run`` in a subprocess, its stderr read on a thread (kept, and searched for the metrics address)."""

    def __init__(self, command: list[str], cwd: Path) -> None:
        self.process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.base_url: str | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            found = _METRICS_URL.search(line)
            if found and self.base_url is None:
                self.base_url = found.group(1)

    def wait_started(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.base_url is not None and request(self.base_url + "/streams", timeout=10)[0] == 200:
                return self.base_url
            time.sleep(0.2)
        raise RuntimeError("the run did not start:\n" + "\n".join(self.lines[-20:]))

    def stop(self, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # a graceful stop: every stream closes its outputs
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        return self.process.returncode


def stream_frames(base_url: str, name: str) -> int:
    status, body = request(f"{base_url}/streams/{name}", timeout=10)
    return json.loads(body).get("frames", 0) if status == 200 else -1


def churn(arguments: argparse.Namespace, write) -> dict:
    """Runs the soak, writing each sample through ``write``; returns the summary."""
    out_dir = arguments.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    run_args = arguments.run_args or DEFAULT_RUN_ARGS
    command = [
        sys.executable, "-m", "streamseg", "run", "--stream", f"base={arguments.base}",
        "--out", str(out_dir / "{name}.mp4"), "--metrics-host", "127.0.0.1", "--metrics-port", "0", *run_args,
    ]
    write({
        "what": "churn soak", "machine": cpu_name(), "cpus": os.cpu_count(), "date": datetime.date.today().isoformat(),
        "tool": " ".join(sys.argv), "run": " ".join(command), "source": arguments.source, "frames_per_cycle": arguments.frames,
        "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"), "pythonpath": os.environ.get("PYTHONPATH"),
    })
    run = Run(command, cwd=out_dir)
    started = time.monotonic()
    samples: list[dict] = []
    try:
        base_url = run.wait_started(arguments.start_timeout)
        first = proc_status(run.process.pid)
        write({"cycle": 0, "rss_mb": round(first["VmRSS"] / 1024, 1), "threads": first["Threads"], "fds": first["fds"],
               "metrics_bytes": len(request(base_url + "/metrics")[1])})
        for cycle in range(1, arguments.cycles + 1):
            if time.monotonic() - started > arguments.max_seconds:
                write({"stopped": f"--max-seconds {arguments.max_seconds} reached after {cycle - 1} cycles"})
                break
            name = f"churn-{cycle:04d}" if not arguments.same_name else "churn"
            out_name = f"{name}.mp4" if not arguments.same_name else f"churn-{cycle:04d}.mp4"
            status, body = request(base_url + "/streams", "POST", {"name": name, "source": arguments.source, "out": out_name})
            if status != 201:
                raise RuntimeError(f"cycle {cycle}: POST /streams answered {status}: {body.decode(errors='replace').strip()}")
            deadline = time.monotonic() + arguments.cycle_timeout
            while stream_frames(base_url, name) < arguments.frames and time.monotonic() < deadline:
                time.sleep(0.05)
            status, body = request(f"{base_url}/streams/{name}", "DELETE")
            if status != 200:
                raise RuntimeError(f"cycle {cycle}: DELETE answered {status}: {body.decode(errors='replace').strip()}")
            removed = json.loads(body)
            output = out_dir / out_name
            out_bytes = output.stat().st_size if output.exists() else 0
            if not arguments.keep_outputs:
                output.unlink(missing_ok=True)
            metrics_bytes = len(request(base_url + "/metrics")[1])
            status_now = proc_status(run.process.pid)
            sample = {
                "cycle": cycle, "t_s": round(time.monotonic() - started, 1), "rss_mb": round(status_now["VmRSS"] / 1024, 1),
                "threads": status_now["Threads"], "fds": status_now["fds"], "metrics_bytes": metrics_bytes,
                "frames": removed.get("frames"), "error": removed.get("error"), "out_bytes": out_bytes,
            }
            samples.append(sample)
            write(sample)
            if arguments.progress:
                print(f"cycle {cycle}: {sample['rss_mb']} MB, /metrics {metrics_bytes} B, {sample['threads']} threads",
                      file=sys.stderr, flush=True)
    finally:
        code = run.stop()
    summary = summarise(samples)
    summary.update({"exit_code": code, "seconds": round(time.monotonic() - started, 1)})
    problems = [line for line in run.lines if "error:" in line or "warning:" in line]
    if problems:
        summary["log_problems"] = problems[:10]
    write({"summary": summary})
    return summary


def summarise(samples: list[dict]) -> dict:
    """RSS at the settled cycle and at the last, the growth between them in MB and per cycle, the largest /metrics."""
    if not samples:
        return {"cycles": 0}
    settled = next((sample for sample in samples if sample["cycle"] == SETTLED_CYCLE), samples[0])
    last = samples[-1]
    cycles = max(1, last["cycle"] - settled["cycle"])
    return {
        "cycles": last["cycle"], "rss_mb_first": samples[0]["rss_mb"], f"rss_mb_at_{settled['cycle']}": settled["rss_mb"],
        f"rss_mb_at_{last['cycle']}": last["rss_mb"], "rss_growth_mb": round(last["rss_mb"] - settled["rss_mb"], 1),
        "rss_growth_mb_per_cycle": round((last["rss_mb"] - settled["rss_mb"]) / cycles, 3),
        "metrics_bytes_max": max(sample["metrics_bytes"] for sample in samples), "metrics_bytes_last": last["metrics_bytes"],
        "threads_first": samples[0]["threads"], "threads_last": last["threads"], "fds_first": samples[0]["fds"], "fds_last": last["fds"],
        "empty_outputs": sum(1 for sample in samples if not sample["out_bytes"]),
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    run_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=200, help="add/remove cycles (default %(default)s)")
    parser.add_argument("--frames", type=int, default=5, help="frames each added stream runs before it is removed (default %(default)s)")
    parser.add_argument("--source", default="demo:160x120", help="what each added stream reads (default %(default)s)")
    parser.add_argument("--base", default="demo:160x120", help="the run's endless first stream (default %(default)s)")
    parser.add_argument("--same-name", action="store_true", help="reuse one stream name instead of a new name each cycle")
    parser.add_argument("--out-dir", type=Path, help="the run's working folder and output root (default: a temporary folder)")
    parser.add_argument("--keep-outputs", action="store_true", help="keep each added stream's video")
    parser.add_argument("--json", type=Path, help="write the JSON lines here as well as to stdout")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="stop after this long, whatever the cycles (default %(default)s)")
    parser.add_argument("--cycle-timeout", type=float, default=60.0, help="longest wait for one stream's frames (default %(default)s)")
    parser.add_argument("--start-timeout", type=float, default=300.0, help="longest wait for the run to serve (default %(default)s)")
    parser.add_argument("--progress", action="store_true", help="a line per cycle on stderr")
    arguments = parser.parse_args(own)
    arguments.run_args = run_args
    if not 1 <= arguments.cycles <= 100_000:
        parser.error("--cycles must be in 1..100000")
    sink = arguments.json.open("w") if arguments.json else None

    def write(record: dict) -> None:
        line = json.dumps(record)
        print(line, flush=True)
        if sink is not None:
            sink.write(line + "\n")
            sink.flush()

    temporary = None
    if arguments.out_dir is None:
        temporary = tempfile.mkdtemp(prefix="soak-churn-")
        arguments.out_dir = Path(temporary)
    try:
        churn(arguments, write)
    finally:
        if sink is not None:
            sink.close()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
