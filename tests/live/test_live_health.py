"""/healthz of an assembled run: 200 "ok" while all is well, 503 naming the sink once one has failed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from streamseg.frame import Frame
from streamseg.sinks.base import Sink


class DiskFullSink(Sink):
    """Writes two frames, then fails as a full disk would."""

    name = "video_file"

    def __init__(self) -> None:
        self.written = 0

    def write(self, frame: Frame) -> None:
        if self.written == 2:
            raise OSError(28, "No space left on device")
        self.written += 1


def healthz(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_healthz_is_503_once_a_sink_has_failed(demo_run, wait_until) -> None:
    sink = DiskFullSink()
    run = demo_run(extra_sinks=lambda assembly: [sink])
    url = run.assembly.server.url
    assert wait_until(lambda: sink.written >= 1, timeout=60)
    assert wait_until(lambda: healthz(url)[0] == 503, timeout=30), healthz(url)
    assert healthz(url) == (503, {"status": "unhealthy", "detail": "degraded: sink video_file failed"})
    assert run.running  # the stream goes on without the sink; only health says something is wrong
