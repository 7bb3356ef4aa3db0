"""Lake maintenance: archive only what is safe, restore it, dead-letter report, cleanup."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from orangescrum.cli.maintenance import maintenance_app
from orangescrum.core.contract.schema import DEAD_LETTER_SCHEMA
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.lake import MANIFEST_NAME
from orangescrum.maintenance import (
    ArchiveDecision,
    DeadLetterCount,
    archive_decisions,
    archive_raw,
    cleanup_old_logs,
    cleanup_old_metrics,
    dead_letter_report,
    restore_archived,
)
from spark.compaction import compact_day
from tests.spark.test_compaction import event, land

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def day_ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def raw_dir(settings, day: date) -> Path:
    return Path(settings.lake.raw_events) / f"event_date={day}"


def archive_dir(settings, day: date) -> Path:
    return Path(settings.lake.archive) / "raw" / "events" / f"event_date={day}"


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def land_day(settings, day: date, files: int = 2) -> list[str]:
    landed = []
    for number in range(files):
        name = f"part-a-b{number:010d}-t00000.parquet"
        land(settings, name, [event(number, offset=number, day=day)], day)
        landed.append(name)
    return landed


def mark_compacted(settings, day: date) -> None:
    """A processed copy covering the day's current raw files (what compact_day leaves)."""
    folder = Path(settings.lake.processed_events) / f"event_date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part-00000.parquet").write_bytes(b"compacted")
    manifest = {"day": day.isoformat(), "source_file_names": names(raw_dir(settings, day))}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


def build_lake(settings):
    """Raw days of every kind the archiver must tell apart, as of TODAY (the GCS tests upload
    the same lake to fake-gcs-server)."""
    for age in (0, 1, 2, 5, 6, 7, 40):
        land_day(settings, day_ago(age))
    for age in (0, 1, 2, 5, 7, 40):
        mark_compacted(settings, day_ago(age))
    # Day 7 got a late file after its compaction: its processed copy is stale.
    land(
        settings,
        "part-a-b0000000099-t00001.parquet",
        [event(9, offset=99, day=day_ago(7))],
        day_ago(7),
    )
    return settings


@pytest.fixture
def lake(settings):
    return build_lake(settings)


# --- archive ------------------------------------------------------------------------------------
def test_archive_decisions_explain_every_day(lake) -> None:
    assert archive_decisions(lake, older_than_days=3, today=TODAY) == [
        ArchiveDecision(day_ago(40), True, "40 days old, processed copy current"),
        ArchiveDecision(
            day_ago(7),
            False,
            "processed copy is stale (1 raw file(s) landed after it): compact it again",
        ),
        ArchiveDecision(day_ago(6), False, "no processed copy: compact it first"),
        ArchiveDecision(day_ago(5), True, "5 days old, processed copy current"),
        ArchiveDecision(day_ago(2), False, "within 3 days"),
        ArchiveDecision(day_ago(1), False, "still being written"),
        ArchiveDecision(day_ago(0), False, "still being written"),
    ]


@pytest.mark.parametrize(
    ("older_than", "archived_ages"),
    [
        (3, [40, 5]),  # day 6 has no processed copy, day 7's is stale, day 2 is recent
        (5, [40]),  # "older than 5 days" excludes the day exactly 5 days old
        (0, [40, 5, 2]),  # even with no retention, today and yesterday stay in raw
        (60, []),
    ],
)
def test_archive_moves_only_old_days_with_a_current_processed_copy(
    lake, older_than, archived_ages
) -> None:
    before = {age: names(raw_dir(lake, day_ago(age))) for age in (0, 1, 2, 5, 6, 7, 40)}

    archived = archive_raw(lake, older_than, TODAY)

    assert archived == [day_ago(age) for age in archived_ages]
    for age, files in before.items():
        if age in archived_ages:
            assert not raw_dir(lake, day_ago(age)).exists()
            assert names(archive_dir(lake, day_ago(age))) == files
        else:
            assert names(raw_dir(lake, day_ago(age))) == files
            assert not archive_dir(lake, day_ago(age)).exists()


def test_archive_dry_run_moves_nothing(lake) -> None:
    assert archive_raw(lake, 3, TODAY, dry_run=True) == [day_ago(40), day_ago(5)]
    assert len(names(raw_dir(lake, day_ago(40)))) == 2
    assert not (Path(lake.lake.archive)).exists()


