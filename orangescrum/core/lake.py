"""The data lake's layout: every zone, partition folder and file name, in one place.

A lake is a root (a local folder, or gs://bucket/prefix in production) holding:

    raw/events/event_date=D/part-{landing}-b{batch}-p{partition}.parquet   landed by the stream
    raw/_dead_letter/event_date=D/...                                        undecodable input
    raw/metrics/metrics-{landing}-b{batch}.parquet                           one row per batch
    processed/events/event_date=D/part-NNNNN.parquet + _compaction.json      compacted days
    processed/_compaction/                                                   compaction scratch
    archive/raw/events/event_date=D/                                         raw days moved away

plus the stream's checkpoints, which live beside the lake (their own setting). Landing,
compaction, maintenance, the warehouse loader and dbt (through `dbt_vars`) all take their paths
from `LakeLayout`, so a zone is renamed here or nowhere.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

PARTITION_KEY = "event_date"
MANIFEST_NAME = "_compaction.json"
PENDING_SUFFIX = ".pending"
STREAM_CHECKPOINT = "events-raw-to-lake"


@dataclass(frozen=True)
class DayPaths:
    """Where one day lives in each zone (same root form as the layout it came from)."""

    root: str
    day: date

    @property
    def partition(self) -> str:
        return partition_name(self.day)

    @property
    def raw(self) -> str:
        return f"{self.root}/raw/events/{self.partition}"

    @property
    def archive(self) -> str:
        return f"{self.root}/archive/raw/events/{self.partition}"

    @property
    def processed(self) -> str:
        return f"{self.root}/processed/events/{self.partition}"

    @property
    def manifest(self) -> str:
        """Written last by compaction: a processed day without it is not complete."""
        return f"{self.processed}/{MANIFEST_NAME}"

    @property
    def scratch(self) -> str:
        """Staging and trash folders live outside processed/events/ so no glob sees them."""
        return f"{self.root}/processed/_compaction"


@dataclass(frozen=True)
class LakeLayout:
    """The lake's zones under `root`: a URI (gs://...) or an absolute local path.

    `open()` gives the pyarrow filesystem and the same layout rooted inside it, whose zones
    are the paths pyarrow takes; `uri()` turns such a path back into what Spark, DuckDB and
    people read.
    """

    root: str
    gcs_endpoint: str = ""
    checkpoints: str = ""

    @property
    def is_local(self) -> bool:
        return "://" not in self.root

    @property
    def raw_events(self) -> str:
        return f"{self.root}/raw/events"

    @property
    def dead_letters(self) -> str:
        return f"{self.root}/raw/_dead_letter"

    @property
    def metrics(self) -> str:
        return f"{self.root}/raw/metrics"

    @property
    def processed_events(self) -> str:
        return f"{self.root}/processed/events"

    @property
    def archive(self) -> str:
        return f"{self.root}/archive"

    @property
    def archived_raw_events(self) -> str:
        return f"{self.archive}/raw/events"

    @property
    def stream_checkpoint(self) -> str:
        """The raw-landing stream's checkpoint (offsets, commits, landing id, topic id)."""
        return f"{self.checkpoints}/{STREAM_CHECKPOINT}"

    def day(self, day: date) -> DayPaths:
        return DayPaths(self.root, day)

    def metrics_file(self, landing_id: str, batch_id: int) -> str:
        return f"{self.metrics}/metrics-{landing_id}-b{batch_id:010d}.parquet"

    def open(self) -> tuple[pafs.FileSystem, LakeLayout]:
        """(filesystem, this layout rooted inside it)."""
        filesystem, root = filesystem_for(self.root, self.gcs_endpoint)
        return filesystem, replace(self, root=root)

    def uri(self, path: str) -> str:
        """A path inside the lake's filesystem back to its URI (unchanged for a local lake)."""
        if self.is_local or "://" in path:
            return path
        scheme = self.root.partition("://")[0]
        return f"{scheme}://{path}"

    def dbt_vars(self) -> dict[str, str]:
        """The zone URIs dbt's create_raw_events macro reads its external tables from."""
        return {
            "lake_raw_events": self.raw_events,
            "lake_dead_letters": self.dead_letters,
            "lake_metrics": self.metrics,
            "lake_processed_events": self.processed_events,
        }


def filesystem_for(uri: str, gcs_endpoint: str = "") -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or a gs:// URI (checkpoints, the lake)."""
    if uri.startswith("gs://"):
        if gcs_endpoint:
            scheme, _, host = gcs_endpoint.partition("://")
            gcs = pafs.GcsFileSystem(endpoint_override=host, scheme=scheme, anonymous=True)
        else:
            gcs = pafs.GcsFileSystem()
        return gcs, uri.removeprefix("gs://")
    return pafs.LocalFileSystem(), uri


def partition_name(day: date) -> str:
    return f"{PARTITION_KEY}={day.isoformat()}"


def partition_day(name: str) -> date | None:
    """The day of an `event_date=YYYY-MM-DD` folder name; None for anything else."""
    key, _, value = name.partition("=")
    if key != PARTITION_KEY:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def data_file_name(landing_id: str, batch_id: int, kafka_partition: int) -> str:
    """Deterministic per (landing, batch, partition): a replayed batch rewrites the same file."""
    return f"part-{landing_id}-b{batch_id:010d}-p{kafka_partition:05d}.parquet"


def pending_path(path: str) -> str:
    """Hidden (leading dot), so no reader's glob sees the file until `publish` renames it."""
    folder, _, name = path.rpartition("/")
    return f"{folder}/.{name}{PENDING_SUFFIX}"


def published_path(pending: str) -> str:
    folder, _, name = pending.rpartition("/")
    return f"{folder}/{name.removeprefix('.').removesuffix(PENDING_SUFFIX)}"


def read_manifest(filesystem: pafs.FileSystem, path: str) -> dict[str, Any] | None:
    if filesystem.get_file_info(path).type != pafs.FileType.File:
        return None
    with filesystem.open_input_stream(path) as stream:
        return json.loads(stream.read().decode())


def write_parquet_atomically(filesystem: pafs.FileSystem, path: str, table: pa.Table) -> None:
    """Write a file readers see either whole or not at all.

    Local: write a hidden temp file, then rename (atomic on POSIX). GCS: an object becomes
    visible only when its upload completes, so a direct write is already atomic.
    """
    directory, _, name = path.rpartition("/")
    filesystem.create_dir(directory, recursive=True)
    if isinstance(filesystem, pafs.LocalFileSystem):
        temp_path = f"{directory}/.{name}.{uuid.uuid4().hex}.tmp"
        pq.write_table(table, temp_path, filesystem=filesystem, compression="zstd")
        filesystem.move(temp_path, path)
    else:
        pq.write_table(table, path, filesystem=filesystem, compression="zstd")


def list_files(filesystem: pafs.FileSystem, directory: str, suffix: str = ".parquet") -> list[str]:
    """Visible files under `directory` (hidden pending/temp files and _markers excluded)."""
    selector = pafs.FileSelector(directory, recursive=True, allow_not_found=True)
    return sorted(
        info.path
        for info in filesystem.get_file_info(selector)
        if info.type == pafs.FileType.File
        and info.path.endswith(suffix)
        and not info.base_name.startswith((".", "_"))
    )
