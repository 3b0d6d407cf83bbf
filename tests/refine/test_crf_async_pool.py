"""The CRF worker pool: shared memory reused and released, busy workers skip, dead workers are replaced."""

import os
import signal
import time

import numpy as np
import pytest
from crf_test_helpers import (
    ArgmaxRefiner,
    BrokenRefiner,
    BusyRefiner,
    GatedRefiner,
    open_gate,
    shm_entries,
    upsampled_argmax,
)
from prometheus_client import CollectorRegistry

from streamseg.refine.async_pool import AsyncCrfPool, CrfWorkerError, PoolResult
from streamseg.refine.prometheus import CrfMetrics

RNG = np.random.default_rng(0)
IMAGE = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)
IMAGE[0, 0] = 0  # the key of its gate for GatedRefiner
PROBABILITIES = RNG.random((11, 24, 32)).astype(np.float32)
EXPECTED = upsampled_argmax(PROBABILITIES, (48, 64))
LIMIT_S = 30.0  # a bound on waits so that a broken pool fails the test instead of hanging it


def drain(pool: AsyncCrfPool) -> list[PoolResult]:
    """Waits for every frame the pool holds."""
    results = []
    give_up = time.monotonic() + LIMIT_S
    while pool.in_flight() and time.monotonic() < give_up:
        results += pool.poll(timeout=0.5)
    assert not pool.in_flight(), "the pool kept frames for too long"
    return results


