"""`orangescrum.health`: the pipeline's health read from a known run, every number exact.

The known run (write_known_run) is written file by file with the project's own schemas: lake
events, a compacted and an archived day, dead letters, three metrics rows, a Spark checkpoint
in Spark's own format, dbt's run_results.json and a DuckDB warehouse. Every expected value
below is derived by hand from those files; the Kafka tests add a topic holding a known
number of messages per partition on the session broker.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer
from rich.console import Console

from orangescrum.cli.status import health_table
from orangescrum.core.checkpoint import checkpoint_progress
from orangescrum.core.contract.schema import DEAD_LETTER_SCHEMA, event_arrow_schema
from orangescrum.core.lake import MANIFEST_NAME
from orangescrum.core.monitoring import (
    METRICS_SCHEMA,
    DbtNodeResult,
    read_metrics,
    warehouse_freshness,
)
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics, topic_id
from orangescrum.health import (
    DEAD_LETTERS_ROLE,
    EVENTS_ROLE,
    NEVER_RAN,
    NOT_CONFIGURED,
    RAN,
    REACHABLE,
    UNREACHABLE,
    BatchMetrics,
    DeadLetterDay,
    LakeDay,
    PartitionState,
    gather,
)


def at(day: int, hhmmss: str) -> datetime:
    """A UTC moment in March 2024."""
    hours, minutes, seconds = (int(part) for part in hhmmss.split(":"))
    return datetime(2024, 3, day, hours, minutes, seconds, tzinfo=UTC)


NOW = at(6, "10:00:00")
LANDING_ID = "abcd1234"
UNREACHABLE_BOOTSTRAP = "127.0.0.1:1"  # nothing listens on port 1


# --- the known run ------------------------------------------------------------------------------
def event_row(
    number: int, event_timestamp: datetime, ingested_at: datetime, partition: int, offset: int
) -> dict[str, Any]:
    return {
        "event_id": f"00000000-0000-4000-8000-{number:012d}",
        "event_type": "user_logged_in",
        "event_timestamp": event_timestamp,
        "company_id": 1,
        "user_id": 10,
        "kafka_topic": "events-raw",
        "kafka_partition": partition,
        "kafka_offset": offset,
        "kafka_timestamp": ingested_at,
        "schema_id": 2,
        "ingested_at": ingested_at,
    }


# event date folder -> file name -> rows. Event 3 happened on 03-04 but landed late, on 03-06
# at 09:00:05: the newest ingestion. Event 4 (03-05 18:00) is the newest event.
RAW = {
    "event_date=2024-03-04": {
        f"part-{LANDING_ID}-b0000000000-p00000.parquet": [
            event_row(1, at(4, "09:00:00"), at(5, "10:00:01"), 0, 0),
            event_row(2, at(4, "10:00:00"), at(5, "10:00:02"), 0, 1),
        ],
        f"part-{LANDING_ID}-b0000000002-p00001.parquet": [
            event_row(3, at(4, "11:00:00"), at(6, "09:00:05"), 1, 0),
        ],
    },
    "event_date=2024-03-05": {
        f"part-{LANDING_ID}-b0000000001-p00000.parquet": [
            event_row(4, at(5, "18:00:00"), at(5, "18:00:05"), 0, 2),
        ],
    },
}
# 03-04 is compacted (manifest written); 03-03's processed copy has no manifest (incomplete).
PROCESSED = {
    "event_date=2024-03-03": {
        "part-00000.parquet": [event_row(0, at(3, "12:00:00"), at(3, "12:00:05"), 0, 9)]
    },
    "event_date=2024-03-04": {
        "part-00000.parquet": RAW["event_date=2024-03-04"][
            f"part-{LANDING_ID}-b0000000000-p00000.parquet"
        ]
    },
}
ARCHIVED_DAY = "event_date=2024-03-01"
ARCHIVED = {
    ARCHIVED_DAY: {
        "part-old-b0000000000-p00000.parquet": [
            event_row(90, at(1, "08:00:00"), at(1, "08:00:05"), 0, 90)
        ]
    }
}


def dead_letter_row(reason: str, offset: int, when: datetime) -> dict[str, Any]:
    return {
        "reason": reason,
        "error_detail": "known",
        "raw_key": b"1",
        "raw_value": b"\x01garbage",
        "kafka_topic": "events-raw",
        "kafka_partition": 0,
        "kafka_offset": offset,
        "kafka_timestamp": when,
        "ingested_at": when,
    }


# 03-05: 2 undecodable + 1 event_too_old; 03-06: 1 undecodable.
DEAD_LETTERS = {
    "event_date=2024-03-05": [
        dead_letter_row("undecodable", 10, at(5, "10:00:03")),
        dead_letter_row("undecodable", 11, at(5, "10:00:03")),
        dead_letter_row("event_too_old", 12, at(5, "10:00:03")),
    ],
    "event_date=2024-03-06": [dead_letter_row("undecodable", 13, at(6, "09:00:06"))],
}


def metrics_row(
    batch_id: int,
    started_at: datetime,
    duration: float,
    counts: tuple[int, int, int],
    lag_total: int | None,
) -> dict[str, Any]:
    rows_in, landed, dead = counts
    return {
        "landing_id": LANDING_ID,
        "batch_id": batch_id,
        "started_at": started_at,
        "finished_at": datetime.fromtimestamp(started_at.timestamp() + duration, UTC),
        "duration_seconds": duration,
        "rows_in": rows_in,
        "rows_landed": landed,
        "rows_dead_lettered": dead,
        "dead_letter_reasons": "{}",
        "end_offsets": "{}",
        "lag_total": lag_total,
    }


# Batch 1 ran while the broker restarted: its lag is unknown (null).
METRICS = [
    metrics_row(0, at(5, "10:00:00"), 4.5, (6, 3, 3), 7),
    metrics_row(1, at(5, "18:00:06"), 1.25, (1, 1, 0), None),
    metrics_row(2, at(6, "09:00:05"), 2.0, (2, 1, 1), 0),
]

RUN_RESULTS = {
    "metadata": {
        "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
        "dbt_version": "1.12.0",
        "generated_at": "2024-03-06T09:30:00.000000Z",
        "invocation_id": "00000000-0000-0000-0000-000000000000",
        "invocation_started_at": "2024-03-06T09:29:49.500000Z",
        "env": {},
    },
    "results": [
        {"unique_id": "model.orangescrum.stg_orangescrum__events", "status": "success",
         "message": "OK", "failures": None},
        {"unique_id": "model.orangescrum.fact_activities", "status": "error",
         "message": "Runtime Error in model fact_activities", "failures": None},
        {"unique_id": "test.orangescrum.not_null_fact_activities_event_id", "status": "pass",
         "message": None, "failures": 0},
        {"unique_id": "test.orangescrum.unique_fact_activities_event_id", "status": "fail",
         "message": "Got 2 results, configured to fail if != 0", "failures": 2},
        {"unique_id": "model.orangescrum.agg_daily_metrics", "status": "skipped",
         "message": "SKIP", "failures": None},
        {"unique_id": "exposure.orangescrum.local_activity_dashboard", "status": "no-op",
         "message": "NO-OP", "failures": 0},
    ],
    "elapsed_time": 10.5,
    "args": {"which": "build", "invocation_command": "dbt build"},
}  # fmt: skip
DBT_FAILURES = (  # by unique_id
    DbtNodeResult("model.orangescrum.agg_daily_metrics", "skipped", "SKIP", None),
    DbtNodeResult(
        "model.orangescrum.fact_activities", "error", "Runtime Error in model fact_activities", None
    ),
    DbtNodeResult(
        "test.orangescrum.unique_fact_activities_event_id",
        "fail",
        "Got 2 results, configured to fail if != 0",
        2,
    ),
)

# fact_activities: event_timestamp, ingested_at, loaded_at (UTC wall clock, no time zone).
WAREHOUSE_ROWS = [
    (datetime(2024, 3, 4, 9), datetime(2024, 3, 5, 10, 0, 1), datetime(2024, 3, 5, 10, 1)),
    (datetime(2024, 3, 5, 18), datetime(2024, 3, 5, 18, 0, 5), datetime(2024, 3, 5, 18, 1)),
]


def write_files(folder: Path, files: dict[str, dict[str, list[dict]]], schema: pa.Schema) -> None:
    for partition, named in files.items():
        (folder / partition).mkdir(parents=True, exist_ok=True)
        for name, rows in named.items():
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / partition / name)


def write_known_lake(settings: Settings) -> None:
    lake = Path(settings.lake_root)
    events = event_arrow_schema()
    write_files(lake / "raw" / "events", RAW, events)
    # A file still being written is hidden: no reader, and no count, sees it.
    (lake / "raw" / "events" / "event_date=2024-03-05" / ".part-x.parquet.pending").write_bytes(
        b"in flight"
    )
    write_files(lake / "processed" / "events", PROCESSED, events)
    manifest = {"day": "2024-03-04", "source_file_names": list(RAW["event_date=2024-03-04"])}
    (lake / "processed" / "events" / "event_date=2024-03-04" / MANIFEST_NAME).write_text(
        json.dumps(manifest)
    )
    write_files(lake / "archive" / "raw" / "events", ARCHIVED, events)
    write_files(
        lake / "raw" / "_dead_letter",
        {day: {"part-0.parquet": rows} for day, rows in DEAD_LETTERS.items()},
        DEAD_LETTER_SCHEMA,
    )
    metrics = lake / "raw" / "metrics"
    metrics.mkdir(parents=True)
    for row in METRICS:
        path = metrics / f"metrics-{LANDING_ID}-b{row['batch_id']:010d}.parquet"
        pq.write_table(pa.Table.from_pylist([row], schema=METRICS_SCHEMA), path)
        # Written when the batch finished: the order readers of the newest files rely on.
        stamp = row["finished_at"].timestamp()
        os.utime(path, (stamp, stamp))


def write_run_results(settings: Settings, document: dict[str, Any] | str = RUN_RESULTS) -> Path:
    path = settings.dbt_manifest_file.parent / "run_results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def build_warehouse(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema orangescrum_dw_marts")
        connection.execute(
            "create table orangescrum_dw_marts.fact_activities "
            "(event_timestamp timestamp, ingested_at timestamp, loaded_at timestamp)"
        )
        connection.executemany(
            "insert into orangescrum_dw_marts.fact_activities values (?, ?, ?)", WAREHOUSE_ROWS
        )
    return path


def write_checkpoint(
    settings: Settings,
    planned: list[dict[str, dict[str, int]]],
    committed: int | None,
    *,
    topic: str | None = None,
) -> Path:
    """An offset log as Spark writes it (plus its hidden .crc files) and commits up to
    `committed`; the stream's landing id and (when given) topic id files."""
    root = Path(settings.lake.stream_checkpoint)
    (root / "offsets").mkdir(parents=True)
    (root / "commits").mkdir()
    for batch_id, offsets in enumerate(planned):
        metadata = {
            "batchWatermarkMs": 0,
            "batchTimestampMs": 1709632800000 + batch_id,
            "conf": {"spark.sql.shuffle.partitions": "4"},
        }
        (root / "offsets" / str(batch_id)).write_text(
            f"v1\n{json.dumps(metadata)}\n{json.dumps(offsets)}"
        )
        (root / "offsets" / f".{batch_id}.crc").write_bytes(b"crc")
    for batch_id in range(committed + 1 if committed is not None else 0):
        (root / "commits" / str(batch_id)).write_text('v1\n{"nextBatchWatermarkMs":0}')
        (root / "commits" / f".{batch_id}.crc").write_bytes(b"crc")
    (root / "metadata").write_text('{"id":"5f6e1f7c-0000-0000-0000-000000000000"}')
    (root / "orangescrum_landing_id").write_text(LANDING_ID)
    if topic is not None:
        (root / "orangescrum_topic_id").write_text(topic)
    return root


