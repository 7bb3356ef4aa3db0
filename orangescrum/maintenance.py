"""Lake housekeeping: archive old raw partitions, restore them, report dead letters, prune.

Everything goes through a `LakeStore` (`orangescrum.core.lake_store`): pyarrow's local
filesystem for a local lake, Google's google-cloud-storage client for a gs:// one (server-side
copies, prefix listings), so the same code runs on both. No Spark needed: the CLI and the
maintenance DAG call these functions directly.

Archiving is conservative: a raw day moves to `{lake}/archive/raw/events/event_date=D/` only
when it is older than the retention, is not today or yesterday (the stream still writes
those, late events included), and has a processed copy whose manifest covers every raw file
of the day. Files move one by one under their own names, and the raw folder is removed only
once empty, so a late event landing during the move is never lost or broken.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow.parquet as pq

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.lake import LakeLayout, partition_day
from orangescrum.core.lake_store import LakeStore, StoredFile, open_lake
from orangescrum.core.settings import Settings

log = logging.getLogger(__name__)

# Days the stream may still be writing, counted back from today (today and yesterday).
OPEN_DAYS = 2
# Hidden temp files of an atomic write older than this belong to a killed writer.
STALE_TEMP_AGE = timedelta(hours=1)


class ArchiveDecision(NamedTuple):
    day: date
    archived: bool
    reason: str


class DeadLetterCount(NamedTuple):
    event_date: date
    reason: str
    count: int


def open_store(settings: Settings) -> tuple[LakeStore, LakeLayout]:
    """The lake's store and its layout rooted inside it."""
    return open_lake(settings.lake, settings.gcp_project)


def partition_days(store: LakeStore, folder: str) -> list[date]:
    """Dates of the `event_date=YYYY-MM-DD` folders directly under `folder`, oldest first."""
    days = []
    for name in store.subfolders(folder):
        day = partition_day(name)
        if day is None:
            log.warning("ignoring %s/%s: not an event_date=YYYY-MM-DD folder", folder, name)
            continue
        days.append(day)
    return sorted(days)


def archive_decisions(
    settings: Settings, older_than_days: int, today: date
) -> list[ArchiveDecision]:
    """For every raw day, whether it may be archived now and why (or why not)."""
    _check_retention(older_than_days)
    store, lake = open_store(settings)
    return _archive_decisions(store, lake, older_than_days, today)


def _check_retention(older_than_days: int) -> None:
    if older_than_days < 0:
        raise OrangeScrumError(f"--older-than must be 0 or more days, got {older_than_days}.")


def _archive_decisions(
    store: LakeStore, lake: LakeLayout, older_than_days: int, today: date
) -> list[ArchiveDecision]:
    decisions = []
    for day in partition_days(store, lake.raw_events):
        age = (today - day).days
        paths = lake.day(day)
        if age < OPEN_DAYS:
            decisions.append(ArchiveDecision(day, False, "still being written"))
            continue
        if age <= older_than_days:
            decisions.append(ArchiveDecision(day, False, f"within {older_than_days} days"))
            continue
        manifest = _read_manifest(store, paths.manifest)
        if manifest is None:
            decisions.append(ArchiveDecision(day, False, "no processed copy: compact it first"))
            continue
        covered = set(manifest.get("source_file_names", []))
        missing = [f for f in _landed_files(store, paths.raw) if f.name not in covered]
        if missing:
            decisions.append(
                ArchiveDecision(
                    day,
                    False,
                    f"processed copy is stale ({len(missing)} raw file(s) landed after it): "
                    "compact it again",
                )
            )
            continue
        decisions.append(ArchiveDecision(day, True, f"{age} days old, processed copy current"))
    return decisions


def archive_raw(
    settings: Settings, older_than_days: int, today: date, *, dry_run: bool = False
) -> list[date]:
    """Move raw days older than `older_than_days` that have a current processed copy to archive/.

    Returns the archived days (with `dry_run`, the days that would be archived).
    """
    _check_retention(older_than_days)
    store, lake = open_store(settings)
    archived = []
    for decision in _archive_decisions(store, lake, older_than_days, today):
        if not decision.archived:
            log.info("keeping raw %s: %s", decision.day, decision.reason)
            continue
        archived.append(decision.day)
        if dry_run:
            log.info("would archive raw %s (%s)", decision.day, decision.reason)
            continue
        paths = lake.day(decision.day)
        moved = _move_landed_files(store, paths.raw, paths.archive)
        log.info("archived raw %s: %d file(s) -> %s", decision.day, moved, paths.archive)
    return archived


def restore_archived(settings: Settings, day: date) -> int:
    """Move an archived raw day back to raw/ (e.g. to re-compact it); returns files moved."""
    store, lake = open_store(settings)
    paths = lake.day(day)
    if not _landed_files(store, paths.archive):
        raise OrangeScrumError(
            f"nothing to restore for {day.isoformat()}: {settings.lake.uri(paths.archive)} holds "
            "no Parquet file."
        )
    moved = _move_landed_files(store, paths.archive, paths.raw)
    log.info("restored raw %s: %d file(s) -> %s", day, moved, paths.raw)
    return moved


