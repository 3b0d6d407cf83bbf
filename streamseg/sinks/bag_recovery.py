"""A whole ROS 2 bag from the temporary file of a run that was killed while writing one.

A bag sink writes ``.NAME.partial-XXXXXXXX`` and renames it onto NAME when the run ends
(:class:`streamseg.sinks.ros_bag.RosBagWriter`). Killed first, the temporary file holds every
chunk completed before the kill but no summary or index, which most readers need. Reading its
records in order up to the first incomplete one gives back all those chunks' messages, and
writing them anew gives a bag with a summary: what ``mcap recover`` of the MCAP Go CLI does,
here without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from mcap.records import Channel, Header, McapRecord, Message, Schema
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer

from streamseg.errors import InputError, OutputError
from streamseg.sinks.partial_file import create_partial, discard, put_in_place, real_target


def recover_bag(damaged: str | os.PathLike[str], target: str | os.PathLike[str]) -> int:
    """Writes to ``target`` every message of ``damaged`` up to its first incomplete record; returns how many.

    ``damaged`` is left as it is. Chunks are checked against their CRC, so a chunk the kill cut
    short or a disk garbled ends the recovery there; ``target`` appears (by rename) only when
    complete. InputError when ``damaged`` holds no message at all.
    """
    damaged, target = Path(damaged), real_target(target)
    try:
        source = open(damaged, "rb")
    except OSError as error:
        raise InputError(f"cannot read {damaged}: {error.strerror or error}") from None
    partial, descriptor = create_partial(target)
    try:
        with source, os.fdopen(descriptor, "wb") as file:
            writer = Writer(file, compression=CompressionType.ZSTD)
            count = _copy_whole_records(StreamReader(source, validate_crcs=True), writer)
            if count == 0:
                raise InputError(f"{damaged} holds no complete chunk of messages: nothing to recover")
            writer.finish()
        put_in_place(partial, target)
    except OSError as error:
        discard(partial)
        raise OutputError(f"cannot write {target}: {error.strerror or error}") from None
    except BaseException:
        discard(partial)
        raise
    return count


def _copy_whole_records(reader: StreamReader, writer: Writer) -> int:
    schemas: dict[int, int] = {}  # id in the damaged file -> id in the new one
    channels: dict[int, int] = {}
    started = False
    count = 0
    for record in _whole_records(reader):
        if isinstance(record, Header):
            writer.start(profile=record.profile, library=record.library)
            started = True
        elif isinstance(record, Schema) and record.id not in schemas:
            schemas[record.id] = writer.register_schema(record.name, record.encoding, record.data)
        elif isinstance(record, Channel) and record.id not in channels:
            channels[record.id] = writer.register_channel(
                record.topic, record.message_encoding, schemas.get(record.schema_id, 0), record.metadata
            )
        elif isinstance(record, Message) and record.channel_id in channels:
            writer.add_message(
                channels[record.channel_id], log_time=record.log_time, data=record.data,
                publish_time=record.publish_time, sequence=record.sequence,
            )
            count += 1
    if not started:
        writer.start()
    return count


def _whole_records(reader: StreamReader) -> Iterator[McapRecord]:
    """The records of ``reader`` up to the first that is cut short or damaged."""
    records = iter(reader.records)
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except Exception:  # a truncated record, a chunk failing its CRC or its decompression: the damage starts here
            return
        yield record
