"""A CRF worker that dies leaves one line on stderr (through logging) saying so, as well as the counters."""

import os
import signal
import time

import numpy as np
from crf_test_helpers import GatedRefiner

from streamseg.refine.async_pool import AsyncCrfPool

RNG = np.random.default_rng(0)
IMAGE = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)
IMAGE[0, 0] = 0  # the key of its gate for GatedRefiner
PROBABILITIES = RNG.random((11, 24, 32)).astype(np.float32)
LIMIT_S = 30.0


def test_a_killed_worker_is_reported_in_one_log_line(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="streamseg.refine.async_pool"):
        with AsyncCrfPool(GatedRefiner(tmp_path), workers=1) as pool:
            pool.submit(7, IMAGE, PROBABILITIES)
            victim = pool._workers[0].process.pid
            os.kill(victim, signal.SIGKILL)  # mid-frame: it is held at the gate
            give_up = time.monotonic() + LIMIT_S
            while pool.counts().workers_replaced == 0 and time.monotonic() < give_up:
                pool.poll(timeout=0.1)
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [f"a CRF worker (pid {victim}) was killed by SIGKILL; starting a replacement, frame 7 is lost"]
