"""Daily compaction: dedup on the first ingestion, deterministic files, idempotent re-runs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql.types import (
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)
from typer.testing import CliRunner

from orangescrum.cli.batch import batch_app
from orangescrum.core.contract.schema import event_arrow_schema
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.lake import MANIFEST_NAME
from spark.compaction import (
    compact_day,
    deduplicate_events,
    output_file_count,
    raw_files_for_day,
)

DAY = date(2026, 11, 20)
FIRST_LANDING = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
REDELIVERY = FIRST_LANDING + timedelta(minutes=5)


def event_id(n: int) -> str:
    return f"{n:08d}-0000-4000-8000-000000000000"


def event(
    n: int,
    *,
    offset: int,
    ingested_at: datetime = FIRST_LANDING,
    partition: int = 0,
    day: date = DAY,
) -> dict:
    """A landed event row; its event time (minute n of 09:00) orders the processed file."""
    return {
        "event_id": event_id(n),
        "event_type": "task_created",
        "event_timestamp": datetime.combine(day, time(9, n % 60), tzinfo=UTC),
        "company_id": 1,
        "user_id": 10 + n,
        "project_id": 100,
        "task_id": 1000 + n,
        "kafka_topic": "events-raw",
        "kafka_partition": partition,
        "kafka_offset": offset,
        "kafka_timestamp": ingested_at - timedelta(seconds=1),
        "schema_id": 1,
        "ingested_at": ingested_at,
    }


def land(settings, name: str, rows: list[dict], day: date = DAY, zone: str = "raw") -> Path:
    """Write one landed file the way the stream does (zone "archive" = archive/raw/events)."""
    prefix = "archive/raw" if zone == "archive" else "raw"
    path = Path(settings.lake_root) / prefix / "events" / f"event_date={day}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=event_arrow_schema()), path)
    return path


def processed_dir(settings, day: date = DAY) -> Path:
    return Path(settings.lake.processed_events) / f"event_date={day}"


def processed_files(settings, day: date = DAY) -> list[str]:
    return sorted(p.name for p in processed_dir(settings, day).glob("*.parquet"))


def processed_rows(settings, day: date = DAY) -> list[dict]:
    """Every processed row, file by file in name order, in stored order."""
    rows = []
    for name in processed_files(settings, day):
        rows.extend(pq.read_table(processed_dir(settings, day) / name).to_pylist())
    return rows


def land_day_with_duplicates(settings) -> None:
    # Batch 0 landed events 1-5; Kafka redelivered 3 and 4 in batch 1 next to the new event 6.
    land(settings, "part-a-b0000000000-t00000.parquet", [event(n, offset=n) for n in range(1, 6)])
    land(
        settings,
        "part-a-b0000000001-t00000.parquet",
        [
            event(3, offset=20, ingested_at=REDELIVERY),
            event(4, offset=21, ingested_at=REDELIVERY),
            event(6, offset=22, ingested_at=REDELIVERY),
        ],
    )
    # Another day's file must stay out of the compaction of DAY.
    next_day = DAY + timedelta(days=1)
    land(
        settings, "part-a-b0000000001-t00001.parquet", [event(7, offset=3, day=next_day)], next_day
    )


# --- deduplicate_events (pure DataFrame -> DataFrame) -------------------------------------------
DEDUP_SCHEMA = StructType(
    [
        StructField("event_id", StringType()),
        StructField("ingested_at", TimestampType()),
        StructField("kafka_topic", StringType()),
        StructField("kafka_partition", IntegerType()),
        StructField("kafka_offset", LongType()),
        StructField("copy", StringType()),  # which delivery a row is, to see which one survives
    ]
)
T1 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
T2 = T1 + timedelta(seconds=30)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("deliveries", "kept"),
    [
        # a later landing loses even with a smaller Kafka position
        ([("early", T1, 2, 50), ("late", T2, 0, 1)], "early"),
        # same landing time: the lower partition wins
        ([("p1", T1, 1, 9), ("p0", T1, 0, 90)], "p0"),
        # same landing time and partition: the lower offset wins
        ([("o7", T1, 0, 7), ("o5", T1, 0, 5)], "o5"),
        # three copies: earliest landing wins, then offset
        ([("c", T2, 0, 1), ("b", T1, 0, 8), ("a", T1, 0, 4)], "a"),
        # a single delivery is kept as is
        ([("only", T2, 2, 3)], "only"),
    ],
)
def test_deduplicate_keeps_the_first_ingestion(spark, deliveries, kept) -> None:
    rows = [
        ("e1", at, "events-raw", partition, offset, copy)
        for copy, at, partition, offset in deliveries
    ]
    rows.append(("e2", T2, "events-raw", 0, 99, "other"))  # another event is never affected
    result = deduplicate_events(spark.createDataFrame(rows, DEDUP_SCHEMA))

    assert sorted((r.event_id, r.copy) for r in result.collect()) == [("e1", kept), ("e2", "other")]
    assert result.columns == DEDUP_SCHEMA.names  # no helper column leaks out


@pytest.mark.parametrize(
    ("rows", "rows_per_file", "files"),
    [
        (0, 1_000_000, 1),  # never zero output tasks
        (999_999, 1_000_000, 1),
        (1_000_000, 1_000_000, 1),
        (1_000_001, 1_000_000, 2),
        (8, 3, 3),
    ],
)
def test_output_file_count(rows, rows_per_file, files) -> None:
    assert output_file_count(rows, rows_per_file) == files


# --- compact_day ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_compact_day_removes_duplicates_into_one_sorted_file(spark, settings) -> None:
    land_day_with_duplicates(settings)

    result = compact_day(spark, settings, DAY)

    assert (result.rows_in, result.rows_out, result.duplicates_removed) == (8, 6, 2)
    assert (result.source_files, result.files_written) == (2, 1)
    assert result.output_path == str(processed_dir(settings))
    assert processed_files(settings) == ["part-00000.parquet"]
    rows = processed_rows(settings)
    # Events 1-6 once each, in event-time order; 3 and 4 keep their first landing.
    assert [r["event_id"] for r in rows] == [event_id(n) for n in range(1, 7)]
    assert {r["event_id"]: r["kafka_offset"] for r in rows} == {
        event_id(1): 1,
        event_id(2): 2,
        event_id(3): 3,  # not the redelivery at offset 20
        event_id(4): 4,  # not the redelivery at offset 21
        event_id(6): 22,
        event_id(5): 5,
    }
    # Same columns as raw; event_date stays in the folder name.
    assert pq.read_schema(processed_dir(settings) / "part-00000.parquet").names == (
        event_arrow_schema().names
    )
    # Nothing staged is left behind, and the manifest names the files it covers.
    assert list((Path(settings.lake_root) / "processed" / "_compaction").iterdir()) == []
    manifest = json.loads((processed_dir(settings) / MANIFEST_NAME).read_text())
    assert manifest["source_file_names"] == [
        "part-a-b0000000000-t00000.parquet",
        "part-a-b0000000001-t00000.parquet",
    ]
    assert (manifest["rows_in"], manifest["rows_out"]) == (8, 6)


@pytest.mark.slow
def test_compact_day_rerun_gives_identical_files(spark, settings) -> None:
    land_day_with_duplicates(settings)
    first = compact_day(spark, settings, DAY, rows_per_file=2)
    first_files = processed_files(settings)
    first_contents = {name: pq.read_table(processed_dir(settings) / name) for name in first_files}

    second = compact_day(spark, settings, DAY, rows_per_file=2)

    # ceil(8 rows in / 2) = 4 hash buckets; deterministic names part-00000, part-00001, ...
    assert first_files == [f"part-{n:05d}.parquet" for n in range(first.files_written)]
    assert 1 <= first.files_written <= 4
    assert second == first
    assert processed_files(settings) == first_files
    for name, table in first_contents.items():
        assert pq.read_table(processed_dir(settings) / name).equals(table)
    assert sorted(r["event_id"] for r in processed_rows(settings)) == [
        event_id(n) for n in range(1, 7)
    ]


@pytest.mark.slow
def test_recompaction_replaces_the_day_and_includes_archived_and_late_files(
    spark, settings
) -> None:
    land_day_with_duplicates(settings)
    compact_day(spark, settings, DAY, rows_per_file=2)
    # The first file was archived since; a late batch then landed event 8 and event 1 again.
    first_file = "part-a-b0000000000-t00000.parquet"
    land(settings, first_file, [event(n, offset=n) for n in range(1, 6)], zone="archive")
    (Path(settings.lake.raw_events) / f"event_date={DAY}" / first_file).unlink()
    land(
        settings,
        "part-a-b0000000009-t00000.parquet",
        [event(8, offset=40, ingested_at=REDELIVERY), event(1, offset=41, ingested_at=REDELIVERY)],
    )

    result = compact_day(spark, settings, DAY)

    assert (result.rows_in, result.rows_out, result.duplicates_removed) == (10, 7, 3)
    assert result.source_files == 3
    # One file now: the four files of the first run are gone, not left beside it.
    assert processed_files(settings) == ["part-00000.parquet"]
    rows = processed_rows(settings)
    assert [r["event_id"] for r in rows] == [event_id(n) for n in (1, 2, 3, 4, 5, 6, 8)]
    assert {r["event_id"]: r["kafka_offset"] for r in rows}[event_id(1)] == 1


@pytest.mark.slow
def test_compact_day_clears_leftovers_of_a_killed_run(spark, settings) -> None:
    land_day_with_duplicates(settings)
    scratch = Path(settings.lake_root) / "processed" / "_compaction"
    stale = scratch / f"staging-event_date={DAY}-deadbeef"
    stale.mkdir(parents=True)
    (stale / "part-00000.parquet").write_bytes(b"half written")
    other_day = scratch / f"staging-event_date={DAY + timedelta(1)}-cafebabe"
    other_day.mkdir()

    compact_day(spark, settings, DAY)

    assert sorted(p.name for p in scratch.iterdir()) == [other_day.name]


def test_missing_raw_day_is_an_error_naming_the_path(settings) -> None:
    land(settings, "part-a-b0000000000-t00000.parquet", [event(1, offset=1)])
    missing = DAY - timedelta(days=1)

    with pytest.raises(OrangeScrumError) as error:
        raw_files_for_day(settings, missing)

    assert f"{settings.lake.raw_events}/event_date={missing}" in str(error.value)


def test_compact_day_checks_the_day_before_reading(settings) -> None:
    # No Spark session is needed to fail: the check comes before any Spark call.
    with pytest.raises(OrangeScrumError, match="event_date=2026-11-20"):
        compact_day(None, settings, DAY)


# --- CLI -----------------------------------------------------------------------------------------
@pytest.fixture
def cli_env(settings, monkeypatch):
    monkeypatch.setenv("ORANGESCRUM_DATA_DIR", str(settings.data_dir))
    return settings


def test_cli_compact_missing_day_fails_before_starting_spark(cli_env, monkeypatch) -> None:
    from spark import session as spark_session

    def no_spark(*_args, **_kwargs):
        raise AssertionError("Spark must not start for a day without data")

    monkeypatch.setattr(spark_session, "build_session", no_spark)
    result = CliRunner().invoke(batch_app, ["compact", "--date", "2026-11-19"])

    assert result.exit_code == 1
    assert isinstance(result.exception, OrangeScrumError)
    assert "event_date=2026-11-19" in str(result.exception)


def test_cli_compact_rejects_a_malformed_date(cli_env) -> None:
    result = CliRunner().invoke(batch_app, ["compact", "--date", "20-11-2026"])

    assert result.exit_code == 2
    assert "20-11-2026" in result.output


@pytest.mark.slow
def test_cli_compact_defaults_to_yesterday(spark, cli_env, monkeypatch) -> None:
    from spark import session as spark_session

    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    first = [event(1, offset=1, day=yesterday)]
    redelivered = [event(1, offset=9, day=yesterday, ingested_at=REDELIVERY)]
    land(cli_env, "part-a-b0000000000-t00000.parquet", first, yesterday)
    land(cli_env, "part-a-b0000000001-t00000.parquet", redelivered, yesterday)
    # The command stops its session when done; keep the shared test session alive.
    monkeypatch.setattr(spark, "stop", lambda: None)
    monkeypatch.setattr(spark_session, "build_session", lambda *_args, **_kwargs: spark)

    result = CliRunner().invoke(batch_app, ["compact"])

    assert result.exit_code == 0, result.output
    assert "2 rows in 2 file(s) -> 1 rows in 1 file(s), 1 duplicate(s) removed" in result.output
    assert processed_files(cli_env, yesterday) == ["part-00000.parquet"]
