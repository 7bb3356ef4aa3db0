"""Land a micro-batch in a gs:// lake with Spark's own Parquet writer, through gcs-connector.

A local lake is landed by spark/landing.py: pyarrow in the tasks, a rename per file to
publish. On a gs:// lake the bytes go through Google's Hadoop connector instead, the client
Dataproc ships and the one Spark's checkpoint and compaction already use:

1. the batch's staging folder, `raw/_staging/<landing id>/b<batch>/`, is emptied of whatever
   an interrupted attempt of this batch left there;
2. Spark's DataFrame writer stages the valid events and the dead letters under it, one file
   per (UTC day, Kafka partition): each task reads one Kafka partition (the Kafka source's
   default, which kafka_source_options keeps), so `partitionBy(day, partition)` gives each
   task one file per day;
3. the driver renames every staged file to the name the local landing gives it
   (`data_file_name`: landing id, batch, Kafka partition) in raw/events or raw/_dead_letter,
   then deletes the staging folder.

Readers (DuckDB and BigQuery glob `raw/events/event_date=*/*.parquet` or `raw/events/*.parquet`)
never reach `raw/_staging/`, and foreachBatch's writes are batch writes: no `_spark_metadata`.

Crash safety. Spark writes the batch's commit log entry only after this returns, so a crash
anywhere below is followed by a replay of the same offsets, which rewrites the same names:

- before the renames: readers see none of the batch, or on a replay the previous attempt's
  complete files, untouched;
- during the renames: each GCS object appears whole (a rename is a server-side copy, then a
  delete of the staged copy), so readers see part of the batch, every row at most once, and
  the replay publishes the rest;
- a file already published by an earlier attempt is replaced by one object overwrite, which
  GCS makes atomic, so a reader sees the old copy or the new one, never neither nor both (a
  delete then a rename would hide its rows in between);
- after the renames: staged leftovers sit in `raw/_staging/`, where no reader looks, until the
  replay's step 1 clears them (the batch stops there if it cannot).

The batch's metrics row stays one upload by the driver with pyarrow (spark/stream.py's
write_batch_metrics, shared with the change stream): a single object, which GCS shows whole or
not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from py4j.protocol import Py4JJavaError
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from orangescrum.core.contract.schema import DEAD_LETTER_SCHEMA, event_arrow_schema
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.lake import (
    PARTITION_KEY,
    LakeLayout,
    data_file_name,
    partition_day,
    partition_name,
)
from spark.decode import REASON
from spark.landing import (
    LANDED,
    SUMMARY_DDL,
    LandingConfig,
    publish_dead_letters,
    summarize,
)

# Staging only: a partitionBy column leaves the files, and kafka_partition must stay in them.
PARTITION_FOLDER = "_kafka_partition"
STAGED_ZONES = {"events": "raw_events", "dead_letters": "dead_letters"}  # -> LakeLayout zone
MICROS_PER_DAY = 86_400_000_000


def lands_through_spark(lake: LakeLayout) -> bool:
    """A gs:// lake: Spark's writer and gcs-connector. Anything else: spark/landing.py."""
    return lake.root.startswith("gs://")


def staging_folder(lake: LakeLayout, landing_id: str, batch_id: int) -> str:
    """Beside the zones, not in them: no reader's glob of raw/events/ reaches it."""
    return f"{lake.root}/raw/_staging/{landing_id}/b{batch_id:010d}"


def land_with_spark(
    decoded: DataFrame, config: LandingConfig, batch_id: int
) -> list[dict[str, Any]]:
    """Stage, dead-letter and publish one decoded micro-batch; returns its summaries
    (outcome, kafka_partition, rows, max_offset) as summary_totals takes them."""
    spark = decoded.sparkSession
    files = HadoopFiles(spark, config.lake.root)
    staging = staging_folder(config.lake, config.landing_id, batch_id)
    files.delete(staging)
    if files.exists(staging):
        # The connector says false rather than raise on some failures; a stale staged file
        # would be published as this batch's.
        raise OSError(f"orangescrum: cannot clear {staging} in the lake: delete it, then rerun")
    # Three jobs read the batch (counts and DLQ, then one write per zone): Kafka is read and
    # decoded once.
    decoded = decoded.persist()
    try:
        # A dead letter's columns hold the counts' too (reason, Kafka partition and offset).
        judged = decoded.select(*DEAD_LETTER_SCHEMA.names).mapInArrow(
            partial(judge_partition, config=config), SUMMARY_DDL
        )
        # `files` is empty: the tasks write nothing, Spark's writer lands the rows below.
        summaries = [
            {key: value for key, value in row.asDict().items() if key != "files"}
            for row in judged.collect()
        ]
        outcomes = {summary["outcome"] for summary in summaries}
        if LANDED in outcomes:
            events = decoded.where(F.col(REASON).isNull())
            write_staged(
                staged_rows(events, event_arrow_schema(), F.col("event_timestamp")),
                f"{staging}/events",
            )
        if outcomes - {LANDED}:
            dead = decoded.where(F.col(REASON).isNotNull())
            # A dead letter may have no event timestamp: it is filed under the day Kafka
            # received it, as the local landing does.
            received = F.coalesce(F.col("kafka_timestamp"), F.col("ingested_at"))
            write_staged(staged_rows(dead, DEAD_LETTER_SCHEMA, received), f"{staging}/dead_letters")
    finally:
        decoded.unpersist()
    publish_staged(files, staged_moves(files, staging, config, batch_id))
    files.delete(staging)
    return summaries


