"""Daily compaction: one day of raw landed events -> few large, deduplicated files in processed/.

The stream lands many small files per day, and Kafka redelivery can land the same event twice.
`compact_day` reads every file of the day (raw/ and, for late arrivals after an archive run,
archive/), keeps the first ingestion of each event_id, and writes
`{lake}/processed/events/event_date=D/part-00000.parquet ...`, about `rows_per_file` rows each,
sorted by event time. Compaction never writes into raw/: the stream owns that zone.

A re-run replaces the day's folder with identical content: Spark writes into a staging folder
outside `processed/events/`, files get deterministic names, and the finished folder is swapped
in. A `_compaction.json` manifest beside the data records which raw files it covers; archiving
(orangescrum/maintenance.py) uses it to move only raw partitions whose processed copy is current.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime

import pyarrow.parquet as pq
from pyarrow import fs as pafs
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from orangescrum.core.contract.schema import event_arrow_schema
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.lake import MANIFEST_NAME, DayPaths, list_files
from orangescrum.core.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_ROWS_PER_FILE = 1_000_000
# First ingestion wins: earliest landing, then Kafka position (topic last, only to break ties
# between identical records read from two topics).
FIRST_INGESTION_ORDER = ("ingested_at", "kafka_partition", "kafka_offset", "kafka_topic")
OUTPUT_ORDER = ("event_timestamp", "event_id")


@dataclass(frozen=True)
class CompactionResult:
    """What one compaction of one day did."""

    day: date
    rows_in: int
    rows_out: int
    duplicates_removed: int
    source_files: int
    files_written: int
    output_path: str


def deduplicate_events(events: DataFrame) -> DataFrame:
    """One row per event_id: the first ingestion (earliest ingested_at, then Kafka position).

    Pure DataFrame -> DataFrame, so a local SparkSession tests it on a handful of rows.
    """
    first_ingestion = Window.partitionBy("event_id").orderBy(
        *(F.col(column).asc_nulls_last() for column in FIRST_INGESTION_ORDER)
    )
    return (
        events.withColumn("_ingestion_rank", F.row_number().over(first_ingestion))
        .where(F.col("_ingestion_rank") == 1)
        .drop("_ingestion_rank")
    )


def output_file_count(rows: int, rows_per_file: int) -> int:
    return max(1, math.ceil(rows / rows_per_file))


def layout_for_files(events: DataFrame, file_count: int) -> DataFrame:
    """Spread rows over `file_count` tasks by event_id hash, each sorted by event time.

    Hash partitioning is deterministic, so a re-run puts every row in the same file at the
    same position: identical content, not just identical totals.
    """
    return events.repartition(file_count, "event_id").sortWithinPartitions(*OUTPUT_ORDER)


def raw_files_for_day(settings: Settings, day: date) -> list[str]:
    """The day's landed files in raw/ and archive/ (late events can follow an archive run).

    Raises OrangeScrumError naming the raw folder when the day has no file in either zone.
    """
    filesystem, lake = settings.lake.open()
    paths = lake.day(day)
    files = list_files(filesystem, paths.raw) + list_files(filesystem, paths.archive)
    if not files:
        raise OrangeScrumError(
            f"no raw events for {day.isoformat()}: {settings.lake.uri(paths.raw)} holds no Parquet "
            "file (nothing landed that day, or the stream has not run yet)."
        )
    return files


def compact_day(
    spark: SparkSession,
    settings: Settings,
    day: date,
    *,
    rows_per_file: int = DEFAULT_ROWS_PER_FILE,
) -> CompactionResult:
    """Compact and deduplicate one day of raw events into processed/; safe to re-run."""
    if rows_per_file < 1:
        raise OrangeScrumError(f"rows_per_file must be at least 1, got {rows_per_file}.")
    filesystem, lake = settings.lake.open()
    paths = lake.day(day)
    _remove_leftovers(filesystem, paths)
    sources = raw_files_for_day(settings, day)
    rows_in = sum(pq.read_metadata(path, filesystem=filesystem).num_rows for path in sources)
    file_count = output_file_count(rows_in, rows_per_file)
    log.info(
        "compacting %s: %d files, %d rows -> %d file(s)", day, len(sources), rows_in, file_count
    )

    staging = f"{paths.scratch}/staging-{paths.partition}-{uuid.uuid4().hex[:8]}"
    raw = read_events(spark, [settings.lake.uri(path) for path in sources])
    (
        layout_for_files(deduplicate_events(raw), file_count)
        .write.mode("overwrite")
        .option("compression", "zstd")
        .parquet(settings.lake.uri(staging))
    )
    written = _rename_outputs(filesystem, staging)
    rows_out = sum(pq.read_metadata(path, filesystem=filesystem).num_rows for path in written)
    result = CompactionResult(
        day=day,
        rows_in=rows_in,
        rows_out=rows_out,
        duplicates_removed=rows_in - rows_out,
        source_files=len(sources),
        files_written=len(written),
        output_path=settings.lake.uri(paths.processed),
    )
    _write_manifest(filesystem, f"{staging}/{MANIFEST_NAME}", result, sources)
    _swap_in(filesystem, staging, paths)
    log.info(
        "compacted %s: %d rows in, %d out, %d duplicates removed, %d file(s) in %s",
        day,
        result.rows_in,
        result.rows_out,
        result.duplicates_removed,
        result.files_written,
        result.output_path,
    )
    return result


def read_events(spark: SparkSession, uris: list[str]) -> DataFrame:
    """Landed files under the newest event schema (older files get nulls for newer fields)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return spark.read.schema(from_arrow_schema(event_arrow_schema())).parquet(*uris)


