"""Decode Kafka records and land them in the lake, exactly once per micro-batch.

Each Spark task writes its own files, named by (landing id, batch id, task partition). When
Spark replays a micro-batch after a crash it plans the same offset ranges into the same task
partitions, so the replay overwrites exactly the files of the failed attempt: plain Parquet
readers (DuckDB, BigQuery external tables) never see a row twice, and none is lost.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.registry import registry_for
from ingestion.schema import DEAD_LETTER_SCHEMA, event_arrow_schema
from ingestion.serde import DecodeError, EventDeserializer
from ingestion.validation import EventTimeWindow, validate_event
from orangescrum.lake import lake_filesystem, write_parquet_atomically

SUMMARY_SCHEMA = pa.schema(
    [
        ("outcome", pa.string()),  # "landed" or the dead-letter reason
        ("kafka_partition", pa.int32()),
        ("rows", pa.int64()),
        ("max_offset", pa.int64()),
    ]
)
SUMMARY_DDL = "outcome string, kafka_partition int, rows bigint, max_offset bigint"
LANDED = "landed"


@dataclass(frozen=True)
class LandingConfig:
    """Everything a Spark task needs to decode and land records (pickled to executors)."""

    lake_root: str
    landing_id: str
    reader_schema_text: str
    gcs_endpoint: str = ""
    registry_url: str = ""
    registry_auth: str = ""
    max_event_age_days: int = 365
    max_event_future_minutes: int = 60
    dead_letter_topic: str = ""
    kafka_producer_config: tuple[tuple[str, str], ...] = ()

    @property
    def events_dir(self) -> str:
        return f"{self.lake_root}/raw/events"

    @property
    def dead_letter_dir(self) -> str:
        return f"{self.lake_root}/raw/_dead_letter"

    def time_window(self) -> EventTimeWindow:
        return EventTimeWindow(
            max_age=timedelta(days=self.max_event_age_days),
            max_future=timedelta(minutes=self.max_event_future_minutes),
        )


@dataclass
class DecodedBatch:
    events: pa.Table
    dead_letters: pa.Table


def decode_records(
    raw: pa.Table,
    deserializer: EventDeserializer,
    window: EventTimeWindow,
    ingested_at: datetime,
) -> DecodedBatch:
    """Split raw Kafka rows into contract-valid events and dead letters with a reason.

    Pure: the result depends only on the inputs. Event age is judged against the Kafka record
    timestamp (when it was sent), not the wall clock, so a replayed batch decides the same way.
    """
    events: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    for row in raw.to_pylist():
        kafka_columns = {
            "kafka_topic": row["topic"],
            "kafka_partition": row["partition"],
            "kafka_offset": row["offset"],
            "kafka_timestamp": row["timestamp"],
            "ingested_at": ingested_at,
        }
        schema_id = None
        record: dict[str, Any] = {}
        try:
            schema_id, record = deserializer.deserialize(row["value"])
            validate_event(record, row["key"], row["timestamp"] or ingested_at, window)
        except DecodeError as error:
            dead.append(
                {
                    "reason": error.reason,
                    "error_detail": error.detail,
                    "raw_key": row["key"],
                    "raw_value": row["value"],
                    "event_id": record.get("event_id"),
                    "schema_id": schema_id,
                    **kafka_columns,
                }
            )
            continue
        events.append(record | kafka_columns | {"schema_id": schema_id})
    return DecodedBatch(
        # Records are resolved to the newest schema the code knows, so one Arrow schema fits all.
        events=pa.Table.from_pylist(events, schema=event_arrow_schema()),
        dead_letters=pa.Table.from_pylist(dead, schema=DEAD_LETTER_SCHEMA),
    )


def split_by_date(table: pa.Table, timestamp_column: str) -> dict[date, pa.Table]:
    """Rows grouped by the UTC calendar date of a timestamp column (the Hive partition key)."""
    if table.num_rows == 0:
        return {}
    days = pc.cast(table[timestamp_column], pa.timestamp("us", tz="UTC"))
    day_values = pc.cast(pc.floor_temporal(days, unit="day"), pa.date32())
    groups: dict[date, pa.Table] = {}
    for day in pc.unique(day_values).to_pylist():
        groups[day] = table.filter(pc.equal(day_values, pa.scalar(day, pa.date32())))
    return groups


def data_file_name(landing_id: str, batch_id: int, task_partition: int) -> str:
    return f"part-{landing_id}-b{batch_id:010d}-t{task_partition:05d}.parquet"


def land_partition(
    batches: Iterator[pa.RecordBatch], config: LandingConfig, batch_id: int
) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: decode one task's records, write its files, yield a count summary."""
    from pyspark import TaskContext

    context = TaskContext.get()
    task_partition = context.partitionId() if context is not None else 0
    raw = pa.Table.from_batches(list(batches))
    if raw.num_rows == 0:
        return
    deserializer = EventDeserializer(
        registry_for(config.registry_url, config.registry_auth), config.reader_schema_text
    )
    decoded = decode_records(raw, deserializer, config.time_window(), datetime.now(UTC))
    filesystem, root = lake_filesystem(config.lake_root, config.gcs_endpoint)
    name = data_file_name(config.landing_id, batch_id, task_partition)
    for day, rows in split_by_date(decoded.events, "event_timestamp").items():
        path = f"{root}/raw/events/event_date={day.isoformat()}/{name}"
        write_parquet_atomically(filesystem, path, rows)
    dead_letters = decoded.dead_letters.append_column(
        "_day",
        pc.if_else(
            pc.is_null(decoded.dead_letters["kafka_timestamp"]),
            decoded.dead_letters["ingested_at"],
            decoded.dead_letters["kafka_timestamp"],
        ),
    )
    for day, rows in split_by_date(dead_letters, "_day").items():
        path = f"{root}/raw/_dead_letter/event_date={day.isoformat()}/{name}"
        write_parquet_atomically(filesystem, path, rows.drop_columns(["_day"]))
    if config.dead_letter_topic and decoded.dead_letters.num_rows:
        publish_dead_letters(decoded.dead_letters, config)
    yield summarize(raw, decoded)