@dataclass(frozen=True)
class KnownRun:
    settings: Settings

    @property
    def lake(self) -> Path:
        return Path(self.settings.lake_root)


def known_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The run's dbt target folder inside the test's folder (not dbt_project/target)."""
    return settings.model_copy(
        update={"dbt_manifest_path": str(tmp_path / "dbt-target" / "manifest.json")}
    )


def write_known_run(settings: Settings) -> KnownRun:
    """Everything but the checkpoint and Kafka, which depend on the test's topic."""
    write_known_lake(settings)
    write_run_results(settings)
    build_warehouse(settings.duckdb_file)
    return KnownRun(settings)


@pytest.fixture
def known(settings: Settings, tmp_path: Path) -> KnownRun:
    return write_known_run(
        known_settings(settings, tmp_path).model_copy(
            update={"kafka_bootstrap_servers": UNREACHABLE_BOOTSTRAP}
        )
    )


def file_size(path: Path) -> int:
    return path.stat().st_size


def expected_lake_days(lake: Path) -> tuple[LakeDay, ...]:
    """The days of the known lake, bytes from the files themselves."""

    def sizes(zone: str, day: str, names) -> int:
        return sum(file_size(lake / zone / f"event_date={day}" / name) for name in names)

    return (
        LakeDay(
            date(2024, 3, 1),
            archived_files=1,
            archived_bytes=sizes("archive/raw/events", "2024-03-01", ARCHIVED[ARCHIVED_DAY]),
        ),
        LakeDay(
            date(2024, 3, 3),
            processed_files=1,
            processed_bytes=sizes("processed/events", "2024-03-03", ["part-00000.parquet"]),
        ),
        LakeDay(
            date(2024, 3, 4),
            raw_files=2,
            raw_bytes=sizes("raw/events", "2024-03-04", RAW["event_date=2024-03-04"]),
            processed_files=1,
            processed_bytes=sizes("processed/events", "2024-03-04", ["part-00000.parquet"]),
            compacted=True,
        ),
        LakeDay(
            date(2024, 3, 5),
            raw_files=1,
            raw_bytes=sizes("raw/events", "2024-03-05", RAW["event_date=2024-03-05"]),
        ),
    )


