"""The batcher: frames of several streams share one call of a real backend and each gets its own answer.

The backend is the trained ERFNet on torch at a small size, segmenting the demo scene (drawn by the
project, so no data is needed); what the batcher hands back must be what the backend gives for
that frame alone.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from streamseg.backends import BackendOptions, create_backend
from streamseg.backends.base import Backend
from streamseg.models import load_model
from streamseg.pipeline.batcher import Batcher
from streamseg.image.preprocessing import images_to_batch
from streamseg.image.resize import resize_rgb
from streamseg.sources import open_source

SIZE = (90, 120)  # (H, W): small, so the CPU cases are quick


@pytest.fixture(scope="module")
def backend() -> Backend:
    model = load_model("erfnet", None)[0]
    with create_backend("torch", model, SIZE, "fp32", BackendOptions(threads=1)) as backend:
        yield backend


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Eight different demo frames at the network's size."""
    with open_source("demo:240x180", demo_frames=8) as source:
        return np.stack([resize_rgb(frame.image, SIZE) for frame in source])


def ask_at_once(clients: list[Backend], images: np.ndarray, call) -> list[np.ndarray]:
    """Each client asks for one image from its own thread, all released together, as streams do."""
    results: list[np.ndarray | None] = [None] * len(clients)
    start = threading.Barrier(len(clients))

    def ask(number: int) -> None:
        start.wait()
        results[number] = call(clients[number], images[number : number + 1])[0]

    threads = [threading.Thread(target=ask, args=(number,)) for number in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_labels_batched_across_streams_are_each_frames_own(backend: Backend, images: np.ndarray) -> None:
    with Batcher(backend, max_batch=8, wait_s=0.5) as batcher:  # a long wait: all eight join one call
        clients = [batcher.client() for _ in images]
        labels = ask_at_once(clients, images, lambda client, image: client.infer_labels(image))
        assert batcher.calls < len(images), "the frames were not batched"
    for image, got in zip(images, labels):
        alone = backend.infer_labels(image[None])[0]
        assert got.shape == alone.shape == SIZE
        assert np.mean(got == alone) >= 0.9999


def test_scores_batched_across_streams_are_each_frames_own(backend: Backend, images: np.ndarray) -> None:
    with Batcher(backend, max_batch=4, wait_s=0.5) as batcher:
        clients = [batcher.client() for _ in range(4)]
        batches = images_to_batch(images[:4])
        logits = ask_at_once(clients, batches, lambda client, batch: client.infer(batch))
        assert batcher.mean_batch > 1
    for batch, got in zip(batches, logits):
        np.testing.assert_allclose(got, backend.infer(batch[None])[0], atol=1e-3)


def test_a_batch_holds_at_most_max_batch_frames(backend: Backend, images: np.ndarray) -> None:
    with Batcher(backend, max_batch=3, wait_s=0.5) as batcher:
        clients = [batcher.client() for _ in images]
        ask_at_once(clients, images, lambda client, image: client.infer_labels(image))
        assert batcher.frames == len(images)
        assert batcher.calls >= 3  # 8 frames, at most 3 a call


def test_labels_at_another_size_are_scaled_to_it(backend: Backend, images: np.ndarray) -> None:
    with Batcher(backend, max_batch=2, wait_s=0.0) as batcher:
        labels = batcher.client().infer_labels(images[:1], (180, 240))
    assert labels.shape == (1, 180, 240)


class _Failing(Backend):
    """A backend whose engine fails on a batch holding a black frame, as a broken engine would."""

    name = "failing"

    def __init__(self) -> None:
        super().__init__(SIZE, "fp32")

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if (batch.reshape(len(batch), -1).max(axis=1) == 0).any():
            raise RuntimeError("engine failed")
        return np.zeros((len(batch), 2, *SIZE), np.float32)


def test_a_failed_call_fails_its_frames_and_the_batcher_goes_on() -> None:
    with Batcher(_Failing(), max_batch=1, wait_s=0.0) as batcher:
        client = batcher.client()
        with pytest.raises(RuntimeError, match="engine failed"):
            client.infer(np.zeros((1, 3, *SIZE), np.float32))
        assert client.infer(np.ones((1, 3, *SIZE), np.float32)).shape == (1, 2, *SIZE)


class _Gated(Backend):
    """Records the frames of each call by their value; its first call waits for ``open``, so that frames queue up behind it."""

    name = "gated"

    def __init__(self) -> None:
        super().__init__(SIZE, "fp32")
        self.open = threading.Event()
        self.calls: list[list[int]] = []

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(sorted(int(value) for value in batch[:, 0, 0, 0]))
        if len(self.calls) == 1:
            self.open.wait(timeout=30)
        return np.zeros((len(batch), 2, *SIZE), np.float32)


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_call_holds_at_most_one_frame_of_each_stream() -> None:
    """Two streams with two frames each waiting: two calls of one frame of each, not one call of all four."""
    backend = _Gated()
    with Batcher(backend, max_batch=8, wait_s=0.5) as batcher:
        first, second = batcher.client(), batcher.client()

        def ask(client: Backend, value: int) -> threading.Thread:
            thread = threading.Thread(target=client.infer, args=(np.full((1, 3, *SIZE), value, np.float32),))
            thread.start()
            return thread

        threads = [ask(first, 9)]
        wait_for(lambda: len(backend.calls) == 1)  # the backend is busy with frame 9 ...
        threads += [ask(first, 1), ask(first, 2), ask(second, 3), ask(second, 4)]
        wait_for(lambda: batcher.waiting == 4)  # ... while both streams queue two frames each
        backend.open.set()
        for thread in threads:
            thread.join()
    assert backend.calls[0] == [9]
    assert sorted(value for call in backend.calls[1:] for value in call) == [1, 2, 3, 4]
    assert len(backend.calls) == 3, backend.calls  # the four frames in two calls ...
    for call in backend.calls[1:]:
        assert {1, 2} - set(call) and {3, 4} - set(call), backend.calls  # ... of one frame of each stream


def test_closing_refuses_new_frames(backend: Backend, images: np.ndarray) -> None:
    batcher = Batcher(backend, max_batch=2, wait_s=0.0)
    client = batcher.client()
    batcher.close()
    batcher.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        client.infer_labels(images[:1])


class _ThreadRecording(Backend):
    """The real backend, noting which thread made each call."""

    def __init__(self, real: Backend) -> None:
        super().__init__(real.input_size, real.precision, real.concurrent_calls)
        self.real = real
        self.name = real.name
        self.threads: list[str] = []

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.threads.append(threading.current_thread().name)
        return self.real.infer(batch)


def test_a_stream_alone_calls_the_backend_from_its_own_thread_and_two_share_the_batching_threads(
    backend: Backend, images: np.ndarray,
) -> None:
    recording = _ThreadRecording(backend)
    with Batcher(recording, max_batch=8, wait_s=0.5) as batcher:
        alone = batcher.client()
        labels = alone.model_labels(images[:1])
        np.testing.assert_array_equal(labels, backend.model_labels(images[:1]))
        assert recording.threads == [threading.current_thread().name]  # no hand-over to a batching thread
        other = batcher.client()
        ask_at_once([alone, other], images, lambda client, image: client.model_labels(image))
        assert recording.threads[1:] == ["batcher-0"]  # both frames in one call of a batching thread
        assert (batcher.calls, batcher.frames) == (2, 3)
        alone.close()
        other.close()
