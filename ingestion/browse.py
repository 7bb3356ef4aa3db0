"""Looking into Kafka topics without disturbing them: list, peek and the dead-letter queue.

What `orangescrum topics list|peek|dlq` shows, as plain functions returning dataclasses. Reading
never commits a consumer offset: the consumer is assigned its partitions (no group
membership, no rebalance), auto-commit and offset storage are off and its group id is thrown
away, so a peek is invisible to every consumer group (and to the stream, whose offsets live in
its checkpoint anyway).

Values are decoded like any Python consumer decodes them (`ingestion.serde.EventDeserializer`:
Confluent framing, the writer schema from the registry, resolved into the newest reader
schema). A value that does not decode is shown with the reason code the stream would record,
never raised. Dead letters (`spark/landing.py` `publish_dead_letters`) carry the original key
and value bytes and the reason in their headers: both are shown.
"""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from ingestion.serde import MAGIC_BYTE, DecodeError, EventDeserializer
from orangescrum.core.contract.registry import registry_for
from orangescrum.core.contract.schema import load_schema_text
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import Settings

# How long one look may take; a reachable broker answers in milliseconds.
DEFAULT_TIMEOUT_SECONDS = 30.0
# Bytes of an undecodable value shown as hex.
VALUE_PREVIEW_BYTES = 32
# The headers spark/landing.py puts on every dead letter.
DEAD_LETTER_REASON_HEADER = "reason"
NO_REASON = "(no reason header)"
# Not a dead-letter reason: the registry could not be asked for the writer schema.
SCHEMA_LOOKUP_FAILED = "schema_lookup_failed"
_FRAMING = struct.Struct(">bI")


# --- list --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PartitionOffsets:
    """One partition's readable range: offsets earliest .. latest - 1."""

    partition: int
    earliest: int
    latest: int

    @property
    def messages(self) -> int:
        """Messages in the partition (offsets; transaction markers count too)."""
        return self.latest - self.earliest


@dataclass(frozen=True)
class TopicSummary:
    name: str
    partitions: tuple[PartitionOffsets, ...]
    retention_ms: int | None  # None: unknown; -1: kept forever

    @property
    def messages(self) -> int:
        return sum(p.messages for p in self.partitions)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "partitions": [
                {
                    "partition": p.partition,
                    "earliest": p.earliest,
                    "latest": p.latest,
                    "messages": p.messages,
                }
                for p in self.partitions
            ],
            "messages": self.messages,
            "retention_ms": self.retention_ms,
        }


