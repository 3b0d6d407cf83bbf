"""Opening a ROS bag and walking one topic's messages in order, whatever the bag's format.

rosbags reads the three formats a robotics stack records, through their indexes: a ROS 2 bag
(a folder with ``metadata.yaml``, SQLite or MCAP storage, or a bare ``.mcap`` or ``.db3`` file)
and a ROS 1 ``.bag``. An MCAP file that ends before its footer, as a recording killed
mid-write does, has no index for rosbags to read: its records are read one by one with the
``mcap`` package instead, up to the cut.

A walk never raises on damage met half-way: it ends, and says why in ``stopped``. Messages that
cannot be deserialized are skipped and counted in ``unreadable``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mcap.records import Channel, Header, Message, Schema
from mcap.stream_reader import StreamReader
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

from streamseg.errors import InputError

# Types for bags that hold no message definitions (ROS 2 SQLite bags before Iron): sensor_msgs has not changed since.
_DEFAULT_TYPES = Stores.LATEST


@dataclass(frozen=True)
class Topic:
    """One topic of a bag: its name, message type (``sensor_msgs/msg/Image``) and how many messages it holds."""

    name: str
    msgtype: str
    count: int


class BagFile(ABC):
    """An opened bag: its topics, and walks over one topic's messages. Close it when done."""

    path: Path
    topics: dict[str, Topic]
    span_ns: int  # log time from the bag's first message to its last
    stopped: str | None = None  # why the last walk ended before the end of the bag; None: it read to the end
    unreadable: int = 0  # messages the last walk skipped because they could not be deserialized

    @abstractmethod
    def messages(self, topic: str) -> Iterator[tuple[int, object]]:
        """(log time in ns, deserialized message) of each message on ``topic``, in the order they were recorded."""

    @abstractmethod
    def close(self) -> None:
        """Releases the bag's files. Safe to call twice."""


def open_bag(path: Path) -> BagFile:
    """The bag at ``path``: a ROS 2 bag folder, a ``.mcap`` or ``.db3`` file, or a ROS 1 ``.bag``.

    Raises ``InputError`` with rosbags' reason, in one line, when it is none of them.
    """
    if not path.exists():
        raise InputError(f"no such bag: {path}")
    try:
        return _IndexedBag(path)
    except InputError as refused:
        files = _mcap_files(path)
        if not files:
            raise
        try:
            return _CutShortMcap(path, files)
        except _NotCutShort:
            raise refused from None


