"""Reading the stream's Spark checkpoint without Spark: offsets, commits and our own files.

Spark keeps a streaming query's progress in two logs under its checkpoint folder, one file per
micro-batch named by the batch id (hidden `.N.crc` checksums beside them):

    offsets/N   written before batch N runs: the end offsets it will read up to
    commits/N   written once batch N has succeeded (its files landed, its metrics written)

An offset file is (format v1) a version line, a line of batch metadata, then one JSON line per
source; Spark's `kafka` source writes `{"topic": {"partition": end offset, ...}}`. The offsets
of the highest committed batch are what the stream has consumed: the next record it reads in a
partition is at that offset. A planned batch without a commit is running, or was interrupted
and will be replayed with the same offsets.

The stream (spark/stream.py) keeps two small files of its own there too: the landing id that
names its files and the id of the Kafka topic it read. `orangescrum status` reads all of this
in a second, without starting a JVM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pyarrow import fs as pafs

from orangescrum.core.lake import filesystem_for

LANDING_ID_FILE = "orangescrum_landing_id"
TOPIC_ID_FILE = "orangescrum_topic_id"
OFFSETS_LOG = "offsets"
COMMITS_LOG = "commits"


def read_checkpoint_file(checkpoint: str, name: str, gcs_endpoint: str = "") -> str | None:
    """The stripped text of a small file in the checkpoint folder; None when it is absent."""
    filesystem, path = filesystem_for(checkpoint, gcs_endpoint)
    if filesystem.get_file_info(f"{path}/{name}").type != pafs.FileType.File:
        return None
    with filesystem.open_input_stream(f"{path}/{name}") as stream:
        return stream.read().decode().strip()


def batch_end_offsets(
    checkpoint: str, batch_id: int, gcs_endpoint: str = ""
) -> dict[str, dict[str, int]]:
    """End offsets Spark planned for a batch, read from its offset log (written before it ran).

    {topic: {partition (as text): end offset}}, as Spark's kafka source writes them.
    """
    filesystem, path = filesystem_for(checkpoint, gcs_endpoint)
    with filesystem.open_input_stream(f"{path}/{OFFSETS_LOG}/{batch_id}") as stream:
        lines = stream.read().decode().splitlines()
    # v1 format: version line, batch metadata, then one line per source.
    return json.loads(lines[2])


def batch_ids(checkpoint: str, log: str, gcs_endpoint: str = "") -> list[int]:
    """Batch ids present in one of the checkpoint's logs (`offsets` or `commits`), ascending."""
    filesystem, path = filesystem_for(checkpoint, gcs_endpoint)
    selector = pafs.FileSelector(f"{path}/{log}", recursive=False, allow_not_found=True)
    return sorted(
        int(info.base_name)
        for info in filesystem.get_file_info(selector)
        if info.type == pafs.FileType.File and info.base_name.isdigit()
    )


@dataclass(frozen=True)
class CheckpointProgress:
    """How far the stream got, as its checkpoint records it."""

    path: str
    exists: bool
    planned_batch_id: int | None = None  # highest batch in offsets/
    committed_batch_id: int | None = None  # highest batch in commits/
    # {topic: {partition: offset}}: the next offset the stream reads in each partition.
    committed_offsets: dict[str, dict[int, int]] = field(default_factory=dict)
    landing_id: str | None = None
    topic_id: str | None = None

    @property
    def has_run(self) -> bool:
        """At least one micro-batch was committed."""
        return self.committed_batch_id is not None

    @property
    def batch_in_flight(self) -> int | None:
        """A planned batch without its commit: running now, or interrupted (it is replayed)."""
        if self.planned_batch_id is None:
            return None
        if self.committed_batch_id is None or self.planned_batch_id > self.committed_batch_id:
            return self.planned_batch_id
        return None


def checkpoint_progress(checkpoint: str, gcs_endpoint: str = "") -> CheckpointProgress:
    """The checkpoint's planned and committed batches and the offsets the stream consumed."""
    filesystem, path = filesystem_for(checkpoint, gcs_endpoint)
    if filesystem.get_file_info(path).type != pafs.FileType.Directory:
        return CheckpointProgress(path=checkpoint, exists=False)
    planned = batch_ids(checkpoint, OFFSETS_LOG, gcs_endpoint)
    committed = batch_ids(checkpoint, COMMITS_LOG, gcs_endpoint)
    committed_id = committed[-1] if committed else None
    offsets: dict[str, dict[int, int]] = {}
    if committed_id is not None:
        offsets = {
            topic: {int(partition): int(offset) for partition, offset in partitions.items()}
            for topic, partitions in batch_end_offsets(
                checkpoint, committed_id, gcs_endpoint
            ).items()
        }
    return CheckpointProgress(
        path=checkpoint,
        exists=True,
        planned_batch_id=planned[-1] if planned else None,
        committed_batch_id=committed_id,
        committed_offsets=offsets,
        landing_id=read_checkpoint_file(checkpoint, LANDING_ID_FILE, gcs_endpoint),
        topic_id=read_checkpoint_file(checkpoint, TOPIC_ID_FILE, gcs_endpoint),
    )