def list_topics(
    settings: Settings,
    *,
    include_internal: bool = False,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> list[TopicSummary]:
    """Every topic on the cluster, by name, with its partitions' offsets and its retention.

    Internal topics (`__consumer_offsets`, ...) only with include_internal.
    """
    admin = AdminClient(settings.kafka_client_config())
    names = _topic_names(admin, timeout_seconds, include_internal=include_internal)
    if not names:
        return []
    metadata = admin.list_topics(timeout=timeout_seconds).topics
    retention = _retention_ms(admin, names, timeout_seconds)
    consumer = _throwaway_consumer(settings)
    try:
        return [
            TopicSummary(
                name,
                tuple(
                    _offsets(consumer, name, partition, timeout_seconds)
                    for partition in sorted(metadata[name].partitions)
                ),
                retention.get(name),
            )
            for name in names
        ]
    finally:
        consumer.close()


def _topic_names(
    admin: AdminClient, timeout_seconds: float, *, include_internal: bool
) -> list[str]:
    topics = admin.list_topics(timeout=timeout_seconds).topics
    return sorted(name for name in topics if include_internal or not name.startswith("__"))


def _retention_ms(
    admin: AdminClient, names: Sequence[str], timeout_seconds: float
) -> dict[str, int | None]:
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    retention: dict[str, int | None] = {}
    for resource, future in admin.describe_configs(
        resources, request_timeout=timeout_seconds
    ).items():
        try:
            entry = future.result().get("retention.ms")
        except KafkaException:
            entry = None  # e.g. no DescribeConfigs permission: say unknown, list the rest
        retention[resource.name] = (
            int(entry.value) if entry is not None and entry.value is not None else None
        )
    return retention


def _offsets(
    consumer: Consumer, topic: str, partition: int, timeout_seconds: float
) -> PartitionOffsets:
    earliest, latest = consumer.get_watermark_offsets(
        TopicPartition(topic, partition), timeout=timeout_seconds
    )
    return PartitionOffsets(partition, earliest, latest)


# --- one message, for display ------------------------------------------------------------------
@dataclass(frozen=True)
class DecodeFailure:
    reason: str  # the stream's dead-letter reason code (not_confluent_avro, ...)
    detail: str


@dataclass(frozen=True)
class DeadLetterHeaders:
    """What spark/landing.py `publish_dead_letters` puts in a dead letter's headers."""

    reason: str
    detail: str
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None


@dataclass(frozen=True)
class DisplayedMessage:
    """A Kafka message as a person reads it: position, key, time, decoded record or why not."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: str | None  # UTF-8 text, or "0x..." hex for other bytes; None: no key
    headers: dict[str, str]
    value_size: int  # bytes; 0 for a message without a value
    schema_id: int | None  # from the Confluent framing, when there is one
    record: dict[str, Any] | None  # the decoded event (reader schema); None if it does not decode
    decode_error: DecodeFailure | None
    dead_letter: DeadLetterHeaders | None  # set when the headers carry a dead-letter reason
    value_preview: str | None = None  # hex of the first bytes of a value that does not decode

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
            "key": self.key,
            "headers": self.headers,
            "value_size": self.value_size,
            "schema_id": self.schema_id,
            "record": jsonable(self.record),
            "decode_error": (
                {"reason": self.decode_error.reason, "detail": self.decode_error.detail}
                if self.decode_error
                else None
            ),
            "dead_letter": asdict(self.dead_letter) if self.dead_letter else None,
            "value_preview": self.value_preview,
        }


def decode_for_display(
    deserializer: EventDeserializer,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp: datetime | None,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]] | None = None,
) -> DisplayedMessage:
    """Decode one message's value for display; a value that does not decode gives the reason."""
    header_text = {name: _text(raw) or "" for name, raw in headers or ()}
    record: dict[str, Any] | None = None
    failure: DecodeFailure | None = None
    preview: str | None = None
    try:
        _, record = deserializer.deserialize(value)
    except DecodeError as error:
        failure = DecodeFailure(error.reason, error.detail)
    except Exception as error:  # the registry did not answer: show it, keep going
        failure = DecodeFailure(SCHEMA_LOOKUP_FAILED, f"{type(error).__name__}: {error}")
    if failure is not None:
        preview = (value or b"")[:VALUE_PREVIEW_BYTES].hex() or None
    return DisplayedMessage(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=timestamp,
        key=_key_text(key),
        headers=header_text,
        value_size=len(value or b""),
        schema_id=framed_schema_id(value),
        record=record,
        decode_error=failure,
        dead_letter=dead_letter_headers(header_text),
        value_preview=preview,
    )


def framed_schema_id(value: bytes | None) -> int | None:
    """The schema id of a Confluent-framed value (magic byte 0 + 4-byte id), else None."""
    if not value or len(value) < _FRAMING.size or value[0] != MAGIC_BYTE:
        return None
    return _FRAMING.unpack_from(value)[1]


def dead_letter_headers(headers: Mapping[str, str]) -> DeadLetterHeaders | None:
    if DEAD_LETTER_REASON_HEADER not in headers:
        return None
    return DeadLetterHeaders(
        reason=headers[DEAD_LETTER_REASON_HEADER],
        detail=headers.get("error_detail", ""),
        source_topic=headers.get("source_topic") or None,
        source_partition=_int_or_none(headers.get("source_partition")),
        source_offset=_int_or_none(headers.get("source_offset")),
    )


def jsonable(value: Any) -> Any:
    """A decoded Avro value as JSON types: datetimes in ISO 8601, bytes in base64."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    return value


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _key_text(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + key.hex()
    return text if text.isprintable() else "0x" + key.hex()


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


# --- peek --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PartitionRead:
    """Where a peek read one partition: from `start` up to (not including) `next_offset`."""

    partition: int
    earliest: int
    latest: int
    start: int
    next_offset: int

    @property
    def at_end(self) -> bool:
        return self.next_offset >= self.latest


@dataclass(frozen=True)
class PeekResult:
    topic: str
    count: int  # messages asked for
    from_offset: int | None  # None: each partition's earliest
    messages: tuple[DisplayedMessage, ...]
    partitions: tuple[PartitionRead, ...]
    notes: tuple[str, ...] = ()  # the end reached, offsets beyond the end or expired

    @property
    def end_reached(self) -> bool:
        """Fewer messages than asked: every partition read was read to its end."""
        return len(self.messages) < self.count

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "count": self.count,
            "from_offset": self.from_offset,
            "end_reached": self.end_reached,
            "partitions": [
                {
                    "partition": p.partition,
                    "earliest": p.earliest,
                    "latest": p.latest,
                    "start": p.start,
                    "next_offset": p.next_offset,
                }
                for p in self.partitions
            ],
            "messages": [m.to_json() for m in self.messages],
            "notes": list(self.notes),
        }


def peek(
    settings: Settings,
    topic: str,
    *,
    count: int = 10,
    from_offset: int | None = None,
    partition: int | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> PeekResult:
    """Up to `count` messages of `topic` from `from_offset` (default: earliest) on, decoded.

    Every partition (or only `partition`) is read from that offset; the messages come oldest
    first by Kafka timestamp (ties by partition, then offset), so `count` spans partitions.
    Nothing is committed. Raises OrangeScrumError for an unknown topic or partition, or a
    negative offset.
    """
    if count < 1:
        raise OrangeScrumError(f"--count must be at least 1, got {count}.")
    if from_offset is not None and from_offset < 0:
        raise OrangeScrumError(f"--from-offset must be 0 or more, got {from_offset}.")
    partitions = _partitions_of(settings, topic, partition, timeout_seconds)
    deserializer = EventDeserializer(
        registry_for(
            settings.schema_registry_url, settings.schema_registry_basic_auth.get_secret_value()
        ),
        load_schema_text(),
    )
    consumer = _throwaway_consumer(settings)
    try:
        ranges = [_offsets(consumer, topic, p, timeout_seconds) for p in partitions]
        starts = {
            r.partition: r.earliest if from_offset is None else max(r.earliest, from_offset)
            for r in ranges
        }
        stops = {r.partition: min(r.latest, starts[r.partition] + count) for r in ranges}
        raw, timed_out = _read(consumer, topic, starts, stops, timeout_seconds)
    finally:
        consumer.close()
    raw.sort(key=lambda m: (_timestamp_ms(m) or 0, m.partition(), m.offset()))
    shown = raw[:count]
    messages = tuple(
        decode_for_display(
            deserializer,
            topic=topic,
            partition=m.partition(),
            offset=m.offset(),
            timestamp=_timestamp(m),
            key=m.key(),
            value=m.value(),
            headers=m.headers(),
        )
        for m in shown
    )
    reads = tuple(
        PartitionRead(
            r.partition,
            r.earliest,
            r.latest,
            starts[r.partition],
            max(
                [m.offset + 1 for m in messages if m.partition == r.partition],
                default=starts[r.partition],
            ),
        )
        for r in ranges
    )
    notes = _peek_notes(topic, count, from_offset, reads, len(messages), timed_out)
    return PeekResult(topic, count, from_offset, messages, reads, tuple(notes))


def _peek_notes(
    topic: str,
    count: int,
    from_offset: int | None,
    reads: Sequence[PartitionRead],
    shown: int,
    timed_out: bool,
) -> list[str]:
    notes = []
    where = f"partition {reads[0].partition} of {topic}" if len(reads) == 1 else topic
    latest = ", ".join(f"{r.partition}: {r.latest}" for r in reads)
    if from_offset is not None:
        expired = [r for r in reads if from_offset < r.earliest]
        for r in expired:
            notes.append(
                f"partition {r.partition} starts at offset {r.earliest} (older messages "
                f"expired or were deleted); read from there."
            )
        if all(from_offset >= r.latest for r in reads):
            notes.append(
                f"offset {from_offset} is beyond the end of {where} (latest offset by "
                f"partition: {latest}): no messages there yet."
            )
            return notes
    if timed_out:
        notes.append(f"stopped waiting for messages after the timeout: showing {shown}.")
    elif all(r.earliest == r.latest for r in reads):
        notes.append(f"{where} is empty (latest offset by partition: {latest}).")
    elif shown < count:
        notes.append(
            f"end of {where} reached: {shown} message{'s' if shown != 1 else ''}, "
            f"fewer than the {count} asked for."
        )
    return notes


def _partitions_of(
    settings: Settings, topic: str, partition: int | None, timeout_seconds: float
) -> list[int]:
    admin = AdminClient(settings.kafka_client_config())
    topics = admin.list_topics(timeout=timeout_seconds).topics
    metadata = topics.get(topic)
    if metadata is None or metadata.error is not None:
        existing = ", ".join(sorted(n for n in topics if not n.startswith("__"))) or "none"
        raise OrangeScrumError(
            f"Topic {topic} does not exist on {settings.kafka_bootstrap_servers} (topics there: "
            f"{existing}); check the name with `orangescrum topics list`."
        )
    partitions = sorted(metadata.partitions)
    if partition is None:
        return partitions
    if partition not in partitions:
        raise OrangeScrumError(
            f"Topic {topic} has no partition {partition}: pass --partition between "
            f"{partitions[0]} and {partitions[-1]}."
        )
    return [partition]


def _throwaway_consumer(settings: Settings) -> Consumer:
    """A consumer that never commits: assign() only, a group id nobody else uses."""
    return Consumer(
        settings.kafka_client_config()
        | {
            "group.id": f"orangescrum-browse-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "log_level": 0,
        }
    )


def _read(
    consumer: Consumer,
    topic: str,
    starts: Mapping[int, int],
    stops: Mapping[int, int],
    timeout_seconds: float,
) -> tuple[list[Message], bool]:
    """Messages at offsets start .. stop - 1 of each partition; (messages, timed out)."""
    pending = {p for p in starts if starts[p] < stops[p]}
    if not pending:
        return [], False
    consumer.assign([TopicPartition(topic, p, starts[p]) for p in sorted(pending)])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_seconds
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return messages, True
        message = consumer.poll(min(remaining, 1.0))
        if message is None:
            continue
        partition = message.partition()
        if message.error() is not None:
            if message.error().code() == KafkaError._PARTITION_EOF:
                # Offsets missing at the end (transaction markers, compaction): done.
                pending.discard(partition)
                continue
            raise KafkaException(message.error())
        if partition not in pending:
            continue
        if message.offset() < stops[partition]:
            messages.append(message)
        if message.offset() >= stops[partition] - 1:
            pending.discard(partition)
    return messages, False


def _timestamp_ms(message: Message) -> int | None:
    kind, value = message.timestamp()
    return None if kind == TIMESTAMP_NOT_AVAILABLE else value


def _timestamp(message: Message) -> datetime | None:
    value = _timestamp_ms(message)
    return None if value is None else datetime.fromtimestamp(value / 1000, tz=UTC)


# --- dead letters ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeadLetterReport:
    peek: PeekResult  # the first `count` dead letters, decoded where they decode
    reasons: dict[str, int] = field(default_factory=dict)  # every dead letter on the topic
    total: int = 0
    complete: bool = True  # False: the count stopped at the timeout

    def to_json(self) -> dict[str, Any]:
        return self.peek.to_json() | {
            "reasons": self.reasons,
            "total": self.total,
            "reasons_complete": self.complete,
        }


def dead_letters(
    settings: Settings, *, count: int = 10, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
) -> DeadLetterReport:
    """The first `count` messages of the dead-letter topic and a count per reason of all."""
    topic = settings.topic_dead_letter
    shown = peek(settings, topic, count=count, timeout_seconds=timeout_seconds)
    reasons: Counter[str] = Counter()
    consumer = _throwaway_consumer(settings)
    try:
        starts = {p.partition: p.earliest for p in shown.partitions}
        stops = {p.partition: p.latest for p in shown.partitions}
        every, timed_out = _read(consumer, topic, starts, stops, timeout_seconds)
    finally:
        consumer.close()
    for message in every:
        headers = {name: _text(raw) or "" for name, raw in message.headers() or ()}
        reasons[headers.get(DEAD_LETTER_REASON_HEADER, NO_REASON)] += 1
    ordered = dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0])))
    return DeadLetterReport(shown, ordered, sum(reasons.values()), complete=not timed_out)
