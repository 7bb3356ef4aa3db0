"""The change-data-capture stream: Debezium's table topics -> ActivityEvent rows in the lake.

A second streaming query beside spark/stream.py's: Spark's own `kafka` source subscribed to
every table topic under the connector's prefix, each record mapped by spark/cdc.py (Python,
in mapInArrow) and landed by spark/landing.py's exactly-once code into the same raw zones
(`raw/events`, `raw/_dead_letter`), with its own checkpoint and landing id, so neither query
ever overwrites or replays the other's files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pyarrow as pa
from py4j.protocol import Py4JError
from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import Settings
from spark.cdc import CdcRules, Lookups, map_records, to_table
from spark.landing import SUMMARY_DDL, SUMMARY_SCHEMA, LandingConfig, land_partition, publish
from spark.landing import summary_totals as landing_totals
from spark.stream import (
    KAFKA_COLUMNS,
    StreamTotals,
    checkpoint_lock,
    kafka_source_options,
    landing_id,
    with_trigger,
)

log = logging.getLogger(__name__)

CDC_CHECKPOINT = "appdb-cdc-to-lake"
# Outcome of records that mean no event (kept out of landed/dead-lettered counts).
SILENT = "silent"
# Tables whose latest rows the mapping looks facts up in (spark.cdc.Lookups).
LOOKUP_TABLES = ("projects", "users")


def cdc_checkpoint(settings: Settings) -> str:
    return f"{settings.lake.checkpoints}/{CDC_CHECKPOINT}"


def cdc_rules(settings: Settings) -> CdcRules:
    return CdcRules(
        topic_prefix=settings.connect_topic_prefix,
        database=settings.appdb_database,
        max_event_future_minutes=settings.max_event_future_minutes,
    )


def table_topic_pattern(settings: Settings, tables: tuple[str, ...] | None = None) -> str:
    """The table topics only: not the DDL topic (the bare prefix), the schema history or
    Connect's own topics."""
    head = rf"{re.escape(settings.connect_topic_prefix)}\.{re.escape(settings.appdb_database)}\."
    names = "|".join(re.escape(table) for table in tables) if tables else r"[^.]+"
    return f"{head}({names})"


def cdc_source_options(settings: Settings) -> dict[str, str]:
    options = kafka_source_options(settings)
    del options["subscribe"]
    return options | {
        "subscribePattern": table_topic_pattern(settings),
        # The topics are compacted: offsets of superseded changes vanish by design, which must
        # not stop the stream (what is lost is an intermediate state, not the row's latest).
        "failOnDataLoss": "false",
    }


def read_changes(spark: SparkSession, settings: Settings) -> DataFrame:
    frame = spark.readStream.format("kafka").options(**cdc_source_options(settings)).load()
    return frame.select(*KAFKA_COLUMNS)