def summarize(raw: pa.Table, decoded: DecodedBatch) -> pa.RecordBatch:
    counts: Counter[tuple[str, int]] = Counter()
    for partition in decoded.events["kafka_partition"].to_pylist():
        counts[(LANDED, partition)] += 1
    for reason, partition in zip(
        decoded.dead_letters["reason"].to_pylist(),
        decoded.dead_letters["kafka_partition"].to_pylist(),
        strict=True,
    ):
        counts[(reason, partition)] += 1
    max_offsets: dict[int, int] = {}
    for partition, offset in zip(
        raw["partition"].to_pylist(), raw["offset"].to_pylist(), strict=True
    ):
        max_offsets[partition] = max(offset, max_offsets.get(partition, -1))
    outcomes = sorted(counts)
    return pa.RecordBatch.from_pydict(
        {
            "outcome": [outcome for outcome, _ in outcomes],
            "kafka_partition": [partition for _, partition in outcomes],
            "rows": [counts[key] for key in outcomes],
            "max_offset": [max_offsets[partition] for _, partition in outcomes],
        },
        schema=SUMMARY_SCHEMA,
    )


def publish_dead_letters(dead_letters: pa.Table, config: LandingConfig) -> None:
    """Copy dead letters to the DLQ topic with the reason in headers (at least once)."""
    from confluent_kafka import Producer

    producer = Producer(dict(config.kafka_producer_config) | {"enable.idempotence": True})
    for row in dead_letters.to_pylist():
        headers = {
            "reason": row["reason"],
            "error_detail": (row["error_detail"] or "")[:1000],
            "source_topic": row["kafka_topic"],
            "source_partition": str(row["kafka_partition"]),
            "source_offset": str(row["kafka_offset"]),
        }
        producer.produce(
            config.dead_letter_topic, key=row["raw_key"], value=row["raw_value"], headers=headers
        )
        producer.poll(0)
    if producer.flush(30):
        raise RuntimeError(f"dead letters not acknowledged by {config.dead_letter_topic}")


def summary_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Reduce the per-task summaries of one batch to the metrics row's counts."""
    landed = sum(r["rows"] for r in rows if r["outcome"] == LANDED)
    dead = Counter()
    for r in rows:
        if r["outcome"] != LANDED:
            dead[r["outcome"]] += r["rows"]
    return {
        "rows_landed": landed,
        "rows_dead_lettered": sum(dead.values()),
        "rows_in": landed + sum(dead.values()),
        "dead_letter_reasons": json.dumps(dict(sorted(dead.items()))),
    }
