"""Bounded queues between stages, with a named policy for what happens when one is full."""

from __future__ import annotations

import threading
from collections import deque
from enum import Enum
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class BufferPolicy(Enum):
    """What a full queue does with a new item."""

    WAIT = "wait"  # the producer waits: files and offline work lose nothing (back-pressure)
    DROP_OLDEST = "drop_oldest"  # the oldest waiting item is discarded: live sources, latest frame wins


class Closed(Exception):
    """The queue was closed by an abort; the stage using it should return."""


class FrameQueue(Generic[T]):
    """A bounded FIFO whose ``put`` follows a BufferPolicy and whose waits end promptly on ``close``.

    ``on_drop`` is called with the dropped item under DROP_OLDEST, so drops are counted where they happen.
    """

    def __init__(self, name: str, maxsize: int, policy: BufferPolicy, on_drop: Callable[[T], None] | None = None) -> None:
        if maxsize < 1:
            raise ValueError("a queue needs room for at least one item")
        self.name = name
        self.maxsize = maxsize
        self.policy = policy
        self._on_drop = on_drop
        self._items: deque[T] = deque()
        self._lock = threading.Condition()
        self._closed = False
        self.max_depth_seen = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T, *, force: bool = False) -> None:
        """Adds ``item``; ``force`` skips the size limit (used for the end-of-stream marker)."""
        dropped = None
        with self._lock:
            while not force and len(self._items) >= self.maxsize:
                if self._closed:
                    raise Closed(self.name)
                if self.policy is BufferPolicy.DROP_OLDEST:
                    dropped = self._items.popleft()
                    break
                self._lock.wait()
            if self._closed:
                raise Closed(self.name)
            self._items.append(item)
            self.max_depth_seen = max(self.max_depth_seen, len(self._items))
            self._lock.notify_all()
        if dropped is not None and self._on_drop is not None:
            self._on_drop(dropped)

    def get(self) -> T:
        with self._lock:
            while not self._items:
                if self._closed:
                    raise Closed(self.name)
                self._lock.wait()
            item = self._items.popleft()
            self._lock.notify_all()
            return item

    def close(self) -> None:
        """Wakes every waiter with ``Closed``: used on abort, when nobody will drain the queue."""
        with self._lock:
            self._closed = True
            self._items.clear()
            self._lock.notify_all()