# --- the checkpoint -----------------------------------------------------------------------------
def test_checkpoint_progress_reads_spark_offsets_and_commits(settings: Settings) -> None:
    write_checkpoint(
        settings,
        planned=[{"t": {"0": 2, "1": 3}}, {"t": {"0": 5, "1": 3, "2": 4}}],
        committed=0,
        topic="TopicIdOfT",
    )
    progress = checkpoint_progress(settings.lake.stream_checkpoint)
    assert progress.exists
    assert progress.has_run
    assert (progress.planned_batch_id, progress.committed_batch_id) == (1, 0)
    assert progress.batch_in_flight == 1  # planned, not committed
    # what batch 0 read up to: the next offsets the stream reads
    assert progress.committed_offsets == {"t": {0: 2, 1: 3}}
    assert (progress.landing_id, progress.topic_id) == (LANDING_ID, "TopicIdOfT")


def test_checkpoint_progress_without_a_checkpoint(settings: Settings) -> None:
    progress = checkpoint_progress(settings.lake.stream_checkpoint)
    assert not progress.exists
    assert not progress.has_run
    assert progress.committed_offsets == {}
    assert progress.batch_in_flight is None


def test_a_planned_first_batch_is_not_a_run(settings: Settings) -> None:
    write_checkpoint(settings, planned=[{"t": {"0": 4}}], committed=None)
    progress = checkpoint_progress(settings.lake.stream_checkpoint)
    assert (progress.has_run, progress.batch_in_flight, progress.committed_offsets) == (
        False,
        0,
        {},
    )


