"""Lake maintenance: archive only what is safe, restore it, dead-letter report, cleanup."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import fs as pafs
from typer.testing import CliRunner

from orangescrum.cli.maintenance import maintenance_app
from orangescrum.core.contract.schema import DEAD_LETTER_SCHEMA
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.lake import MANIFEST_NAME
from orangescrum.core.settings import Settings
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
from tests.conftest import gcs_client
from tests.lake_views import LakeUnderTest, gcs_objects, local_objects, upload_lake
from tests.spark.test_compaction import event, land

TODAY = date(2026, 11, 24)
AGES = (0, 1, 2, 5, 6, 7, 40)  # the raw days build_lake lands, in days before TODAY
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
    for age in AGES:
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


@pytest.fixture(params=["local", "gcs"])
def place_lake(request, monkeypatch) -> Callable[[Settings], LakeUnderTest]:
    """Where a locally built lake is kept for the test: as it is, or uploaded to gs://."""
    if request.param == "local":
        return lambda settings: LakeUnderTest(settings, "local", partial(local_objects, settings))
    endpoint = request.getfixturevalue("gcs_endpoint")
    client = gcs_client(endpoint)

    def refuse(*args, **kwargs) -> None:
        raise AssertionError("lake maintenance must not use pyarrow's GcsFileSystem")

    monkeypatch.setattr(pafs, "GcsFileSystem", refuse)
    return lambda settings: LakeUnderTest(
        upload_lake(settings, client, endpoint), "gcs", partial(gcs_objects, client)
    )


@pytest.fixture
def any_lake(settings, place_lake) -> LakeUnderTest:
    return place_lake(build_lake(settings))


# --- archive ------------------------------------------------------------------------------------
def test_archive_decisions_explain_every_day(any_lake) -> None:
    assert archive_decisions(any_lake.settings, older_than_days=3, today=TODAY) == [
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
    any_lake, older_than, archived_ages
) -> None:
    before = any_lake.objects("raw")
    assert sorted(before) == sorted(day_ago(age) for age in AGES)

    archived = archive_raw(any_lake.settings, older_than, TODAY)

    moved = [day_ago(age) for age in archived_ages]
    assert archived == moved
    # Byte for byte, under the same names: raw keeps the rest, archive holds exactly the moved.
    assert any_lake.objects("raw") == {d: f for d, f in before.items() if d not in moved}
    assert any_lake.objects("archive/raw") == {d: before[d] for d in moved}


def test_archive_dry_run_moves_nothing(any_lake) -> None:
    before = any_lake.objects("raw")

    assert archive_raw(any_lake.settings, 3, TODAY, dry_run=True) == [day_ago(40), day_ago(5)]

    assert any_lake.objects("raw") == before
    assert any_lake.objects("archive/raw") == {}


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
def test_restore_brings_an_archived_day_back_byte_for_byte(any_lake) -> None:
    before = any_lake.objects("raw")
    archive_raw(any_lake.settings, 3, TODAY)

    assert restore_archived(any_lake.settings, day_ago(5)) == 2

    assert any_lake.objects("raw")[day_ago(5)] == before[day_ago(5)]
    # Other archived days stay archived.
    assert any_lake.objects("archive/raw") == {day_ago(40): before[day_ago(40)]}


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


def test_dead_letter_report_counts_per_day_and_reason(settings, place_lake) -> None:
    land_dead_letters(settings, day_ago(2), "part-a-b1-t0.parquet", ["not_confluent_avro"] * 3)
    land_dead_letters(
        settings, day_ago(1), "part-a-b2-t0.parquet", ["empty_value", "not_confluent_avro"]
    )
    land_dead_letters(settings, day_ago(1), "part-a-b2-t1.parquet", ["empty_value"])
    # A writer's temp file is not a dead letter yet.
    (Path(settings.lake.dead_letters) / f"event_date={day_ago(1)}" / ".x.parquet.1.tmp").touch()
    lake = place_lake(settings)

    assert dead_letter_report(lake.settings) == [
        DeadLetterCount(day_ago(2), "not_confluent_avro", 3),
        DeadLetterCount(day_ago(1), "empty_value", 2),  # one in each of two files
        DeadLetterCount(day_ago(1), "not_confluent_avro", 1),
    ]


def test_dead_letter_report_of_an_empty_lake(settings, place_lake) -> None:
    Path(settings.lake_root).mkdir(parents=True, exist_ok=True)

    assert dead_letter_report(place_lake(settings).settings) == []


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