def _rename_outputs(filesystem: pafs.FileSystem, folder: str) -> list[str]:
    """Give Spark's part files deterministic names and drop its _SUCCESS and .crc files."""
    selector = pafs.FileSelector(folder, recursive=False)
    infos = sorted(filesystem.get_file_info(selector), key=lambda info: info.base_name)
    parts = [info for info in infos if info.base_name.startswith("part-")]
    for info in infos:
        if info not in parts and info.type == pafs.FileType.File:
            filesystem.delete_file(info.path)
    written = []
    for number, info in enumerate(parts):
        target = f"{folder}/part-{number:05d}.parquet"
        filesystem.move(info.path, target)
        written.append(target)
    return written


def _write_manifest(
    filesystem: pafs.FileSystem, path: str, result: CompactionResult, sources: list[str]
) -> None:
    document = asdict(result) | {
        "day": result.day.isoformat(),
        "compacted_at": datetime.now(UTC).isoformat(),
        # Base names: a landed file keeps its name when maintenance moves it to archive/.
        "source_file_names": sorted({path.rpartition("/")[2] for path in sources}),
    }
    with filesystem.open_output_stream(path) as stream:
        stream.write(json.dumps(document, indent=2).encode())


def _swap_in(filesystem: pafs.FileSystem, staging: str, paths: DayPaths) -> None:
    """Replace the day's processed folder with the staged one.

    Locally both steps are directory renames, so readers see the old day or the new one, and
    at worst, for an instant, no day; never a mix or a half-written file. On GCS a folder
    rename is a copy per object; the trash copy makes a crash there recoverable by a re-run.
    """
    trash = None
    if filesystem.get_file_info(paths.processed).type == pafs.FileType.Directory:
        trash = f"{paths.scratch}/trash-{paths.partition}-{uuid.uuid4().hex[:8]}"
        move_tree(filesystem, paths.processed, trash)
    move_tree(filesystem, staging, paths.processed)
    if trash is not None:
        filesystem.delete_dir(trash)


def move_tree(filesystem: pafs.FileSystem, source: str, target: str) -> list[str]:
    """Move a folder's files under `target` (created as needed); returns the new paths.

    Local: one rename when `target` does not exist yet (atomic), else a rename per file.
    Object stores have no folder rename: each object is copied, then deleted.
    """
    local = isinstance(filesystem, pafs.LocalFileSystem)
    if local and filesystem.get_file_info(target).type == pafs.FileType.NotFound:
        filesystem.create_dir(target.rpartition("/")[0], recursive=True)
        filesystem.move(source, target)
        return [info.path for info in _files(filesystem, target)]
    moved = []
    for info in _files(filesystem, source):
        destination = f"{target}/{info.path.removeprefix(source + '/')}"
        filesystem.create_dir(destination.rpartition("/")[0], recursive=True)
        if local:
            filesystem.move(info.path, destination)
        else:
            filesystem.copy_file(info.path, destination)
            filesystem.delete_file(info.path)
        moved.append(destination)
    if filesystem.get_file_info(source).type == pafs.FileType.Directory and not _files(
        filesystem, source
    ):
        # On GCS a folder is only its marker objects (Hadoop's connector writes them); one
        # already gone leaves nothing to delete.
        with contextlib.suppress(FileNotFoundError):
            filesystem.delete_dir(source)
    return moved


def _files(filesystem: pafs.FileSystem, folder: str) -> list[pafs.FileInfo]:
    selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
    return [info for info in filesystem.get_file_info(selector) if info.type == pafs.FileType.File]


def _remove_leftovers(filesystem: pafs.FileSystem, paths: DayPaths) -> None:
    """Delete staging/trash folders of this day left by an earlier run that was killed."""
    selector = pafs.FileSelector(paths.scratch, recursive=False, allow_not_found=True)
    for info in filesystem.get_file_info(selector):
        if info.type == pafs.FileType.Directory and info.base_name.split("-", 1)[-1].startswith(
            paths.partition
        ):
            log.warning("removing %s left by an interrupted compaction", info.path)
            filesystem.delete_dir(info.path)
