"""The data lake as a pyarrow filesystem: a local folder, or a GCS bucket in production.

Spark executors, the compaction job, maintenance and the warehouse loader all reach the lake
through this one function, so `gs://` works everywhere the local path does.
"""

from __future__ import annotations

import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs


def lake_filesystem(root: str, gcs_endpoint: str = "") -> tuple[pafs.FileSystem, str]:
    """(filesystem, root path inside it) for a lake root like /data/lake or gs://bucket/lake."""
    if root.startswith("gs://"):
        if gcs_endpoint:
            scheme, _, host = gcs_endpoint.partition("://")
            gcs = pafs.GcsFileSystem(endpoint_override=host, scheme=scheme, anonymous=True)
        else:
            gcs = pafs.GcsFileSystem()
        return gcs, root.removeprefix("gs://")
    return pafs.LocalFileSystem(), root


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
    selector = pafs.FileSelector(directory, recursive=True, allow_not_found=True)
    return sorted(
        info.path
        for info in filesystem.get_file_info(selector)
        if info.type == pafs.FileType.File
        and info.path.endswith(suffix)
        and not info.base_name.startswith((".", "_"))
    )