def test_archived_files_keep_their_bytes(lake) -> None:
    original = {p.name: p.read_bytes() for p in raw_dir(lake, day_ago(5)).iterdir()}

    archive_raw(lake, 3, TODAY)

    assert {p.name: p.read_bytes() for p in archive_dir(lake, day_ago(5)).iterdir()} == original


def test_archive_leaves_a_file_being_written_and_clears_a_dead_writers(lake) -> None:
    busy, dead = raw_dir(lake, day_ago(5)), raw_dir(lake, day_ago(40))
    in_flight = busy / ".part-b-b0000000007-t00000.parquet.0a1b.tmp"
    in_flight.write_bytes(b"being written")
    abandoned = dead / ".part-b-b0000000003-t00000.parquet.9f8e.tmp"
    abandoned.write_bytes(b"writer was killed")
    # Both ages from the clock archive_raw reads (a test may shift it; the filesystem's not).
    now = datetime.now(UTC)
    just_now, two_hours_ago = now.timestamp(), (now - timedelta(hours=2)).timestamp()
    os.utime(in_flight, (just_now, just_now))
    os.utime(abandoned, (two_hours_ago, two_hours_ago))

    archive_raw(lake, 3, TODAY)

    # The writer can still rename its temp file into place; the dead one's is gone with its day.
    assert names(busy) == [in_flight.name]
    assert not dead.exists()
    assert len(names(archive_dir(lake, day_ago(5)))) == 2


def test_negative_retention_is_rejected(lake) -> None:
    with pytest.raises(OrangeScrumError, match="-1"):
        archive_raw(lake, -1, TODAY)


# --- restore ------------------------------------------------------------------------------------
def test_restore_brings_an_archived_day_back(lake) -> None:
    files = names(raw_dir(lake, day_ago(5)))
    archive_raw(lake, 3, TODAY)

    assert restore_archived(lake, day_ago(5)) == 2

    assert names(raw_dir(lake, day_ago(5))) == files
    assert not archive_dir(lake, day_ago(5)).exists()
    assert names(archive_dir(lake, day_ago(40))) != []  # other archived days stay archived


def test_restore_of_a_day_not_archived_names_the_path(lake) -> None:
    with pytest.raises(OrangeScrumError) as error:
        restore_archived(lake, day_ago(6))

    assert str(archive_dir(lake, day_ago(6))) in str(error.value)


@pytest.mark.slow
def test_compact_archive_restore_round_trip(spark, settings) -> None:
    day = day_ago(10)
    land_day(settings, day, files=3)
    compact_day(spark, settings, day)

    assert archive_raw(settings, 7, TODAY) == [day]
    # Compaction still works from the archive alone (late files can follow an archive run).
    again = compact_day(spark, settings, day)
    assert (again.rows_in, again.rows_out, again.source_files) == (3, 3, 3)
    assert restore_archived(settings, day) == 3
    assert len(names(raw_dir(settings, day))) == 3


# --- dead letters -------------------------------------------------------------------------------
def land_dead_letters(settings, day: date, name: str, reasons: list[str]) -> None:
    folder = Path(settings.lake.dead_letters) / f"event_date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "reason": reason,
            "raw_value": b"\x00",
            "kafka_topic": "events-raw",
            "kafka_partition": 0,
            "kafka_offset": offset,
            "ingested_at": NOW,
        }
        for offset, reason in enumerate(reasons)
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=DEAD_LETTER_SCHEMA), folder / name)


def test_dead_letter_report_counts_per_day_and_reason(settings) -> None:
    land_dead_letters(settings, day_ago(2), "part-a-b1-t0.parquet", ["not_confluent_avro"] * 3)
    land_dead_letters(
        settings, day_ago(1), "part-a-b2-t0.parquet", ["empty_value", "not_confluent_avro"]
    )
    land_dead_letters(settings, day_ago(1), "part-a-b2-t1.parquet", ["empty_value"])
    # A writer's temp file is not a dead letter yet.
    (Path(settings.lake.dead_letters) / f"event_date={day_ago(1)}" / ".x.parquet.1.tmp").touch()

    assert dead_letter_report(settings) == [
        DeadLetterCount(day_ago(2), "not_confluent_avro", 3),
        DeadLetterCount(day_ago(1), "empty_value", 2),  # one in each of two files
        DeadLetterCount(day_ago(1), "not_confluent_avro", 1),
    ]


def test_dead_letter_report_of_an_empty_lake(settings) -> None:
    assert dead_letter_report(settings) == []


