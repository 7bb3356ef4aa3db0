"""The change-data-capture stream: Debezium's table topics -> ActivityEvent rows in the lake.

A second streaming query beside spark/stream.py's: Spark's own `kafka` source subscribed to
every table topic under the connector's prefix, each record mapped by spark/cdc.py (Python,
in mapInArrow) and landed by spark/landing.py's exactly-once code into the same raw zones
(`raw/events`, `raw/_dead_letter`), with its own checkpoint and landing id, so neither query
ever overwrites or replays the other's files.

Operated like the event stream, with its helpers: a `raw/metrics` row per micro-batch (named by
this stream's landing id), dead letters copied to the dead-letter topic, and a refusal of a
table topic that was deleted and recreated (TopicGuard). Columns added to or dropped from an
app table are warned about once (spark/cdc_drift.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from orangescrum.core.appdb.translate import REPLY
from orangescrum.core.checkpoint import OFFSETS_LOG, batch_end_offsets, batch_ids
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import Settings
from spark.cdc import CdcRules, Lookups, lookups_from, map_records, to_table
from spark.cdc_drift import ColumnDrift, survey
from spark.landing import SUMMARY_DDL, SUMMARY_SCHEMA, LandingConfig, land_partition, publish
from spark.landing import summary_totals as landing_totals
from spark.stream import (
    KAFKA_COLUMNS,
    LagProbe,
    SentenceKeepingLander,
    StreamTotals,
    TopicGuard,
    await_query,
    checkpoint_lock,
    kafka_source_options,
    landing_config,
    with_trigger,
    write_batch_metrics,
)

log = logging.getLogger(__name__)

CDC_CHECKPOINT = "appdb-cdc-to-lake"
CDC_QUERY_NAME = "appdb_changes_to_lake"
# Outcome of records that mean no event (kept out of landed/dead-lettered counts).
SILENT = "silent"
# Outcome of the rows that carry a table's field names (for ColumnDrift), not records' fates.
FIELDS = "fields"
CHANGE_SUMMARY_SCHEMA = pa.schema(
    [*SUMMARY_SCHEMA, ("table_name", pa.string()), ("fields", pa.list_(pa.string()))]
)
CHANGE_SUMMARY_DDL = f"{SUMMARY_DDL}, table_name string, fields array<string>"
# Tables whose rows the mapping looks facts up in (spark.cdc.Lookups).
LOOKUP_TABLES = ("projects", "users", "easycases", "easycase_milestones", "company_users")


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


def read_lookups(spark: SparkSession, settings: Settings) -> Lookups:
    """The lookup tables' topics as they are now, read whole (spark.cdc.lookups_from says what
    is kept of them and how a change reads them as they were at the change)."""
    rules = cdc_rules(settings)
    options = kafka_source_options(settings)
    for streaming_only in ("subscribe", "maxOffsetsPerTrigger"):
        options.pop(streaming_only, None)
    options |= {
        "subscribePattern": table_topic_pattern(settings, LOOKUP_TABLES),
        "endingOffsets": "latest",
        "failOnDataLoss": "false",
    }
    records = spark.read.format("kafka").options(**options).load()
    value = F.col("value").cast("string")
    # Replies are most of easycases and no lookup reads them; a tombstone (null) stays.
    reply = (F.col("topic") == rules.topic("easycases")) & (
        F.coalesce(
            F.get_json_object(value, "$.payload.after.istype"),
            F.get_json_object(value, "$.payload.before.istype"),
        )
        == str(REPLY)
    )
    rows = (
        records.where(~F.coalesce(reply, F.lit(False)))
        # the bare payload: the schema each value repeats is most of its bytes
        .select(
            "topic",
            "partition",
            "offset",
            F.col("key").cast("string").alias("key"),
            F.get_json_object(value, "$.payload").alias("value"),
        )
        .collect()
    )
    return lookups_from((row.asDict() for row in rows), rules)


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


def land_and_survey(
    batches: Iterator[pa.RecordBatch],
    config: LandingConfig,
    batch_id: int,
    lookups: Lookups,
    rules: CdcRules,
    ingested_at: datetime,
) -> Iterator[pa.RecordBatch]:
    """mapInArrow body of the stream: land_changes' summaries, then one FIELDS row per table
    and field list its records carry (the driver checks them for drift)."""
    records = list(batches)
    for summary in land_changes(iter(records), config, batch_id, lookups, rules, ingested_at):
        rows = summary.num_rows
        yield pa.RecordBatch.from_arrays(
            [*summary.columns, pa.nulls(rows, pa.string()), pa.nulls(rows, pa.list_(pa.string()))],
            schema=CHANGE_SUMMARY_SCHEMA,
        )
    if not records:
        return
    table = pa.Table.from_batches(records)
    seen = survey(table["topic"].to_pylist(), table["value"].to_pylist(), rules)
    if seen:
        yield pa.RecordBatch.from_pylist(
            [
                {
                    "outcome": FIELDS,
                    "kafka_partition": -1,
                    "rows": count,
                    "max_offset": -1,
                    "files": [],
                    "table_name": table_name,
                    "fields": list(fields),
                }
                for (table_name, fields), count in sorted(seen.items())
            ],
            schema=CHANGE_SUMMARY_SCHEMA,
        )


def cluster_topics(settings: Settings) -> set[str]:
    """Every topic on the cluster now (one metadata request)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    timeout = settings.kafka_outage_tolerance_seconds
    try:
        return set(AdminClient(settings.kafka_client_config()).list_topics(timeout=timeout).topics)
    except KafkaException as error:
        raise OrangeScrumError(
            f"Kafka at {settings.kafka_bootstrap_servers} did not answer within {timeout}s "
            f"({error.args[0].str()}); start the broker or fix "
            "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS, then run the stream again."
        ) from None