def judge_partition(
    batches: Iterator[pa.RecordBatch], config: LandingConfig
) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: send a task's dead letters to the DLQ topic (at least once, as the
    local landing does) and yield its counts; Spark's writer lands the rows afterwards."""
    arrived = list(batches)
    if not any(batch.num_rows for batch in arrived):  # an empty task may get no batch at all
        return
    decoded = pa.Table.from_batches(arrived)
    dead_letters = decoded.filter(pc.is_valid(decoded[REASON]))
    if config.dead_letter_topic and dead_letters.num_rows:
        publish_dead_letters(dead_letters, config)
    yield summarize(decoded, [])


def utc_day(timestamp: Column) -> Column:
    """The UTC calendar day, whatever the session's time zone (to_date would use it)."""
    return F.date_from_unix_date(F.floor(F.unix_micros(timestamp) / MICROS_PER_DAY).cast("int"))


def staged_rows(rows: DataFrame, schema: pa.Schema, day: Column) -> DataFrame:
    """`rows` in the lake's file schema (the columns pyarrow writes locally, same order and
    types), then the two partitionBy columns. Spark writes every column as optional; the
    readers (DuckDB, BigQuery, compaction's Spark read) take optional and required alike."""
    fields = from_arrow_schema(schema).fields
    return rows.select(
        *(F.col(field.name).cast(field.dataType).alias(field.name) for field in fields),
        utc_day(day).alias(PARTITION_KEY),
        F.col("kafka_partition").alias(PARTITION_FOLDER),
    )


def write_staged(rows: DataFrame, folder: str) -> None:
    (
        rows.write.mode("overwrite")
        .partitionBy(PARTITION_KEY, PARTITION_FOLDER)
        .option("compression", "zstd")
        # One file per task and folder, whatever spark.sql.files.maxRecordsPerFile says: the
        # final names have no room for a second.
        .option("maxRecordsPerFile", 0)
        .parquet(folder)
    )


def staged_moves(
    files: HadoopFiles, staging: str, config: LandingConfig, batch_id: int
) -> list[tuple[str, str]]:
    """(staged file, its final name) for every file Spark staged, sorted by final name."""
    moves: dict[str, str] = {}
    for zone, layout_zone in STAGED_ZONES.items():
        folder = getattr(config.lake, layout_zone)
        pattern = f"{staging}/{zone}/{PARTITION_KEY}=*/{PARTITION_FOLDER}=*/part-*.parquet"
        for staged in files.glob(pattern):
            day_folder, partition_folder = staged.split("/")[-3:-1]
            day = partition_day(day_folder)
            assert day is not None, staged  # Spark named the folder after PARTITION_KEY
            kafka_partition = int(partition_folder.partition("=")[2])
            name = data_file_name(config.landing_id, batch_id, kafka_partition)
            final = f"{folder}/{partition_name(day)}/{name}"
            if final in moves:
                # Two tasks held the same Kafka partition (the source split it): one name for
                # two files would lose rows, so the batch stops before anything is published.
                raise OrangeScrumError(
                    f"Spark staged two files for {final}: the Kafka source split a partition "
                    "over several tasks (leave its minPartitions/maxRecordsPerPartition "
                    "options unset), so the landing cannot name them; nothing was published."
                )
            moves[final] = staged
    return sorted((staged, final) for final, staged in moves.items())


def publish_staged(files: HadoopFiles, moves: list[tuple[str, str]]) -> None:
    """Give the staged files their final names (the module docstring says why this order)."""
    # The connector renames only into a folder that exists (a prefix with an object in it).
    for folder in sorted({final.rpartition("/")[0] for _, final in moves}):
        files.mkdirs(folder)
    for staged, final in sorted(moves, key=lambda move: move[1]):
        if files.exists(final):
            files.replace(staged, final)  # a replay: overwrite in place, never delete first
        else:
            files.rename(staged, final)


class HadoopFiles:
    """The publish step's file operations through the Hadoop FileSystem Spark writes with
    (for gs://, Google's gcs-connector, configured by spark.session.gcs_hadoop_options)."""

    def __init__(self, spark: SparkSession, uri: str) -> None:
        context = spark.sparkContext
        self._jvm: Any = context._jvm
        self._conf = context._jsc.hadoopConfiguration()
        try:
            self._fs = self._path(uri).getFileSystem(self._conf)
        except Py4JJavaError as error:
            cause = str(error.java_exception.toString())
            raise OrangeScrumError(
                f"Spark cannot open the lake at {uri} ({cause}): a gs:// lake needs Google's "
                "gcs-connector on Spark's classpath, which `orangescrum` sessions add (run "
                "`orangescrum jars fetch` once; on Dataproc the image has it)."
            ) from None

    def _path(self, uri: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def glob(self, pattern: str) -> list[str]:
        statuses = self._fs.globStatus(self._path(pattern))
        return sorted(str(status.getPath().toString()) for status in statuses or [])

    def exists(self, uri: str) -> bool:
        return bool(self._fs.exists(self._path(uri)))

    def mkdirs(self, uri: str) -> None:
        self._fs.mkdirs(self._path(uri))

    def rename(self, source: str, target: str) -> None:
        if not self._fs.rename(self._path(source), self._path(target)):
            raise OSError(f"orangescrum: the lake refused to rename {source} to {target}")

    def replace(self, source: str, target: str) -> None:
        """Overwrite `target` with `source` (streamed through this JVM), then delete `source`."""
        file_util = self._jvm.org.apache.hadoop.fs.FileUtil
        source_path, target_path = self._path(source), self._path(target)
        if not file_util.copy(self._fs, source_path, self._fs, target_path, True, True, self._conf):
            raise OSError(f"orangescrum: the lake refused to overwrite {target} with {source}")

    def delete(self, uri: str) -> None:
        """Delete a file or a folder with all it holds; nothing there is fine."""
        self._fs.delete(self._path(uri), True)
