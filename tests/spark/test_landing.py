"""Decoding (in the JVM) and landing as pure functions: valid events vs dead letters."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow.fs import LocalFileSystem

from ingestion.faults import BAD_KINDS, EXPECTED_REASON, make_bad_messages
from ingestion.serde import EventSerializer
from orangescrum.core.contract.registry import FileSchemaRegistry
from orangescrum.core.contract.schema import (
    DEAD_LETTER_SCHEMA,
    SUBJECT,
    event_arrow_schema,
    load_schema_text,
)
from orangescrum.core.lake import LakeLayout
from spark.decode import DecodeRules, decode_kafka_records
from spark.landing import LandingConfig, land_partition, publish, split_by_date, split_outcomes
from tests.ingestion.test_serde import FULL_EVENT

pytestmark = pytest.mark.slow  # a local SparkSession

SENT_AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
RULES = DecodeRules(FileSchemaRegistry().subject_schemas(SUBJECT), load_schema_text())
RAW_DDL = (
    "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp"
)


@pytest.fixture
def serializer() -> EventSerializer:
    return EventSerializer.registered(FileSchemaRegistry(), SUBJECT, load_schema_text())


def kafka_rows(messages: list[tuple[bytes | None, bytes | None]], partition: int = 0) -> list:
    return [
        (key, value, "events-raw", partition, offset, SENT_AT)
        for offset, (key, value) in enumerate(messages)
    ]


def decode(spark, messages: list[tuple[bytes | None, bytes | None]]) -> pa.Table:
    """Kafka records as Spark's kafka source yields them, decoded, as Arrow."""
    records = spark.createDataFrame(kafka_rows(messages), RAW_DDL)
    return decode_kafka_records(records, RULES).toArrow()


def event_bytes(serializer: EventSerializer, n: int, **changes) -> bytes:
    return serializer.serialize(
        FULL_EVENT | {"event_id": f"{n:08d}-0000-4000-8000-000000000000"} | changes
    )


def test_every_bad_kind_is_dead_lettered_with_its_reason(spark, serializer) -> None:
    bad = make_bad_messages(dict.fromkeys(BAD_KINDS, 3), FULL_EVENT, serializer, seed=1)
    good = [(b"7", event_bytes(serializer, n)) for n in range(5)]
    extra = [
        (b"7", None),  # a tombstone
        (b"7", event_bytes(serializer, 89)[:40]),  # cut short: the Avro body ends early
        (b"7", event_bytes(serializer, 90, event_type="task_teleported")),
        (b"8", event_bytes(serializer, 91)),
        (b"7", event_bytes(serializer, 92, user_id=0)),
    ]
    landed = split_outcomes(decode(spark, good + [(m.key, m.value) for m in bad] + extra))

    assert landed.events.num_rows == 5
    expected = Counter()
    for kind in BAD_KINDS:
        expected[EXPECTED_REASON[kind]] += 3
    expected.update(
        [
            "empty_value",
            "avro_decode_error",
            "unknown_event_type",
            "key_mismatch",
            "missing_required_field",
        ]
    )
    assert Counter(landed.dead_letters["reason"].to_pylist()) == expected
    # The raw payload is kept so a dead letter can be replayed once the cause is fixed.
    assert set(landed.dead_letters["raw_value"].to_pylist()) == {m.value for m in bad} | {
        value for _, value in extra
    }
    assert landed.dead_letters.schema == DEAD_LETTER_SCHEMA
    assert landed.events.schema == event_arrow_schema()


def test_a_dead_letter_says_what_is_wrong(spark, serializer) -> None:
    landed = split_outcomes(
        decode(spark, [(b"8", event_bytes(serializer, 1)), (b"\x01junk", b"\x07junk")])
    )
    details = dict(
        zip(
            landed.dead_letters["reason"].to_pylist(),
            landed.dead_letters["error_detail"].to_pylist(),
            strict=True,
        )
    )
    assert details == {
        "key_mismatch": "key '8' is not the event's company_id 7",
        "not_confluent_avro": (
            "first byte 07 is not the Confluent magic byte 00 (or the message is too short)"
        ),
    }


def test_valid_event_carries_kafka_coordinates(spark, serializer) -> None:
    landed = split_outcomes(decode(spark, [(b"7", serializer.serialize(FULL_EVENT))]))
    row = landed.events.to_pylist()[0]
    assert {k: row[k] for k in FULL_EVENT} == FULL_EVENT
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == ("events-raw", 0, 0)
    assert row["kafka_timestamp"] == SENT_AT
    assert row["schema_id"] == 2  # producers write with the newest version