def _latest_rows(records: list[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, after-image) of each key's last record: what a compacted topic converges to."""
    latest: dict[tuple[str, bytes], Any] = {}
    for record in sorted(records, key=lambda r: (r["topic"], r["offset"])):
        latest[(record["topic"], bytes(record["key"] or b""))] = record["value"]
    for (topic, _), value in latest.items():
        if value is None:
            continue
        with contextlib.suppress(ValueError):
            envelope = json.loads(value)
            after = (envelope.get("payload") or {}).get("after")
            if isinstance(after, dict):
                yield topic.rpartition(".")[2], after


def read_lookups(spark: SparkSession, settings: Settings) -> Lookups:
    """A project's company and a user's profile, from the projects and users topics as they are
    now (both are facts the app never changes, so the moment of reading does not matter)."""
    options = kafka_source_options(settings)
    for streaming_only in ("subscribe", "maxOffsetsPerTrigger"):
        options.pop(streaming_only, None)
    options |= {
        "subscribePattern": table_topic_pattern(settings, LOOKUP_TABLES),
        "endingOffsets": "latest",
        "failOnDataLoss": "false",
    }
    records = spark.read.format("kafka").options(**options).load()
    rows = records.select("topic", "offset", "key", "value").collect()
    companies: dict[int, int] = {}
    users: dict[int, dict[str, Any]] = {}
    for table, after in _latest_rows(rows):
        if table == "projects" and after.get("id") is not None:
            companies[after["id"]] = after.get("company_id")
        elif table == "users" and after.get("id") is not None:
            users[after["id"]] = after
    return Lookups(project_companies=companies, users=users)


def land_changes(
    batches: Iterator[pa.RecordBatch],
    config: LandingConfig,
    batch_id: int,
    lookups: Lookups,
    rules: CdcRules,
    ingested_at: datetime,
) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: map one task's Kafka records, then land them as the Avro stream does."""
    records = pa.Table.from_batches(list(batches)).to_pylist()
    if not records:
        return
    mapped = map_records(records, lookups, rules, ingested_at)
    if mapped.rows:
        yield from land_partition(iter(to_table(mapped.rows).to_batches()), config, batch_id)
    if mapped.silent:
        yield pa.RecordBatch.from_pylist(
            [
                {
                    "outcome": SILENT,
                    "kafka_partition": -1,
                    "rows": mapped.silent,
                    "max_offset": -1,
                    "files": [],
                }
            ],
            schema=SUMMARY_SCHEMA,
        )


class ChangeLander:
    """The foreachBatch callback: map and land a micro-batch of change events."""

    def __init__(self, spark: SparkSession, settings: Settings, config: LandingConfig) -> None:
        self.spark = spark
        self.settings = settings
        self.config = config
        self.rules = cdc_rules(settings)
        self.totals = StreamTotals()
        self.silent = 0

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        lookups = read_lookups(self.spark, self.settings)
        body = partial(
            land_changes,
            config=self.config,
            batch_id=batch_id,
            lookups=lookups,
            rules=self.rules,
            ingested_at=datetime.now(UTC),
        )
        # One task: the topics all have a partition 0, and the landing names a task's files by
        # (landing id, batch, Kafka partition), so two tasks would write the same file names.
        summaries = [
            row.asDict() for row in batch.coalesce(1).mapInArrow(body, SUMMARY_DDL).collect()
        ]
        filesystem, _ = self.settings.lake.open()
        publish(filesystem, sorted({path for row in summaries for path in row.pop("files")}))
        self.silent += sum(row["rows"] for row in summaries if row["outcome"] == SILENT)
        metrics = landing_totals([row for row in summaries if row["outcome"] != SILENT])
        self.totals.add(metrics)
        log.info(
            "change batch %d: %d landed, %d dead-lettered, %s",
            batch_id,
            metrics["rows_landed"],
            metrics["rows_dead_lettered"],
            metrics["dead_letter_reasons"],
        )


def run_cdc_stream(
    spark: SparkSession, settings: Settings, *, available_now: bool = True
) -> tuple[StreamTotals, int]:
    """Drain (or follow) the table topics into the lake: (totals, records that meant no event).

    `rows_in` counts landed events and dead letters (one record may give several events).
    """
    checkpoint = cdc_checkpoint(settings)
    with checkpoint_lock(checkpoint):
        config = LandingConfig(
            lake=settings.lake,
            landing_id=landing_id(checkpoint, settings.gcs_endpoint),
            dead_letter_timeout_seconds=settings.kafka_outage_tolerance_seconds,
        )
        lander = ChangeLander(spark, settings, config)
        writer = (
            read_changes(spark, settings)
            .writeStream.foreachBatch(lander)
            .option("checkpointLocation", checkpoint)
            .queryName("appdb_changes_to_lake")
        )
        query = with_trigger(writer, settings, available_now=available_now).start()
        try:
            query.awaitTermination()
        except StreamingQueryException as error:
            log.exception("the change stream stopped", extra={"file_only": True})
            first = (getattr(error, "desc", None) or str(error)).strip().splitlines()[0][:300]
            raise OrangeScrumError(
                f"The change stream stopped: {first}. Batches that landed are recorded in the "
                f"checkpoint {checkpoint}, so rerunning `orangescrum stream --source appdb` "
                f"neither skips nor repeats a change (details: {settings.log_file})."
            ) from None
        finally:
            with contextlib.suppress(Py4JError):
                if query.isActive:
                    query.stop()
        return lander.totals, lander.silent
