"""Looking into real topics: list, peek and the dead-letter queue on the session's Kafka broker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Any

import pyarrow as pa
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from ingestion.browse import (
    dead_letters,
    decode_for_display,
    framed_schema_id,
    jsonable,
    list_topics,
    peek,
)
from ingestion.faults import UNREGISTERED_SCHEMA_ID
from ingestion.feed import event_serializer
from ingestion.producer import producer_config
from ingestion.serde import EventDeserializer, EventSerializer
from ingestion.simulator import SimulationConfig, simulate_history
from orangescrum.core.contract.registry import FileSchemaRegistry
from orangescrum.core.contract.schema import DEAD_LETTER_SCHEMA, load_schema_text
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import Settings
from orangescrum.core.topics import DAY_MS, create_topics

UNDECODABLE = b"\xffnot avro at all"


@dataclass(frozen=True)
class KnownTopic:
    """What produce_known_messages wrote: records by (partition, offset), their timestamps."""

    settings: Settings
    records: dict[tuple[int, int], dict[str, Any]]
    timestamps: dict[tuple[int, int], datetime]

    @property
    def topic(self) -> str:
        return self.settings.topic_events


def known_records(n: int) -> list[dict[str, Any]]:
    config = SimulationConfig(seed=11, companies=1, days=1, start_date=date(2024, 3, 4))
    return [delivery.record for delivery in islice(simulate_history(config), n)]


def produce_known_messages(settings: Settings) -> KnownTopic:
    """Two partitions, three messages each, Kafka timestamps one second apart, alternating:

    partition 0: offsets 0, 1, 2 = events A0, A1, A2 (t0, t0+2s, t0+4s)
    partition 1: offset 0 = event B0 (t0+1s), 1 = bytes without Confluent framing (t0+3s),
                 2 = an event under an unregistered schema id (t0+5s)
    """
    settings = settings.model_copy(update={"topic_partitions": 2})
    create_topics(settings)
    serializer = event_serializer(settings)
    a0, a1, a2, b0 = known_records(4)
    # Kafka keeps messages for the retention time after their timestamp: stay recent.
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    plan = [
        (0, 0, a0, serializer.serialize(a0)),
        (1, 1, b0, serializer.serialize(b0)),
        (0, 2, a1, serializer.serialize(a1)),
        (1, 3, None, UNDECODABLE),
        (0, 4, a2, serializer.serialize(a2)),
        (
            1,
            5,
            None,
            EventSerializer(UNREGISTERED_SCHEMA_ID, serializer.schema_text).serialize(b0),
        ),
    ]
    producer = Producer(producer_config(settings))
    records, timestamps = {}, {}
    next_offset = {0: 0, 1: 0}
    for partition, second, record, value in plan:
        moment = t0 + timedelta(seconds=second)
        producer.produce(
            settings.topic_events,
            key=b"1",
            value=value,
            partition=partition,
            timestamp=int(moment.timestamp() * 1000),
        )
        position = (partition, next_offset[partition])
        next_offset[partition] += 1
        timestamps[position] = moment
        if record is not None:
            records[position] = record
        producer.flush(30)  # one at a time: offsets follow the plan's order
    return KnownTopic(settings, records, timestamps)


def publish_known_dead_letters(settings: Settings) -> list[dict[str, Any]]:
    """Dead letters as the stream publishes them (spark/landing.py), on a one-partition DLQ."""
    from spark.landing import LandingConfig, publish_dead_letters

    settings = settings.model_copy(update={"topic_partitions": 1})
    create_topics(settings)
    record = known_records(1)[0]
    valid = event_serializer(settings).serialize(record)
    now = datetime.now(UTC)

    def row(reason: str, detail: str, key: bytes | None, value: bytes, offset: int) -> dict:
        return {
            "reason": reason,
            "error_detail": detail,
            "raw_key": key,
            "raw_value": value,
            "event_id": None,
            "schema_id": None,
            "kafka_topic": settings.topic_events,
            "kafka_partition": 1,
            "kafka_offset": offset,
            "kafka_timestamp": now,
            "ingested_at": now,
        }

    rows = [
        row("not_confluent_avro", "first byte ff is not the magic byte", b"1", UNDECODABLE, 7),
        row("missing_key", "message has no key (expected the company_id)", None, valid, 8),
        row("not_confluent_avro", "first byte ff is not the magic byte", b"1", b"\xff", 9),
    ]
    config = LandingConfig(
        lake=settings.lake,
        landing_id="test",
        dead_letter_topic=settings.topic_dead_letter,
        kafka_producer_config=tuple(sorted(settings.kafka_client_config().items())),
        dead_letter_timeout_seconds=30,
    )
    publish_dead_letters(pa.Table.from_pylist(rows, schema=DEAD_LETTER_SCHEMA), config)
    return [record]


@pytest.fixture
def known(kafka_settings: Settings) -> KnownTopic:
    return produce_known_messages(kafka_settings)


def deserializer() -> EventDeserializer:
    return EventDeserializer(FileSchemaRegistry(), load_schema_text())


# --- pure: one message for display -------------------------------------------------------------
def test_a_valid_event_is_decoded_with_its_schema_id() -> None:
    record = known_records(1)[0]
    value = event_serializer(Settings(_env_file=None)).serialize(record)
    shown = decode_for_display(
        deserializer(),
        topic="t",
        partition=2,
        offset=5,
        timestamp=None,
        key=b"1",
        value=value,
        headers=[("trace", b"abc")],
    )
    assert (shown.record, shown.schema_id, shown.key) == (record, 2, "1")
    assert shown.decode_error is None and shown.dead_letter is None
    assert shown.headers == {"trace": "abc"}
    assert shown.value_size == len(value)
    assert jsonable(shown.record)["event_timestamp"] == record["event_timestamp"].isoformat()


@pytest.mark.parametrize(
    ("value", "reason", "schema_id"),
    [
        (None, "empty_value", None),
        (b"", "empty_value", None),
        (UNDECODABLE, "not_confluent_avro", None),
        (b"\x00\x00\x00\x00\x02\xff\xff", "avro_decode_error", 2),
        (b"\x00\x00\x0f\x42\x3f\x00", "unknown_schema_id", UNREGISTERED_SCHEMA_ID),
    ],
)
def test_a_value_that_does_not_decode_is_shown_with_the_reason(
    value: bytes | None, reason: str, schema_id: int | None
) -> None:
    shown = decode_for_display(
        deserializer(),
        topic="t",
        partition=0,
        offset=0,
        timestamp=None,
        key=b"\x00\xfe",
        value=value,
    )
    assert shown.record is None
    assert shown.decode_error is not None and shown.decode_error.reason == reason
    assert shown.schema_id == schema_id == framed_schema_id(value)
    assert shown.key == "0x00fe"  # bytes that are not text are shown in hex
    assert shown.value_preview == ((value or b"")[:32].hex() or None)


@pytest.mark.slow  # the registry client retries for ~7 s
def test_an_unreachable_registry_is_shown_not_raised() -> None:
    from orangescrum.core.contract.registry import ConfluentSchemaRegistry

    unreachable = EventDeserializer(
        ConfluentSchemaRegistry("http://127.0.0.1:1"), load_schema_text()
    )
    shown = decode_for_display(
        unreachable,
        topic="t",
        partition=0,
        offset=0,
        timestamp=None,
        key=b"1",
        value=b"\x00\x00\x00\x00\x02\x00",
    )
    assert shown.record is None and shown.schema_id == 2
    assert shown.decode_error.reason == "schema_lookup_failed"
    assert "ConnectError" in shown.decode_error.detail


# --- on the broker -----------------------------------------------------------------------------
def test_list_shows_partitions_offsets_and_retention(known: KnownTopic) -> None:
    topics = {t.name: t for t in list_topics(known.settings)}
    events = topics[known.topic]
    assert [(p.partition, p.earliest, p.latest, p.messages) for p in events.partitions] == [
        (0, 0, 3, 3),
        (1, 0, 3, 3),
    ]
    assert events.messages == 6
    assert events.retention_ms == 7 * DAY_MS
    assert topics[known.settings.topic_dead_letter].messages == 0
    assert not [name for name in topics if name.startswith("__")]


def test_peek_decodes_every_message_oldest_first(known: KnownTopic) -> None:
    result = peek(known.settings, known.topic)
    positions = [(m.partition, m.offset) for m in result.messages]
    assert positions == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]
    for message in result.messages:
        position = (message.partition, message.offset)
        assert message.timestamp == known.timestamps[position]
        assert message.key == "1"
        assert message.record == known.records.get(position)
    undecodable, unknown_id = result.messages[3], result.messages[5]
    assert undecodable.decode_error.reason == "not_confluent_avro"
    assert undecodable.value_preview == UNDECODABLE.hex()
    assert unknown_id.decode_error.reason == "unknown_schema_id"
    assert unknown_id.schema_id == UNREGISTERED_SCHEMA_ID
    assert result.end_reached
    assert result.notes == (
        f"end of {known.topic} reached: 6 messages, fewer than the 10 asked for.",
    )
    assert [(p.start, p.next_offset, p.at_end) for p in result.partitions] == [
        (0, 3, True),
        (0, 3, True),
    ]


def test_peek_from_an_offset_on_one_partition(known: KnownTopic) -> None:
    result = peek(known.settings, known.topic, partition=0, from_offset=1, count=1)
    assert [(m.partition, m.offset) for m in result.messages] == [(0, 1)]
    assert result.messages[0].record == known.records[(0, 1)]
    assert result.messages[0].record["event_id"] == known.records[(0, 1)]["event_id"]
    assert not result.end_reached and result.notes == ()
    assert [(p.partition, p.start, p.next_offset) for p in result.partitions] == [(0, 1, 2)]


def test_peek_count_spans_partitions_by_time(known: KnownTopic) -> None:
    result = peek(known.settings, known.topic, count=3, from_offset=1)
    assert [(m.partition, m.offset) for m in result.messages] == [(0, 1), (1, 1), (0, 2)]
    assert result.notes == ()


def test_peek_beyond_the_end_says_so(known: KnownTopic) -> None:
    result = peek(known.settings, known.topic, from_offset=10)
    assert result.messages == ()
    assert result.notes == (
        f"offset 10 is beyond the end of {known.topic} (latest offset by partition: 0: 3, "
        "1: 3): no messages there yet.",
    )
    partial = peek(known.settings, known.topic, partition=1, from_offset=2, count=5)
    assert [(m.partition, m.offset) for m in partial.messages] == [(1, 2)]
    assert partial.notes == (
        f"end of partition 1 of {known.topic} reached: 1 message, fewer than the 5 asked for.",
    )


def test_peek_an_empty_topic(known: KnownTopic) -> None:
    result = peek(known.settings, known.settings.topic_dead_letter)
    assert result.messages == ()
    assert result.notes == (
        f"{known.settings.topic_dead_letter} is empty (latest offset by partition: 0: 0, 1: 0).",
    )


def test_unknown_topic_and_partition_are_one_sentence(known: KnownTopic) -> None:
    with pytest.raises(OrangeScrumError) as error:
        peek(known.settings, "no-such-topic")
    message = str(error.value)
    assert message.startswith(
        f"Topic no-such-topic does not exist on {known.settings.kafka_bootstrap_servers} "
        "(topics there: "
    )
    assert known.topic in message and known.settings.topic_dead_letter in message
    assert "__consumer_offsets" not in message
    with pytest.raises(
        OrangeScrumError, match="has no partition 5: pass --partition between 0 and 1"
    ):
        peek(known.settings, known.topic, partition=5)


def test_peek_commits_no_consumer_offsets(known: KnownTopic) -> None:
    peek(known.settings, known.topic)
    dead_letters(known.settings)
    admin = AdminClient(known.settings.kafka_client_config())
    groups = admin.list_consumer_groups(request_timeout=15).result().valid
    assert not [g.group_id for g in groups if g.group_id.startswith("orangescrum-browse-")]


def test_dead_letters_show_reasons_and_count_them(kafka_settings: Settings) -> None:
    (record,) = publish_known_dead_letters(kafka_settings)
    report = dead_letters(kafka_settings, count=2)
    assert report.reasons == {"not_confluent_avro": 2, "missing_key": 1}
    assert report.total == 3 and report.complete
    first, second = report.peek.messages
    assert (first.offset, second.offset) == (0, 1)
    assert first.dead_letter.reason == "not_confluent_avro"
    assert first.dead_letter.detail == "first byte ff is not the magic byte"
    assert (
        first.dead_letter.source_topic,
        first.dead_letter.source_partition,
        first.dead_letter.source_offset,
    ) == (kafka_settings.topic_events, 1, 7)
    assert first.decode_error.reason == "not_confluent_avro"
    assert first.key == "1"
    # A dead letter whose bytes decode (it broke a contract rule, not the framing) shows them.
    assert second.dead_letter.reason == "missing_key"
    assert second.key is None
    assert second.record == record and second.decode_error is None
    assert report.peek.notes == ()