class _IndexedBag(BagFile):
    """A bag rosbags reads through its index (every format, whole files)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_dir() and not (path / "metadata.yaml").is_file():
            raise InputError(f"cannot read {path} as a ROS bag: a bag folder holds a metadata.yaml, and this one has none")
        try:
            reader = AnyReader([path], default_typestore=get_typestore(_DEFAULT_TYPES))
            reader.open()
        except Exception as error:  # rosbags', sqlite's and YAML's errors alike: this is not a bag it can read
            raise InputError(f"cannot read {path} as a ROS bag: {_reason(error)}") from None
        self._reader: AnyReader | None = reader
        self.topics = {
            name: Topic(name, info.msgtype or "(several types)", info.msgcount) for name, info in reader.topics.items()
        }
        self.span_ns = max(0, reader.end_time - 1 - reader.start_time) if reader.message_count else 0

    def messages(self, topic: str) -> Iterator[tuple[int, object]]:
        self.stopped, self.unreadable = None, 0
        reader = self._reader
        if reader is None:
            return
        connections = [connection for connection in reader.connections if connection.topic == topic]
        if not connections:
            return
        walk = reader.messages(connections=connections)
        try:
            while True:
                try:
                    connection, log_ns, raw = next(walk)
                except StopIteration:
                    return
                except Exception as error:  # whatever damaged data makes the reader raise (its own, sqlite's, a decompressor's)
                    self.stopped = _reason(error)
                    return
                try:
                    message = reader.deserialize(raw, connection.msgtype)
                except Exception:  # one mangled message: skipped and counted, the walk goes on
                    self.unreadable += 1
                    continue
                yield log_ns, message
        finally:
            walk.close()

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()


class _NotCutShort(Exception):
    """The MCAP files read to their end: what rosbags refused in them is something else."""


class _CutShortMcap(BagFile):
    """ROS 2 MCAP files that end before their footer, read record by record up to the cut.

    The files are scanned once on opening, for their topics; a walk reads them again.
    """

    def __init__(self, path: Path, files: list[Path]) -> None:
        self.path = path
        self._files = files
        self._schemas: dict[int, Schema] = {}
        self._channels: dict[int, Channel] = {}
        counts: dict[int, int] = {}
        first, last = None, None
        cuts = []
        for file in files:
            records = _records(file)
            try:
                for record in records:
                    if isinstance(record, Header) and record.profile != "ros2":
                        raise InputError(f"cannot read {file} as a ROS bag: its MCAP profile is {record.profile!r}, not ros2")
                    if isinstance(record, Schema):
                        self._schemas[record.id] = record
                    elif isinstance(record, Channel):
                        self._channels[record.id] = record
                    elif isinstance(record, Message):
                        counts[record.channel_id] = counts.get(record.channel_id, 0) + 1
                        first = record.log_time if first is None else min(first, record.log_time)
                        last = record.log_time if last is None else max(last, record.log_time)
            except InputError:
                raise
            except Exception as error:  # the cut: the mcap package raises whatever the half record makes it
                cuts.append(f"{file.name} {_cut_reason(error)}")
            finally:
                records.close()
        if not cuts:
            raise _NotCutShort(path)
        if not self._channels:
            raise InputError(f"cannot read {path} as a ROS bag: {'; '.join(cuts)}, before its first topic")
        self._typestore = _typestore(self._schemas.values())
        self.topics = {}
        for channel_id, channel in self._channels.items():
            schema = self._schemas.get(channel.schema_id)
            msgtype = schema.name if schema is not None else "(no schema)"
            count = counts.get(channel_id, 0) + (self.topics[channel.topic].count if channel.topic in self.topics else 0)
            self.topics[channel.topic] = Topic(channel.topic, msgtype, count)
        self.span_ns = (last - first) if first is not None else 0

    def messages(self, topic: str) -> Iterator[tuple[int, object]]:
        self.stopped, self.unreadable = None, 0
        wanted = {channel_id for channel_id, channel in self._channels.items() if channel.topic == topic}
        for file in self._files:
            records = _records(file)
            try:
                for record in records:
                    if not isinstance(record, Message) or record.channel_id not in wanted:
                        continue
                    channel = self._channels[record.channel_id]
                    schema = self._schemas.get(channel.schema_id)
                    try:
                        message = self._typestore.deserialize_cdr(record.data, schema.name if schema else "")
                    except Exception:  # one mangled message: skipped and counted
                        self.unreadable += 1
                        continue
                    yield record.log_time, message
            except Exception as error:
                self.stopped = f"{file.name} {_cut_reason(error)}"
            finally:
                records.close()

    def close(self) -> None:
        """Nothing stays open between walks."""


def _records(file: Path) -> Iterator[object]:
    """The records of one MCAP file in order, chunks opened; the file closes when the iterator does."""
    with open(file, "rb") as stream:
        yield from StreamReader(stream, validate_crcs=True).records


def _typestore(schemas) -> object:
    """A typestore holding the types the files define, on top of the default ones (for files without definitions)."""
    typestore = get_typestore(_DEFAULT_TYPES)
    types = {}
    for schema in schemas:
        text = schema.data.decode("utf-8", errors="replace")
        try:
            types.update(get_types_from_idl(text) if schema.encoding == "ros2idl" else get_types_from_msg(text, schema.name))
        except Exception:  # a definition rosbags cannot parse: the default type of that name, if any, stands
            continue
    try:
        typestore.register(types)
    except Exception:  # a definition that clashes with the default: keep the default
        pass
    return typestore


def _mcap_files(path: Path) -> list[Path]:
    """The MCAP files of a bag: the file itself, or those of a bag folder in their split order (bag_2 before bag_10)."""
    if path.is_file():
        return [path] if path.suffix == ".mcap" else []
    return sorted(path.glob("*.mcap"), key=lambda file: [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", file.name)])


def _cut_reason(error: BaseException) -> str:
    text = _reason(error)
    return "is cut short inside a record" if text in ("", "EndOfFile") else f"ends early: {text}"


def _reason(error: BaseException) -> str:
    """The error's message in one line, without the trailing full stop rosbags puts on it."""
    text = " ".join(str(error).split()).rstrip(".")
    return text or type(error).__name__
