"""Land decoded Kafka records in the lake, exactly once per micro-batch.

The rows arrive decoded and judged by spark/decode.py (in the JVM). Each Spark task writes
its rows to hidden pending files named by (landing id, batch id, Kafka partition); once every
task has succeeded the driver publishes them under their final names. When Spark replays a
micro-batch after a crash it reads the same offset ranges from its offset log, so the replay
rewrites and republishes exactly the files of the failed attempt. Plain Parquet readers
(DuckDB, BigQuery external tables) never see a row twice, none is lost, and a failed batch
leaves nothing visible. The files are written with pyarrow, which reaches a local folder and
gs:// alike; the event stream lands a gs:// lake through spark/gcs_landing.py instead (Spark's
own writer, so Google's gcs-connector does the I/O), with the same file names.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orangescrum.core.contract.schema import DEAD_LETTER_SCHEMA, event_arrow_schema
from orangescrum.core.lake import (
    LakeLayout,
    data_file_name,
    partition_name,
    pending_path,
    published_path,
)
from spark.decode import REASON

SUMMARY_SCHEMA = pa.schema(
    [
        ("outcome", pa.string()),  # "landed" or the dead-letter reason
        ("kafka_partition", pa.int32()),
        ("rows", pa.int64()),
        ("max_offset", pa.int64()),
        ("files", pa.list_(pa.string())),  # pending files the task wrote, to publish
    ]
)
SUMMARY_DDL = (
    "outcome string, kafka_partition int, rows bigint, max_offset bigint, files array<string>"
)
LANDED = "landed"


@dataclass(frozen=True)
class LandingConfig:
    """Everything a Spark task needs to land rows (pickled to executors)."""

    lake: LakeLayout
    landing_id: str
    dead_letter_topic: str = ""
    kafka_producer_config: tuple[tuple[str, str], ...] = ()
    dead_letter_timeout_seconds: float = 120  # rides out a broker restart, like the source


@dataclass
class LandedBatch:
    events: pa.Table
    dead_letters: pa.Table


def split_outcomes(decoded: pa.Table) -> LandedBatch:
    """Valid events in the lake's event schema, and dead letters in the dead-letter schema."""
    dead = pc.is_valid(decoded[REASON])
    events_schema = event_arrow_schema()
    events = decoded.filter(pc.invert(dead)).select(events_schema.names)
    dead_letters = decoded.filter(dead).select(DEAD_LETTER_SCHEMA.names)
    return LandedBatch(
        events=events.cast(events_schema), dead_letters=dead_letters.cast(DEAD_LETTER_SCHEMA)
    )


def split_by_date(timestamps: pa.ChunkedArray | pa.Array) -> dict[date, pa.Array]:
    """UTC calendar day -> boolean mask of the timestamps on it (the Hive partition key)."""
    if len(timestamps) == 0:
        return {}
    utc = pc.cast(timestamps, pa.timestamp("us", tz="UTC"))
    days = pc.cast(pc.floor_temporal(utc, unit="day"), pa.date32())
    return {day: pc.equal(days, pa.scalar(day, pa.date32())) for day in pc.unique(days).to_pylist()}


class LandingWriteError(OSError):
    """The lake refused a write; the message names the path (it reaches the driver as text)."""


def _write_by_day_and_partition(
    filesystem: Any,
    folder: str,
    rows: pa.Table,
    days: pa.ChunkedArray,
    config: LandingConfig,
    batch_id: int,
) -> list[str]:
    """One pending file per (UTC day of `days`, Kafka partition) under folder/event_date=D/."""
    written = []
    for day, selection in split_by_date(days).items():
        day_rows = rows.filter(selection)
        partitions = day_rows["kafka_partition"]
        for kafka_partition in pc.unique(partitions).to_pylist():
            name = data_file_name(config.landing_id, batch_id, kafka_partition)
            path = pending_path(f"{folder}/{partition_name(day)}/{name}")
            try:
                filesystem.create_dir(path.rpartition("/")[0], recursive=True)
                pq.write_table(
                    day_rows.filter(pc.equal(partitions, kafka_partition)),
                    path,
                    filesystem=filesystem,
                    compression="zstd",
                )
            except OSError as error:
                raise LandingWriteError(
                    f"orangescrum: cannot write the lake at {path.rpartition('/')[0]} "
                    f"({error}): free space or fix the path and its permissions, then run the "
                    "stream again"
                ) from error
            written.append(path)
    return written


def publish(filesystem: Any, pending: list[str]) -> None:
    """Make a batch's files visible under their final names (the driver, after all tasks).

    Until then readers see none of the batch; a replay rewrites the same pending files and
    publishes them over whatever an interrupted publish left.
    """
    for path in sorted(pending):
        filesystem.move(path, published_path(path))


def land_partition(
    batches: Iterator[pa.RecordBatch], config: LandingConfig, batch_id: int
) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: write one task's decoded rows (pending), send its dead letters to the
    DLQ topic, and yield its counts with the files to publish."""
    decoded = pa.Table.from_batches(list(batches))
    if decoded.num_rows == 0:
        return
    landed = split_outcomes(decoded)
    filesystem, lake = config.lake.open()
    events, dead_letters = landed.events, landed.dead_letters
    files = _write_by_day_and_partition(
        filesystem, lake.raw_events, events, events["event_timestamp"], config, batch_id
    )
    # A dead letter may have no event timestamp: it is filed under the day Kafka received it.
    received = pc.coalesce(dead_letters["kafka_timestamp"], dead_letters["ingested_at"])
    files += _write_by_day_and_partition(
        filesystem, lake.dead_letters, dead_letters, received, config, batch_id
    )
    if config.dead_letter_topic and dead_letters.num_rows:
        publish_dead_letters(dead_letters, config)
    yield summarize(decoded, files)


def summarize(decoded: pa.Table, files: list[str]) -> pa.RecordBatch:
    """Rows per (outcome, Kafka partition), each partition's highest offset, and the task's
    pending files (on every row: the driver takes their union)."""
    rows = pa.table(
        {
            "outcome": pc.fill_null(decoded[REASON], LANDED),
            "kafka_partition": decoded["kafka_partition"],
            "kafka_offset": decoded["kafka_offset"],
        }
    )
    counts = rows.group_by(["outcome", "kafka_partition"]).aggregate([("kafka_offset", "count")])
    highest = rows.group_by("kafka_partition").aggregate([("kafka_offset", "max")])
    summary = (
        counts.join(highest, "kafka_partition")
        .rename_columns({"kafka_offset_count": "rows", "kafka_offset_max": "max_offset"})
        .select(SUMMARY_SCHEMA.names[:-1])
        .sort_by([("outcome", "ascending"), ("kafka_partition", "ascending")])
    )
    summary = summary.append_column(
        "files", pa.array([files] * summary.num_rows, pa.list_(pa.string()))
    ).cast(SUMMARY_SCHEMA)
    return summary.combine_chunks().to_batches()[0]


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
    if producer.flush(config.dead_letter_timeout_seconds):
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