class ChangeLander(SentenceKeepingLander):
    """The foreachBatch callback: map and land a micro-batch of change events, then record its
    metrics row."""

    def __init__(
        self, spark: SparkSession, settings: Settings, checkpoint: str, config: LandingConfig
    ) -> None:
        self.spark = spark
        self.settings = settings
        self.checkpoint = checkpoint
        self.config = config
        self.rules = cdc_rules(settings)
        self.guard = TopicGuard(settings, checkpoint)
        self.probe = LagProbe(settings)
        self.drift = ColumnDrift()
        self.totals = StreamTotals()
        self.silent = 0

    def check_topics(self, existing: set[str]) -> None:
        """Before Spark plans a batch: the table topics the checkpoint has offsets for must be
        the ones it read. `existing`: the cluster's topics (one deleted and not recreated yet
        has nothing to read, so nothing to refuse)."""
        planned = batch_ids(self.checkpoint, OFFSETS_LOG, self.settings.gcs_endpoint)
        if not planned:
            return
        read = batch_end_offsets(self.checkpoint, planned[-1], self.settings.gcs_endpoint)
        self.guard.check(read.keys() & existing)

    def _land(self, batch: DataFrame, batch_id: int) -> None:
        started_at = datetime.now(UTC)
        planned = batch_end_offsets(self.checkpoint, batch_id, self.settings.gcs_endpoint)
        # Before anything lands: these offsets must belong to the topics the checkpoint read.
        self.guard.check(planned.keys())
        lookups = read_lookups(self.spark, self.settings)
        body = partial(
            land_and_survey,
            config=self.config,
            batch_id=batch_id,
            lookups=lookups,
            rules=self.rules,
            ingested_at=datetime.now(UTC),
        )
        # One task: the topics all have a partition 0, and the landing names a task's files by
        # (landing id, batch, Kafka partition), so two tasks would write the same file names.
        summaries = [
            row.asDict() for row in batch.coalesce(1).mapInArrow(body, CHANGE_SUMMARY_DDL).collect()
        ]
        for row in summaries:
            if row["outcome"] == FIELDS:
                self.drift.observe(row["table_name"], row["fields"])
        filesystem, _ = self.settings.lake.open()
        publish(filesystem, sorted({path for row in summaries for path in row.pop("files")}))
        self.silent += sum(row["rows"] for row in summaries if row["outcome"] == SILENT)
        counts = landing_totals(
            [row for row in summaries if row["outcome"] not in (SILENT, FIELDS)]
        )
        finished_at = datetime.now(UTC)
        metrics = write_batch_metrics(
            self.settings,
            self.config.landing_id,
            batch_id,
            counts,
            started_at,
            finished_at,
            planned,
            self.probe.lag(planned),
        )
        self.totals.add(metrics)
        log.info(
            "change batch %d: %d landed, %d dead-lettered, %s, lag %s, %.1fs",
            batch_id,
            metrics["rows_landed"],
            metrics["rows_dead_lettered"],
            metrics["dead_letter_reasons"],
            metrics["lag_total"],
            metrics["duration_seconds"],
        )

    def close(self) -> None:
        self.probe.close()


def change_landing_config(settings: Settings, checkpoint: str, existing: set[str]) -> LandingConfig:
    """The event stream's landing config; without the dead-letter topic when it is not among
    `existing` (the cluster creates no topic on a first write), said once: dead letters then
    land in the lake only, where `orangescrum maintenance dlq-report` still counts them."""
    config = landing_config(settings, checkpoint)
    if settings.topic_dead_letter in existing:
        return config
    log.warning(
        "Topic %s does not exist: the change stream's dead letters land in the lake only; "
        "run `orangescrum topics create` to have them copied to it too.",
        settings.topic_dead_letter,
    )
    return replace(config, dead_letter_topic="")


def run_cdc_stream(
    spark: SparkSession, settings: Settings, *, available_now: bool = True
) -> tuple[StreamTotals, int]:
    """Drain (or follow) the table topics into the lake: (totals, records that meant no event).

    `rows_in` counts landed events and dead letters (one record may give several events).
    """
    checkpoint = cdc_checkpoint(settings)
    with checkpoint_lock(checkpoint):
        existing = cluster_topics(settings)
        config = change_landing_config(settings, checkpoint, existing)
        lander = ChangeLander(spark, settings, checkpoint, config)
        try:
            lander.check_topics(existing)  # a recreated topic: refused before Spark plans
            writer = (
                read_changes(spark, settings)
                .writeStream.foreachBatch(lander)
                .option("checkpointLocation", checkpoint)
                .queryName(CDC_QUERY_NAME)
            )
            query = with_trigger(writer, settings, available_now=available_now).start()
            await_query(
                query,
                lander,
                settings,
                stopped="The change stream stopped",
                rerun=f"the checkpoint {checkpoint}, so rerunning `orangescrum stream --source "
                "appdb` neither skips nor repeats a change",
            )
        finally:
            lander.close()
        return lander.totals, lander.silent