# --- lake, dead letters, batches, dbt, freshness (no broker) ------------------------------------
def test_lake_days_count_visible_files_and_bytes_per_zone(known: KnownRun) -> None:
    lake = gather(known.settings, now=NOW).lake
    assert lake.error is None
    assert lake.root == known.settings.lake_root
    assert lake.days == expected_lake_days(known.lake)
    assert lake.totals == {
        "raw_days": 2,
        "raw_files": 3,
        "raw_bytes": sum(d.raw_bytes for d in lake.days),
        "processed_days": 2,
        "processed_files": 2,
        "processed_bytes": sum(d.processed_bytes for d in lake.days),
        "archived_days": 1,
    }


def test_dead_letters_by_reason_and_day(known: KnownRun) -> None:
    dead_letters = gather(known.settings, now=NOW).dead_letters
    assert dead_letters.by_day == (
        DeadLetterDay(date(2024, 3, 5), "event_too_old", 1),
        DeadLetterDay(date(2024, 3, 5), "undecodable", 2),
        DeadLetterDay(date(2024, 3, 6), "undecodable", 1),
    )
    assert dead_letters.by_reason == {"undecodable": 3, "event_too_old": 1}
    assert dead_letters.total == 4


def test_last_batches_newest_first(known: KnownRun) -> None:
    batches = gather(known.settings, batches=2, now=NOW).batches
    assert batches.files == 3
    assert batches.recent == (
        BatchMetrics(LANDING_ID, 2, at(6, "09:00:05"), at(6, "09:00:07"), 2.0, 2, 1, 1, 0),
        BatchMetrics(
            LANDING_ID, 1, at(5, "18:00:06"), datetime(2024, 3, 5, 18, 0, 7, 250_000, tzinfo=UTC),
            1.25, 1, 1, 0, None,
        ),
    )  # fmt: skip


