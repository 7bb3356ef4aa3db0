"""Decoding and landing as pure functions: valid events vs dead letters with reasons."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion.faults import BAD_KINDS, EXPECTED_REASON, make_bad_messages
from ingestion.registry import FileSchemaRegistry
from ingestion.schema import SUBJECT, load_schema_text
from ingestion.serde import EventDeserializer, EventSerializer
from ingestion.validation import EventTimeWindow
from spark.landing import LandingConfig, decode_records, land_partition, split_by_date
from tests.ingestion.test_serde import FULL_EVENT

SENT_AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
WINDOW = EventTimeWindow(max_age=timedelta(days=365), max_future=timedelta(hours=1))
RAW_SCHEMA = pa.schema(
    [
        ("key", pa.binary()),
        ("value", pa.binary()),
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
    ]
)


@pytest.fixture
def serializer() -> EventSerializer:
    return EventSerializer.registered(FileSchemaRegistry(), SUBJECT, load_schema_text())


def raw_table(messages: list[tuple[bytes | None, bytes]]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "key": key,
                "value": value,
                "topic": "events-raw",
                "partition": 0,
                "offset": offset,
                "timestamp": SENT_AT,
            }
            for offset, (key, value) in enumerate(messages)
        ],
        schema=RAW_SCHEMA,
    )


def decode(raw: pa.Table):
    deserializer = EventDeserializer(FileSchemaRegistry(), load_schema_text())
    return decode_records(raw, deserializer, WINDOW, SENT_AT + timedelta(seconds=5))


def test_every_bad_kind_is_dead_lettered_with_its_reason(serializer) -> None:
    bad = make_bad_messages(dict.fromkeys(BAD_KINDS, 3), FULL_EVENT, serializer, seed=1)
    good = [
        (
            b"7",
            serializer.serialize(FULL_EVENT | {"event_id": f"{n:08d}-0000-4000-8000-000000000000"}),
        )
        for n in range(5)
    ]
    decoded = decode(raw_table(good + [(m.key, m.value) for m in bad]))

    assert decoded.events.num_rows == 5
    expected = Counter()
    for kind in BAD_KINDS:
        expected[EXPECTED_REASON[kind]] += 3
    assert Counter(decoded.dead_letters["reason"].to_pylist()) == expected
    # The raw payload is kept so a dead letter can be replayed once the cause is fixed.
    assert set(decoded.dead_letters["raw_value"].to_pylist()) == {m.value for m in bad}


def test_valid_event_carries_kafka_coordinates(serializer) -> None:
    decoded = decode(raw_table([(b"7", serializer.serialize(FULL_EVENT))]))
    row = decoded.events.to_pylist()[0]
    assert row["event_id"] == FULL_EVENT["event_id"]
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == ("events-raw", 0, 0)
    assert row["kafka_timestamp"] == SENT_AT
    assert row["schema_id"] == 2  # producers write with the newest version
    assert row["task_state"]["legend"] == 4


def test_key_must_match_company(serializer) -> None:
    decoded = decode(raw_table([(b"8", serializer.serialize(FULL_EVENT))]))
    assert decoded.dead_letters["reason"].to_pylist() == ["key_mismatch"]


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
    groups = split_by_date(table, "event_timestamp")
    assert {day: g["n"].to_pylist() for day, g in groups.items()} == {
        date(2026, 11, 20): [1],
        date(2026, 11, 21): [2, 3],
    }


def test_land_partition_writes_deterministic_files_and_replay_overwrites(
    tmp_path, serializer
) -> None:
    config = LandingConfig(
        lake_root=str(tmp_path / "lake"),
        landing_id="abcd1234",
        reader_schema_text=load_schema_text(),
    )
    rng = random.Random(3)
    events = [
        FULL_EVENT
        | {
            "event_id": f"{n:08d}-0000-4000-8000-000000000000",
            "event_timestamp": SENT_AT - timedelta(days=rng.randrange(3)),
        }
        for n in range(30)
    ]
    raw = raw_table([(b"7", serializer.serialize(e)) for e in events] + [(b"7", b"junk")])

    def land() -> list[dict]:
        batches = list(land_partition(iter(raw.to_batches()), config, batch_id=4))
        return pa.Table.from_batches(batches).to_pylist()

    first = land()
    replay = land()  # a crashed batch re-run by Spark: same batch id, same task partition
    assert first == replay
    assert {r["outcome"]: r["rows"] for r in first} == {"landed": 30, "not_confluent_avro": 1}
    files = sorted(p.relative_to(tmp_path / "lake") for p in (tmp_path / "lake").rglob("*.parquet"))
    assert all(f.name == "part-abcd1234-b0000000004-t00000.parquet" for f in files)
    landed = pa.concat_tables(
        pq.read_table(tmp_path / "lake" / f) for f in files if f.parts[1] == "events"
    )
    assert sorted(landed["event_id"].to_pylist()) == sorted(e["event_id"] for e in events)
    assert not list((tmp_path / "lake").rglob("*.tmp"))