def sample(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(name) or 0.0


@pytest.mark.slow
def test_a_thousand_frames_reuse_one_segment_per_worker_and_leave_nothing_behind():
    pydensecrf = pytest.importorskip("streamseg.refine.dense_crf")
    pytest.importorskip("pydensecrf.densecrf", reason="pydensecrf (pydensecrf2) is not installed")
    before = shm_entries()
    with AsyncCrfPool(pydensecrf.DenseCRFRefiner(iterations=1), workers=2) as pool:
        assert pool.segment_names == []  # created with the first frames, sized for them
        pool.submit(0, IMAGE, PROBABILITIES)
        pool.submit(1, IMAGE, PROBABILITIES)
        segments = set(pool.segment_names)
        assert len(segments) == 2 and segments <= shm_entries()
        refined = len(pool.poll(timeout=LIMIT_S))
        for index in range(2, 1000):
            pool.submit(index, IMAGE, PROBABILITIES)
            refined += len(pool.poll(timeout=0.002))
        refined += len(drain(pool))
        assert set(pool.segment_names) == segments  # no segment per frame
        assert shm_entries() - before == segments
        counts = pool.counts()
    assert shm_entries() - before == set()
    assert counts.submitted == 1000
    assert counts.refined == refined > 0
    assert counts.refined + counts.skipped == 1000


def test_labels_come_back_for_the_frame_that_was_sent():
    with AsyncCrfPool(ArgmaxRefiner(), workers=2) as pool:
        images = [np.full((48, 64, 3), value, np.uint8) for value in range(3)]
        probabilities = [np.roll(PROBABILITIES, shift, axis=0) for shift in range(3)]
        for index in range(3):
            pool.submit(index, images[index], probabilities[index])
            for done, labels, _ in pool.poll(timeout=LIMIT_S) + drain(pool):
                np.testing.assert_array_equal(labels, upsampled_argmax(probabilities[done], (48, 64)))


def test_when_workers_are_busy_the_newest_frame_waits_and_older_waiting_ones_are_skipped(tmp_path):
    registry = CollectorRegistry()
    with AsyncCrfPool(GatedRefiner(tmp_path), workers=1, metrics=CrfMetrics(registry)) as pool:
        assert pool.submit(0, IMAGE, PROBABILITIES) is True  # taken by the worker, held at the gate
        assert pool.submit(1, IMAGE, PROBABILITIES) is False  # waits
        assert pool.submit(2, IMAGE, PROBABILITIES) is False  # replaces 1
        assert pool.submit(3, IMAGE, PROBABILITIES) is False  # replaces 2
        assert pool.in_flight() == {0, 3}
        assert pool.counts().skipped == 2
        assert sample(registry, "streamseg_crf_frames_skipped_total") == 2
        assert sample(registry, "streamseg_crf_workers_busy") == 1
        open_gate(tmp_path, 0)
        done = [index for index, _, _ in drain(pool)]
    assert done == [0, 3]
    assert sample(registry, "streamseg_crf_frames_refined_total") == 2
    assert sample(registry, "streamseg_crf_latency_seconds_count") == 2


def test_a_killed_worker_is_replaced_and_later_frames_still_refine(tmp_path):
    registry = CollectorRegistry()
    before = shm_entries()
    with AsyncCrfPool(GatedRefiner(tmp_path), workers=2, metrics=CrfMetrics(registry)) as pool:
        pool.submit(0, IMAGE, PROBABILITIES)
        victim = next(worker for worker in pool._workers if worker.task is not None)
        os.kill(victim.process.pid, signal.SIGKILL)  # mid-frame: it is held at the gate
        give_up = time.monotonic() + LIMIT_S
        while pool.counts().workers_replaced == 0 and time.monotonic() < give_up:
            pool.poll(timeout=0.1)
        assert pool.counts().lost == 1 and pool.counts().workers_replaced == 1
        assert sample(registry, "streamseg_crf_workers_replaced_total") == 1
        assert sample(registry, "streamseg_crf_frames_lost_total") == 1
        assert pool.in_flight() == set()

        open_gate(tmp_path, 0)
        results = []
        for index in range(1, 6):
            pool.submit(index, IMAGE, PROBABILITIES)
            results += pool.poll(timeout=LIMIT_S)
        results += drain(pool)
        assert sorted(index for index, _, _ in results) == [1, 2, 3, 4, 5]  # two workers may finish out of order
        for _, labels, _ in results:
            np.testing.assert_array_equal(labels, EXPECTED)
    assert shm_entries() - before == set()


def test_workers_ignore_ctrl_c():
    with AsyncCrfPool(ArgmaxRefiner(), workers=1) as pool:
        pool.submit(0, IMAGE, PROBABILITIES)
        assert len(pool.poll(timeout=LIMIT_S)) == 1  # the worker is past its start-up
        os.kill(pool._workers[0].process.pid, signal.SIGINT)
        pool.submit(1, IMAGE, PROBABILITIES)
        assert [index for index, _, _ in pool.poll(timeout=LIMIT_S)] == [1]
        assert pool.counts().workers_replaced == 0


def test_a_worker_that_cannot_start_is_an_error_before_any_frame_not_a_restart_loop():
    before = shm_entries()
    started = time.monotonic()
    with pytest.raises(CrfWorkerError, match="could not start: ImportError"):
        AsyncCrfPool(BrokenRefiner(), workers=1, ready_timeout=LIMIT_S)
    assert time.monotonic() - started < LIMIT_S
    assert shm_entries() - before == set()


def test_a_cpu_share_makes_a_worker_rest_after_each_frame():
    # 0.2 s of CPU at a share of 0.001 means no new frame for 200 s after it started
    # (less the time it took, which a busy machine can stretch, but not that far).
    with AsyncCrfPool(BusyRefiner(cpu_seconds=0.2), workers=1, cpu_share=0.001) as pool:
        assert pool.submit(0, IMAGE, PROBABILITIES)
        assert [index for index, _, _ in drain(pool)] == [0]
        assert not pool.submit(1, IMAGE, PROBABILITIES), "a resting worker took a frame"
        assert pool.poll(timeout=0.5) == []
        assert pool.busy == 0 and pool.in_flight() == {1}  # parked, not refined


def test_without_a_cpu_share_an_idle_worker_takes_the_next_frame_at_once():
    with AsyncCrfPool(BusyRefiner(cpu_seconds=0.2), workers=1) as pool:
        assert pool.submit(0, IMAGE, PROBABILITIES)
        drain(pool)
        assert pool.submit(1, IMAGE, PROBABILITIES)
        drain(pool)


@pytest.mark.parametrize(
    "settings, message",
    [({"start_method": "fork"}, "fork would copy"), ({"workers": 0}, "workers must be"), ({"cpu_share": 0}, "cpu_share must be")],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        AsyncCrfPool(ArgmaxRefiner(), **settings)


def test_bad_frames_are_refused_before_they_reach_a_worker():
    with AsyncCrfPool(ArgmaxRefiner(), workers=1) as pool:
        with pytest.raises(ValueError, match="image must be RGB uint8"):
            pool.submit(0, IMAGE[..., 0], PROBABILITIES)
        assert pool.in_flight() == set()


def test_a_closed_pool_refuses_work_and_closes_again_quietly():
    pool = AsyncCrfPool(ArgmaxRefiner(), workers=1)
    pool.close()
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(0, IMAGE, PROBABILITIES)