# --- cleanup ------------------------------------------------------------------------------------
def age_file(path: Path, days: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    moment = (NOW - timedelta(days=days)).timestamp()
    os.utime(path, (moment, moment))


def test_cleanup_deletes_only_old_metrics_and_logs(settings) -> None:
    metrics = Path(settings.lake.metrics)
    for name, days in (("metrics-a-b0.parquet", 100), ("metrics-a-b1.parquet", 30.5)):
        age_file(metrics / name, days)
    age_file(metrics / "metrics-a-b2.parquet", 1)
    age_file(settings.log_dir / "broker.log", 45)
    age_file(settings.log_dir / "stream.log", 2)

    assert cleanup_old_metrics(settings, 30, NOW) == 2
    assert cleanup_old_logs(settings, 30, NOW) == 1

    assert names(metrics) == ["metrics-a-b2.parquet"]
    assert names(settings.log_dir) == ["stream.log"]


# --- CLI ----------------------------------------------------------------------------------------
@pytest.fixture
def cli_lake(lake, monkeypatch):
    monkeypatch.setenv("ORANGESCRUM_DATA_DIR", str(lake.data_dir))
    return lake


def test_cli_archive_dry_run_lists_decisions(cli_lake) -> None:
    result = CliRunner().invoke(
        maintenance_app, ["archive", "--older-than", "3", "--as-of", "2026-11-24", "--dry-run"]
    )

    assert result.exit_code == 0, result.output
    # 40 and 5 days before 2026-11-24
    assert "would archive 2 raw day(s): 2026-10-15, 2026-11-19" in result.output
    assert "no processed copy" in result.output
    assert raw_dir(cli_lake, day_ago(40)).exists()


def test_cli_archive_then_restore(cli_lake) -> None:
    runner = CliRunner()
    archived = runner.invoke(
        maintenance_app, ["archive", "--older-than", "3", "--as-of", "2026-11-24"]
    )
    restored = runner.invoke(maintenance_app, ["restore", "--date", "2026-11-19"])

    assert archived.exit_code == 0, archived.output
    assert "archived 2 raw day(s)" in archived.output
    assert restored.exit_code == 0, restored.output
    assert "restored 2 file(s) of 2026-11-19" in restored.output
    assert raw_dir(cli_lake, day_ago(5)).exists()
    assert not raw_dir(cli_lake, day_ago(40)).exists()


def test_cli_restore_needs_a_date(cli_lake) -> None:
    result = CliRunner().invoke(maintenance_app, ["restore"])

    assert result.exit_code == 2
    assert "--date" in result.output


def test_cli_dlq_report_json(settings, monkeypatch) -> None:
    monkeypatch.setenv("ORANGESCRUM_DATA_DIR", str(settings.data_dir))
    land_dead_letters(settings, date(2026, 11, 22), "part-a-b1-t0.parquet", ["empty_value"] * 2)

    result = CliRunner().invoke(maintenance_app, ["dlq-report", "--json"])

    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"event_date": "2026-11-22", "reason": "empty_value", "count": 2}
    ]


def test_cli_dlq_report_table(settings, monkeypatch) -> None:
    monkeypatch.setenv("ORANGESCRUM_DATA_DIR", str(settings.data_dir))
    land_dead_letters(settings, date(2026, 11, 22), "part-a-b1-t0.parquet", ["empty_value"] * 2)

    result = CliRunner().invoke(maintenance_app, ["dlq-report"])

    assert result.exit_code == 0, result.output
    assert "2026-11-22" in result.output
    assert "empty_value" in result.output


def test_cli_cleanup_reports_what_it_deleted(settings, monkeypatch) -> None:
    monkeypatch.setenv("ORANGESCRUM_DATA_DIR", str(settings.data_dir))
    old = datetime.now(UTC) - timedelta(days=100)
    abandoned = Path(settings.checkpoint_root) / "events-raw-to-lake-old" / "offsets" / "0"
    live = Path(settings.lake.stream_checkpoint) / "offsets" / "0"
    for path in (
        Path(settings.lake.metrics) / "metrics-a-b0.parquet",
        settings.log_dir / "x.log",
        abandoned,
        live,
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    for path in Path(settings.data_dir).rglob("*"):
        os.utime(path, (old.timestamp(), old.timestamp()))

    result = CliRunner().invoke(maintenance_app, ["cleanup", "--older-than", "90"])

    assert result.exit_code == 0, result.output
    assert (
        "deleted 1 metrics file(s), 1 log file(s) and 1 abandoned checkpoint folder(s) older "
        "than 90 days" in " ".join(result.output.split())
    )
    assert not abandoned.exists()
    assert live.exists()  # the live stream's offsets are never pruned