def test_v1_and_v2_messages_decode_into_the_newest_schema(spark) -> None:
    registry = FileSchemaRegistry()
    v1 = EventSerializer.registered(registry, SUBJECT, load_schema_text(1))
    v2 = EventSerializer.registered(registry, SUBJECT, load_schema_text(2))
    old = {k: v for k, v in FULL_EVENT.items() if k != "client"}
    landed = split_outcomes(
        decode(spark, [(b"7", v1.serialize(old)), (b"7", v2.serialize(old | {"client": "web"}))])
    )
    rows = landed.events.to_pylist()
    assert [(r["schema_id"], r["client"]) for r in rows] == [(1, None), (2, "web")]
    assert {k: rows[0][k] for k in old} == old


def test_bytes_after_the_avro_record_are_a_decode_error(spark, serializer) -> None:
    registry = FileSchemaRegistry()
    v1 = EventSerializer.registered(registry, SUBJECT, load_schema_text(1))
    old = {k: v for k, v in FULL_EVENT.items() if k != "client"}
    messages = [
        (b"7", event_bytes(serializer, 1)),
        (b"7", event_bytes(serializer, 2) + b"\x00\x01\x02"),
        (b"7", v1.serialize(old)),
        (b"7", v1.serialize(old) + b"\x02"),
    ]

    decoded = decode(spark, messages)

    assert decoded["reason"].to_pylist() == [None, "avro_decode_error", None, "avro_decode_error"]
    assert decoded["error_detail"].to_pylist()[1::2] == [
        "3 byte(s) after the end of the Avro record (writer schema id 2)",
        "1 byte(s) after the end of the Avro record (writer schema id 1)",
    ]


def test_event_age_is_judged_against_the_kafka_timestamp(spark, serializer) -> None:
    messages = [
        (b"7", event_bytes(serializer, 1, event_timestamp=SENT_AT - timedelta(days=364))),
        (b"7", event_bytes(serializer, 2, event_timestamp=SENT_AT - timedelta(days=366))),
        (b"7", event_bytes(serializer, 3, event_timestamp=SENT_AT + timedelta(minutes=59))),
        (b"7", event_bytes(serializer, 4, event_timestamp=SENT_AT + timedelta(minutes=61))),
    ]
    decoded = decode(spark, messages)
    assert decoded["reason"].to_pylist() == [
        None,
        "timestamp_out_of_range",
        None,
        "timestamp_out_of_range",
    ]


def test_split_by_date_uses_utc_calendar_day() -> None:
    table = pa.table(
        {
            "event_timestamp": pa.array(
                [
                    datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC),
                    datetime(2026, 11, 21, 0, 0, tzinfo=UTC),
                    datetime(2026, 11, 21, 13, 0, tzinfo=UTC),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "n": [1, 2, 3],
        }
    )
    groups = split_by_date(table["event_timestamp"])
    assert {day: table.filter(mask)["n"].to_pylist() for day, mask in groups.items()} == {
        date(2026, 11, 20): [1],
        date(2026, 11, 21): [2, 3],
    }


def test_land_partition_writes_deterministic_files_and_replay_overwrites(
    tmp_path, spark, serializer
) -> None:
    config = LandingConfig(lake=LakeLayout(str(tmp_path / "lake")), landing_id="abcd1234")
    rng = random.Random(3)
    times = [SENT_AT - timedelta(days=rng.randrange(3)) for _ in range(30)]
    messages = [(b"7", event_bytes(serializer, n, event_timestamp=t)) for n, t in enumerate(times)]
    decoded = decode(spark, [*messages, (b"7", b"junk")])

    def land() -> list[dict]:
        batches = list(land_partition(iter(decoded.to_batches()), config, batch_id=4))
        return pa.Table.from_batches(batches).to_pylist()

    def visible() -> list[Path]:
        lake = tmp_path / "lake"
        return sorted(p.relative_to(lake) for p in lake.rglob("*.parquet"))

    first = land()
    assert visible() == []  # nothing is visible until the driver publishes the batch
    replay = land()  # a crashed batch re-run by Spark: same batch id, same offset ranges
    assert first == replay
    publish(LocalFileSystem(), first[0]["files"])
    assert {r["outcome"]: r["rows"] for r in first} == {"landed": 30, "not_confluent_avro": 1}
    files = visible()
    assert all(f.name == "part-abcd1234-b0000000004-p00000.parquet" for f in files)
    assert len(files) == len({t.date() for t in times}) + 1  # one per event day + dead letters
    landed = pa.concat_tables(
        pq.read_table(tmp_path / "lake" / f) for f in files if f.parts[1] == "events"
    )
    assert sorted(landed["event_id"].to_pylist()) == [
        f"{n:08d}-0000-4000-8000-000000000000" for n in range(30)
    ]
    assert not [p for p in (tmp_path / "lake").rglob("*") if p.name.startswith(".")]