def test_metrics_files_of_an_older_layout_read_with_nulls(settings: Settings) -> None:
    # tests/dbt/lake.py writes metrics without landing_id and dead_letter_reasons, as older
    # streams did: the missing columns read as nulls.
    folder = Path(settings.lake.metrics)
    folder.mkdir(parents=True)
    pq.write_table(
        pa.table({"batch_id": pa.array([7], pa.int64()), "rows_in": pa.array([3], pa.int64())}),
        folder / "batch-7.parquet",
    )
    table = read_metrics(*settings.lake.open())
    assert table.schema == METRICS_SCHEMA
    assert table.to_pylist()[0] == dict.fromkeys(METRICS_SCHEMA.names) | {
        "batch_id": 7,
        "rows_in": 3,
    }


def test_last_dbt_run_and_the_nodes_that_did_not_pass(known: KnownRun) -> None:
    dbt = gather(known.settings, now=NOW).dbt
    assert dbt.state == "failed"
    assert dbt.run_results == str(
        Path(known.settings.dbt_manifest_path).parent / "run_results.json"
    )
    run = dbt.run
    assert run is not None
    assert (run.command, run.invocation) == ("build", "dbt build")
    assert run.started_at == datetime(2024, 3, 6, 9, 29, 49, 500_000, tzinfo=UTC)
    assert run.generated_at == at(6, "09:30:00")
    assert run.elapsed_seconds == 10.5
    assert run.status_counts == {
        "error": 1,
        "fail": 1,
        "no-op": 1,  # exposures: nothing to run, not a failure
        "pass": 1,
        "skipped": 1,
        "success": 1,
    }
    assert run.failures == DBT_FAILURES


def test_freshness_of_the_lake_and_the_warehouse(known: KnownRun) -> None:
    freshness = gather(known.settings, now=NOW).freshness
    assert freshness.lake is not None and freshness.warehouse is not None
    # raw (3 files) and processed (2); the archive is not read
    assert (freshness.lake.files, freshness.lake.newest_event_timestamp) == (5, at(5, "18:00:00"))
    assert freshness.lake.newest_ingested_at == at(6, "09:00:05")  # event 3, landed late
    assert freshness.lake_age_seconds == 3595.0  # 09:00:05 -> 10:00:00
    warehouse = freshness.warehouse
    assert (warehouse.state, warehouse.rows) == ("ok", 2)
    assert warehouse.newest_event_timestamp == at(5, "18:00:00")
    assert warehouse.newest_ingested_at == at(5, "18:00:05")
    assert warehouse.newest_loaded_at == at(5, "18:01:00")
    assert freshness.warehouse_age_seconds == 57595.0  # 03-05 18:00:05 -> 03-06 10:00:00


