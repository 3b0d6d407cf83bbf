"""Frames of one image topic of a ROS bag: ``bag:PATH`` (its only image topic) or ``bag:PATH#/camera/image_raw``.

Each frame carries its message's header (stamp and frame_id) in ``Frame.header``, and the source
names its topic in ``topic``. A bag is read as fast as the pipeline takes frames, none dropped;
``realtime`` replays it at the pace it was recorded, as a camera would deliver it (a live
source: a pipeline that falls behind drops the stale frames).

A bag with several image topics is several streams: :func:`bag_streams` lists them, one
SOURCE per topic, for the run to open each as a stream of its own.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

from streamseg.errors import InputError
from streamseg.frame import Frame
from streamseg.sources.bag_files import BagFile, Topic, open_bag
from streamseg.sources.bag_spec import PREFIX, BagSpec, parse_bag_spec, stream_name
from streamseg.sources.base import Source
from streamseg.sources.ros_images import IMAGE_TYPES, DamagedImage, UnknownEncoding, check_known, header_of, rgb_image

__all__ = ["BagSource", "BagSpec", "bag_streams", "parse_bag_spec", "stream_name"]

DEFAULT_FPS = 30.0  # when a topic's rate cannot be told from the bag: a camera's commonest


def bag_streams(spec: str) -> list[tuple[str, str]]:
    """The streams ``spec`` holds, as (name, SOURCE): ``bag:PATH#/topic`` is one; ``bag:PATH`` one per image topic.

    Each is opened and closed again here, so that a run refuses a bag it cannot read, a topic it
    lacks or an encoding this reader does not know (``InputError``) before its model loads.
    """
    parsed = parse_bag_spec(spec)
    if parsed.topic is not None:
        topics = [parsed.topic]
    else:
        bag = open_bag(parsed.path)
        try:
            topics = [topic.name for topic in _image_topics(bag)]
            if not topics:
                raise InputError(_no_image_topics(bag))
        finally:
            bag.close()
    for topic in topics:
        BagSource(parsed.path, topic).close()
    return [(stream_name(topic), f"{PREFIX}{parsed.path}#{topic}") for topic in topics]


class BagSource(Source):
    """The images of one topic of a ROS bag as RGB frames, in the order they were recorded.

    The bag is opened and its topic's first message read here, so a bag that cannot be read,
    a topic it lacks and an encoding this reader does not know fail at once with an
    ``InputError`` (the message lists the bag's image topics where that helps). Damage met
    while reading does not raise: a message that cannot be read is skipped, and a bag that
    ends early (an MCAP cut short) ends the frames; ``damage`` says in one line what was lost.

    ``Frame.timestamp`` is seconds since the topic's first message, by header stamps (by log
    times where the stamps are unset). Each iteration reads the topic from its start.
    ``close()`` may be called from another thread; a realtime replay waiting for its next
    frame's time stops at once.
    """

    live = False

    def __init__(self, path: str | Path, topic: str | None = None, *, realtime: bool = False) -> None:
        self.path = Path(path)
        self.realtime = realtime
        self.live = realtime  # at the recorded pace a pipeline that falls behind drops, as with a camera
        self.damage: str | None = None
        self._bag: BagFile | None = open_bag(self.path)
        try:
            chosen = self._choose(topic)
            self._check_first_message(chosen)
        except BaseException:
            self._bag.close()
            raise
        self.topic: str = chosen.name
        self.msgtype = chosen.msgtype
        self.frame_count = chosen.count  # an upper bound: unreadable messages are skipped
        span = self._bag.span_ns
        self._fps = (chosen.count - 1) * 1e9 / span if chosen.count > 1 and span > 0 else DEFAULT_FPS
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._walking = False

    @property
    def fps(self) -> float:
        return self._fps

    def __iter__(self) -> Iterator[Frame]:
        with self._lock:
            if self._closing.is_set() or self._walking:
                return iter(())
            self._walking = True
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        bag = self._bag
        self.damage = None
        index = skipped = 0
        why_skipped = ""
        first_stamp: int | None = None
        by_header = True
        pace: tuple[float, int] | None = None  # (monotonic clock, log time) of the first frame, for realtime
        walk = bag.messages(self.topic)
        finished = False
        try:
            for log_ns, message in walk:
                if self._closing.is_set():
                    return
                try:
                    image = rgb_image(message, self.msgtype)
                    header = header_of(message)
                except (UnknownEncoding, DamagedImage) as error:
                    skipped += 1
                    why_skipped = str(error)
                    continue
                if first_stamp is None:
                    by_header = header.stamp_ns != 0  # some drivers leave the stamp unset: the log time stands in
                    first_stamp = header.stamp_ns if by_header else log_ns
                stamp = header.stamp_ns if by_header else log_ns
                if self.realtime:
                    pace = pace or (time.monotonic(), log_ns)
                    delay = (log_ns - pace[1]) / 1e9 - (time.monotonic() - pace[0])
                    if delay > 0 and self._closing.wait(delay):
                        return
                yield Frame(index=index, timestamp=(stamp - first_stamp) / 1e9, image=image, header=header)
                index += 1
            finished = True
        finally:
            walk.close()
            self.damage = self._describe_damage(index, skipped + bag.unreadable, why_skipped, bag.stopped if finished else None)
            with self._lock:
                self._walking = False
                closing = self._closing.is_set()
            if closing:
                self._close_bag()

    def _describe_damage(self, delivered: int, skipped: int, why_skipped: str, stopped: str | None) -> str | None:
        parts = []
        if stopped:
            parts.append(f"reading stopped after {delivered} frames ({stopped})")
        if skipped:
            plural = "message" if skipped == 1 else "messages"
            reason = f": {why_skipped}" if why_skipped else ""
            parts.append(f"skipped {skipped} unreadable {plural} of {self.topic}{reason}")
        return f"{self.path} is damaged: {'; '.join(parts)}" if parts else None

    def _choose(self, topic: str | None) -> Topic:
        bag = self._bag
        images = _image_topics(bag)
        listed = _listing(images)
        if topic is None:
            if not images:
                raise InputError(_no_image_topics(bag))
            if len(images) > 1:
                raise InputError(
                    f"{self.path} has {len(images)} image topics ({listed}): pick one with bag:{self.path}#TOPIC "
                    "(streamseg run bag:PATH runs each as a stream)"
                )
            return images[0]
        found = bag.topics.get(topic)
        if found is None:
            has = f"its image topics: {listed}" if images else _no_image_topics(bag)
            raise InputError(f"{self.path} has no topic {topic}; {has}")
        if found.msgtype not in IMAGE_TYPES:
            raise InputError(f"{self.path}: {topic} holds {found.msgtype}, not images; its image topics: {listed or 'none'}")
        return found

    def _check_first_message(self, topic: Topic) -> None:
        """An encoding this reader does not know is refused before the run starts, not met frame by frame."""
        walk = self._bag.messages(topic.name)
        try:
            first = next(walk, None)
        finally:
            walk.close()
        if first is None:
            if self._bag.stopped is None and self._bag.unreadable == 0:
                raise InputError(f"{self.path}: {topic.name} holds no messages")
            return  # the damage is reported when the topic is read
        try:
            check_known(first[1], topic.msgtype)
        except UnknownEncoding as error:
            raise InputError(f"{self.path}#{topic.name}: {error}") from None

    def _close_bag(self) -> None:
        with self._lock:
            bag, self._bag = self._bag, None
        if bag is not None:
            bag.close()

    def close(self) -> None:
        """Closes the bag now, or, while a walk is reading it in another thread, as soon as that walk ends."""
        with self._lock:
            self._closing.set()
            if self._walking:
                return
        self._close_bag()


def _image_topics(bag: BagFile) -> list[Topic]:
    return [topic for topic in bag.topics.values() if topic.msgtype in IMAGE_TYPES]


def _listing(topics: list[Topic]) -> str:
    return ", ".join(topic.name for topic in topics)


def _no_image_topics(bag: BagFile) -> str:
    others = ", ".join(f"{topic.name} ({topic.msgtype})" for topic in bag.topics.values()) or "none"
    return f"{bag.path} has no image topics ({' or '.join(IMAGE_TYPES)}); its topics: {others}"