def dead_letter_report(settings: Settings) -> list[DeadLetterCount]:
    """Dead letters per (event_date, reason), oldest day first."""
    store, lake = open_store(settings)
    counts: Counter[tuple[date, str]] = Counter()
    for file in _landed_files(store, lake.dead_letters):
        day = _partition_day(file.path)
        if day is None:  # not under an event_date= folder: not a landed dead letter
            continue
        with store.open_input(file.path) as handle:
            table = pq.ParquetFile(handle).read(columns=["reason"])
        reasons = table["reason"].value_counts().to_pylist()
        for entry in reasons:
            counts[(day, entry["values"])] += entry["counts"]
    return [DeadLetterCount(day, reason, counts[(day, reason)]) for day, reason in sorted(counts)]


def dead_letter_totals(counts: Sequence[DeadLetterCount]) -> dict[str, int]:
    """Log dead letters per day and reason; returns the totals per reason."""
    totals: dict[str, int] = {}
    for row in counts:
        log.info("dead letters %s %-24s %d", row.event_date, row.reason, row.count)
        totals[row.reason] = totals.get(row.reason, 0) + row.count
    log.info("dead letters in the lake: %d (%s)", sum(totals.values()), totals or "none")
    return totals


@dataclass(frozen=True)
class CleanupResult:
    metrics_files: int
    log_files: int
    checkpoints: list[str]


def cleanup(settings: Settings, older_than_days: int, now: datetime) -> CleanupResult:
    """Everything `maintenance cleanup` and the maintenance DAG prune, with the same age."""
    return CleanupResult(
        metrics_files=cleanup_old_metrics(settings, older_than_days, now),
        log_files=cleanup_old_logs(settings, older_than_days, now),
        checkpoints=remove_stale_checkpoints(settings, older_than_days, now),
    )


def remove_stale_checkpoints(settings: Settings, older_than_days: int, now: datetime) -> list[str]:
    """Delete abandoned streaming checkpoints: local folders under the checkpoint root that
    are not the live query's and have not been written for `older_than_days`.

    The live checkpoint holds the Kafka offsets and is never touched (Spark prunes its own
    history through spark.sql.streaming.minBatchesToRetain). Non-local roots are left alone.
    """
    root = Path(settings.checkpoint_root)
    if "://" in settings.checkpoint_root or not root.is_dir():
        return []
    live = Path(settings.lake.stream_checkpoint).resolve()
    cutoff = (now - timedelta(days=older_than_days)).timestamp()
    removed = []
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        if folder.resolve() == live:
            continue
        newest = max(
            (path.stat().st_mtime for path in folder.rglob("*")), default=folder.stat().st_mtime
        )
        if newest < cutoff:
            shutil.rmtree(folder)
            removed.append(str(folder))
    log.info("removed %d abandoned checkpoint folder(s) under %s", len(removed), root)
    return removed


def cleanup_old_metrics(settings: Settings, older_than_days: int, now: datetime) -> int:
    """Delete streaming metrics files last written more than `older_than_days` ago."""
    store, lake = open_store(settings)
    cutoff = now - timedelta(days=older_than_days)
    deleted = 0
    for file in store.files(lake.metrics, recursive=False):
        if file.updated is not None and file.updated < cutoff:
            store.delete(file)
            deleted += 1
    log.info("deleted %d metrics file(s) older than %s", deleted, cutoff.date())
    return deleted


def cleanup_old_logs(settings: Settings, older_than_days: int, now: datetime) -> int:
    """Delete local `*.log` files (broker, jobs) not written for `older_than_days`."""
    cutoff = (now - timedelta(days=older_than_days)).timestamp()
    deleted = 0
    log_dir = Path(settings.log_dir)
    for path in sorted(log_dir.rglob("*.log*")) if log_dir.is_dir() else []:
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink()
            deleted += 1
    log.info("deleted %d log file(s) under %s", deleted, log_dir)
    return deleted


def _move_landed_files(store: LakeStore, source: str, target: str) -> int:
    """Move the landed Parquet files of one day folder, keeping their names.

    A writer's in-flight hidden temp file is left alone (it is renamed into `source` when the
    writer finishes); one older than STALE_TEMP_AGE is a killed writer's and is deleted.
    """
    # A GCS object rewritten while being moved stays (and keeps its folder) for the next run.
    moved = sum(store.move(file, target) for file in _landed_files(store, source))
    _remove_if_empty(store, source)
    return moved


def _remove_if_empty(store: LakeStore, folder: str) -> None:
    now = datetime.now(UTC)
    for file in store.files(folder, recursive=False):
        is_temp = file.name.startswith(".")
        if is_temp and file.updated is not None and now - file.updated > STALE_TEMP_AGE:
            store.delete(file)
    if not store.remove_folder_if_empty(folder):
        log.info("kept %s: a file landed in it meanwhile", folder)


def _landed_files(store: LakeStore, folder: str) -> list[StoredFile]:
    """Visible Parquet files under `folder` (hidden pending/temp files and _markers excluded)."""
    return [
        file
        for file in store.files(folder, recursive=True)
        if file.path.endswith(".parquet") and not file.name.startswith((".", "_"))
    ]


def _read_manifest(store: LakeStore, path: str) -> dict[str, Any] | None:
    content = store.read_bytes(path)
    return None if content is None else json.loads(content.decode())


def _partition_day(path: str) -> date | None:
    return partition_day(path.rpartition("/")[0].rpartition("/")[2])