def test_warehouse_missing_not_built_and_locked(tmp_path: Path) -> None:
    missing = warehouse_freshness(tmp_path / "absent.duckdb")
    assert (missing.state, missing.rows) == ("missing", None)

    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    assert warehouse_freshness(empty).state == "not built"

    built = build_warehouse(tmp_path / "built.duckdb")
    holder = subprocess.Popen(  # another process holds DuckDB's write lock (a dbt build)
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({str(built)!r}); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        locked = warehouse_freshness(built)
    finally:
        holder.kill()
        holder.wait()
    assert locked.state == "locked"
    assert "lock" in locked.detail.lower()
    assert locked.newest_ingested_at is None


def test_a_broken_run_results_file_is_reported_and_the_rest_shows(known: KnownRun) -> None:
    write_run_results(known.settings, "{not json")
    health = gather(known.settings, now=NOW)
    assert health.dbt.state == "unreadable"
    assert "is not a dbt run_results.json" in (health.dbt.error or "")
    assert health.dead_letters.total == 4
    assert any("dbt run results are unreadable" in p for p in health.problems)


def test_no_checkpoint_and_nothing_landed(settings: Settings) -> None:
    health = gather(settings, now=NOW)
    assert health.kafka.state == NOT_CONFIGURED
    assert health.stream.state == NEVER_RAN
    assert health.lake.days == ()
    assert (health.dead_letters.total, health.batches.files, health.batches.recent) == (0, 0, ())
    assert health.freshness.lake is not None
    assert health.freshness.lake.newest_ingested_at is None
    assert health.freshness.warehouse is not None
    assert health.freshness.warehouse.state == "missing"
    assert "The stream never ran: run `orangescrum stream --available-now`." in health.problems


def test_unreachable_broker_is_named_and_the_rest_still_shows(known: KnownRun) -> None:
    write_checkpoint(known.settings, planned=[{"events-raw": {"0": 3}}], committed=0)
    started = time.monotonic()
    health = gather(known.settings, now=NOW)
    assert time.monotonic() - started < 5  # a refused connection is not waited out
    assert health.kafka.state == UNREACHABLE
    assert health.kafka.bootstrap == UNREACHABLE_BOOTSTRAP
    assert UNREACHABLE_BOOTSTRAP in health.kafka.detail
    assert health.kafka.topics == ()
    assert health.problems[0].startswith(f"Kafka at {UNREACHABLE_BOOTSTRAP} is unreachable")
    # the checkpoint still shows what the stream consumed
    assert health.stream.state == RAN
    assert health.stream.committed_offsets == {"events-raw": {0: 3}}
    assert health.dead_letters.total == 4


def test_to_json_is_plain_json(known: KnownRun) -> None:
    document = json.loads(json.dumps(gather(known.settings, batches=1, now=NOW).to_json()))
    assert document["checked_at"] == "2024-03-06T10:00:00+00:00"
    assert document["kafka"] == {
        "bootstrap": UNREACHABLE_BOOTSTRAP,
        "state": UNREACHABLE,
        "detail": document["kafka"]["detail"],
        "topics": [],
    }
    assert document["dead_letters"]["by_reason"] == {"undecodable": 3, "event_too_old": 1}
    assert document["dead_letters"]["by_day"][0] == {
        "event_date": "2024-03-05",
        "reason": "event_too_old",
        "count": 1,
    }
    assert document["batches"]["recent"] == [
        {
            "landing_id": LANDING_ID,
            "batch_id": 2,
            "started_at": "2024-03-06T09:00:05+00:00",
            "finished_at": "2024-03-06T09:00:07+00:00",
            "duration_seconds": 2.0,
            "rows_in": 2,
            "rows_landed": 1,
            "rows_dead_lettered": 1,
            "lag_total": 0,
        }
    ]
    assert document["freshness"]["lake"]["newest_ingested_at"] == "2024-03-06T09:00:05+00:00"
    assert document["dbt"]["run"]["failures"][2] == {
        "unique_id": "test.orangescrum.unique_fact_activities_event_id",
        "status": "fail",
        "message": "Got 2 results, configured to fail if != 0",
        "failures": 2,
    }
    assert document["lake"]["totals"]["raw_files"] == 3
    assert document["problems"] == gather(known.settings, now=NOW).problems


# --- Kafka: exact lag per partition on the session broker ---------------------------------------
def produce(settings: Settings, topic: str, per_partition: dict[int, int]) -> None:
    producer = Producer(settings.kafka_client_config())
    for partition, count in per_partition.items():
        for number in range(count):
            producer.produce(topic, key=b"1", value=f"m{number}".encode(), partition=partition)
    assert producer.flush(30) == 0


@pytest.fixture
def known_topics(kafka_settings: Settings, tmp_path: Path) -> KnownRun:
    """events topic: 5, 3 and 4 messages in partitions 0-2; dead-letter topic: 2 in partition 1.

    The checkpoint committed batch 0 up to {0: 2, 1: 3} and planned batch 1 (not committed);
    partition 2 is not in it yet, so the stream reads it from its earliest offset.
    """
    settings = known_settings(kafka_settings, tmp_path)
    create_topics(settings)
    produce(settings, settings.topic_events, {0: 5, 1: 3, 2: 4})
    produce(settings, settings.topic_dead_letter, {1: 2})
    write_checkpoint(
        settings,
        planned=[
            {settings.topic_events: {"0": 2, "1": 3}},
            {settings.topic_events: {"0": 5, "1": 3, "2": 4}},
        ],
        committed=0,
        topic=topic_id(settings, settings.topic_events),
    )
    return write_known_run(settings)


def test_lag_per_partition_against_the_checkpoint(known_topics: KnownRun) -> None:
    health = gather(known_topics.settings, now=NOW)
    kafka = health.kafka
    assert (kafka.state, kafka.bootstrap) == (
        REACHABLE,
        known_topics.settings.kafka_bootstrap_servers,
    )
    events = kafka.topic(EVENTS_ROLE)
    assert events is not None and events.exists
    assert events.name == known_topics.settings.topic_events
    assert events.partitions == (
        PartitionState(0, earliest=0, end=5, committed=2, lag=3),
        PartitionState(1, earliest=0, end=3, committed=3, lag=0),
        PartitionState(2, earliest=0, end=4, committed=None, lag=4),  # not in the checkpoint
    )
    assert (events.lag_total, events.messages) == (7, 12)
    dead_letters = kafka.topic(DEAD_LETTERS_ROLE)
    assert dead_letters is not None
    assert dead_letters.partitions == (
        PartitionState(0, 0, 0),
        PartitionState(1, 0, 2),
        PartitionState(2, 0, 0),
    )
    assert (dead_letters.messages, dead_letters.lag_total) == (2, None)
    assert health.stream.batch_in_flight == 1
    assert events.topic_id == health.stream.topic_id
    # the known dbt failures are the only problem
    assert health.problems == [
        "The last dbt build had 3 node(s) that did not pass.",
    ]
    as_json = health.to_json()["kafka"]["topics"][0]
    assert (as_json["lag_total"], as_json["messages"]) == (7, 12)
    assert as_json["partitions"][2] == {
        "partition": 2,
        "earliest": 0,
        "end": 4,
        "committed": None,
        "lag": 4,
        "messages": 4,
    }


def test_a_recreated_topic_and_offsets_past_its_end_are_problems(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = known_settings(kafka_settings, tmp_path)
    create_topics(settings)
    produce(settings, settings.topic_events, {0: 2})
    write_checkpoint(
        settings,
        planned=[{settings.topic_events: {"0": 9}}],
        committed=0,
        topic="AAAAAAAAAAAAAAAAAAAAAA",  # the id of a topic deleted since
    )
    health = gather(settings, now=NOW)
    events = health.kafka.topic(EVENTS_ROLE)
    assert events is not None
    assert events.partitions[0] == PartitionState(0, 0, 2, committed=9, lag=0)
    recreated, past_end = health.problems[:2]
    assert recreated.startswith(f"Topic {settings.topic_events} was recreated (id ")
    assert "the checkpoint read AAAAAAAAAAAAAAAAAAAAAA" in recreated
    assert past_end == (
        f"{settings.topic_events} partition 0: the checkpoint is at offset 9, past the "
        "topic's end 2 (topic recreated?)."
    )


def test_missing_topics_are_named(kafka_settings: Settings) -> None:
    health = gather(kafka_settings, now=NOW)
    assert health.kafka.state == REACHABLE
    assert [(t.name, t.exists) for t in health.kafka.topics] == [
        (kafka_settings.topic_events, False),
        (kafka_settings.topic_dead_letter, False),
    ]
    assert (
        f"Topic {kafka_settings.topic_events} does not exist: run `orangescrum topics create`."
        in health.problems
    )


def test_an_unreadable_checkpoint_leaves_the_lag_unknown(kafka_settings: Settings) -> None:
    create_topics(kafka_settings)
    produce(kafka_settings, kafka_settings.topic_events, {0: 2})
    root = write_checkpoint(kafka_settings, planned=[{}], committed=0)
    (root / "offsets" / "0").write_text("v1\n")  # cut short: no source line
    health = gather(kafka_settings, now=NOW)
    assert health.stream.error is not None and health.stream.error.startswith("IndexError")
    events = health.kafka.topic(EVENTS_ROLE)
    assert events is not None
    assert events.partitions[0] == PartitionState(0, 0, 2)  # offsets known, lag not
    assert events.lag_total is None
    assert any(p.startswith("The stream checkpoint ") for p in health.problems)

    console = Console(file=io.StringIO(), width=200)
    console.print(health_table(health))  # people see "-" where the lag is unknown
    text = console.file.getvalue()
    assert f"{kafka_settings.topic_events} p0" in text
    assert "lag -" in text
    assert "checkpoint unreadable" in text
