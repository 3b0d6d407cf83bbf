import threading
import time

import pytest

from streamseg.pipeline.queues import BufferPolicy, Closed, FrameQueue


def test_wait_policy_blocks_until_room_and_loses_nothing():
    queue = FrameQueue("q", 2, BufferPolicy.WAIT)
    received = []

    def consume():
        for _ in range(10):
            received.append(queue.get())
            time.sleep(0.001)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for item in range(10):
        queue.put(item)
        assert len(queue) <= 2
    consumer.join(timeout=5)
    assert received == list(range(10))
    assert queue.max_depth_seen <= 2


def test_drop_oldest_keeps_the_newest_and_reports_each_drop():
    dropped = []
    queue = FrameQueue("q", 3, BufferPolicy.DROP_OLDEST, on_drop=dropped.append)
    for item in range(10):
        queue.put(item)
    assert [queue.get() for _ in range(3)] == [7, 8, 9]
    assert dropped == list(range(7))


@pytest.mark.parametrize("action", ["get", "put"])
def test_close_wakes_a_waiting_thread(action):
    queue = FrameQueue("q", 1, BufferPolicy.WAIT)
    if action == "put":
        queue.put("fills it")
    outcome = []

    def wait():
        try:
            queue.get() if action == "get" else queue.put("blocked")
        except Closed:
            outcome.append("closed")

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.05)
    queue.close()
    waiter.join(timeout=5)
    assert outcome == ["closed"]


def test_forced_put_ignores_the_limit():
    queue = FrameQueue("q", 1, BufferPolicy.WAIT)
    queue.put(1)
    queue.put("end", force=True)
    assert [queue.get(), queue.get()] == [1, "end"]


def test_zero_size_is_refused():
    with pytest.raises(ValueError):
        FrameQueue("q", 0, BufferPolicy.WAIT)
