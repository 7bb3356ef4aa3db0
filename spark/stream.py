"""The streaming job: Kafka `events-raw` -> decoded events and dead letters in the lake.

`run_stream(settings, available_now=True)` drains what is in the topic now and stops (the
Airflow micro-run); without it the query runs on a processing-time trigger until stopped.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from ingestion.schema import load_schema_text
from orangescrum.errors import OrangeScrumError
from orangescrum.lake import lake_filesystem, write_parquet_atomically
from orangescrum.settings import Settings, SparkSource
from spark.kafka_source import (
    OPTION_MAX_OFFSETS,
    OPTION_TOPIC,
    SOURCE_NAME,
    KafkaDataSource,
    find_end_offsets,
)
from spark.landing import SUMMARY_DDL, LandingConfig, land_partition, summary_totals

log = logging.getLogger(__name__)

METRICS_SCHEMA = pa.schema(
    [
        ("landing_id", pa.string()),
        ("batch_id", pa.int64()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("duration_seconds", pa.float64()),
        ("rows_in", pa.int64()),
        ("rows_landed", pa.int64()),
        ("rows_dead_lettered", pa.int64()),
        ("dead_letter_reasons", pa.string()),
        ("end_offsets", pa.string()),
        ("lag_total", pa.int64()),
    ]
)
LANDING_ID_FILE = "orangescrum_landing_id"


@dataclass
class StreamTotals:
    """What one run of the stream did, summed over its micro-batches."""

    batches: int = 0
    rows_in: int = 0
    rows_landed: int = 0
    rows_dead_lettered: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, metrics: dict[str, Any]) -> None:
        self.batches += 1
        self.rows_in += metrics["rows_in"]
        self.rows_landed += metrics["rows_landed"]
        self.rows_dead_lettered += metrics["rows_dead_lettered"]
        for reason, count in json.loads(metrics["dead_letter_reasons"]).items():
            self.dead_letter_reasons[reason] = self.dead_letter_reasons.get(reason, 0) + count


def checkpoint_location(settings: Settings) -> str:
    return f"{settings.checkpoint_root}/events-raw-to-lake"


def landing_id(checkpoint: str, gcs_endpoint: str = "") -> str:
    """A short id fixed for the life of a checkpoint.

    Batch ids restart at 0 with a new checkpoint; putting this id in file names keeps a new
    query from overwriting the files of an earlier one.
    """
    filesystem, path = lake_filesystem(checkpoint, gcs_endpoint)
    id_path = f"{path}/{LANDING_ID_FILE}"
    if filesystem.get_file_info(id_path).type == pa.fs.FileType.File:
        with filesystem.open_input_stream(id_path) as stream:
            return stream.read().decode().strip()
    new_id = uuid.uuid4().hex[:8]
    filesystem.create_dir(path, recursive=True)
    with filesystem.open_output_stream(id_path) as stream:
        stream.write(new_id.encode())
    return new_id


def batch_end_offsets(checkpoint: str, batch_id: int, gcs_endpoint: str = "") -> dict[str, int]:
    """End offsets Spark planned for a batch, read from its offset log (written before it ran)."""
    filesystem, path = lake_filesystem(checkpoint, gcs_endpoint)
    with filesystem.open_input_stream(f"{path}/offsets/{batch_id}") as stream:
        lines = stream.read().decode().splitlines()
    # v1 format: version line, batch metadata, then one line per source.
    return json.loads(lines[2])


KAFKA_COLUMNS = ("key", "value", "topic", "partition", "offset", "timestamp")
NATIVE_KAFKA_PACKAGE = "org.apache.spark:spark-sql-kafka-0-10_2.13"


def kafka_source_options(settings: Settings) -> tuple[str, dict[str, str]]:
    """(format, options) of the configured Kafka source; both yield KAFKA_COLUMNS."""
    options = {f"kafka.{k}": v for k, v in settings.kafka_client_config().items()}
    if settings.spark_source is SparkSource.NATIVE:
        # Spark's own source: JAAS config instead of librdkafka's sasl.username/password.
        for key in ("kafka.sasl.username", "kafka.sasl.password"):
            options.pop(key, None)
        if settings.kafka_security_protocol.startswith("SASL"):
            options["kafka.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{settings.kafka_sasl_username}" '
                f'password="{settings.kafka_sasl_password.get_secret_value()}";'
            )
        return "kafka", options | {
            "subscribe": settings.topic_events,
            "startingOffsets": "earliest",
            "maxOffsetsPerTrigger": str(settings.max_events_per_batch),
            "failOnDataLoss": "true",
        }
    return SOURCE_NAME, options | {
        OPTION_TOPIC: settings.topic_events,
        OPTION_MAX_OFFSETS: str(settings.max_events_per_batch),
    }


def read_kafka(spark: SparkSession, settings: Settings) -> DataFrame:
    """Kafka records as (key, value, topic, partition, offset, timestamp), from either source."""
    source_format, options = kafka_source_options(settings)
    if source_format == SOURCE_NAME:
        spark.dataSource.register(KafkaDataSource)
    try:
        frame = spark.readStream.format(source_format).options(**options).load()
    except Exception as error:
        if "KAFKA_DATA_SOURCE_NOT_ENABLED" in str(error) or "Failed to find data source" in str(
            error
        ):
            raise OrangeScrumError(
                "ORANGESCRUM_SPARK_SOURCE=native needs Spark's Kafka connector on the cluster "
                f"(spark-submit --packages {NATIVE_KAFKA_PACKAGE}:<spark version>, or the jars "
                "in the image); without it use ORANGESCRUM_SPARK_SOURCE=python."
            ) from None
        raise
    return frame.select(*KAFKA_COLUMNS)


def landing_config(settings: Settings, checkpoint: str) -> LandingConfig:
    return LandingConfig(
        lake_root=settings.lake_root,
        landing_id=landing_id(checkpoint, settings.gcs_endpoint),
        reader_schema_text=load_schema_text(),
        gcs_endpoint=settings.gcs_endpoint,
        registry_url=settings.schema_registry_url,
        registry_auth=settings.schema_registry_basic_auth.get_secret_value(),
        max_event_age_days=settings.max_event_age_days,
        max_event_future_minutes=settings.max_event_future_minutes,
        dead_letter_topic=settings.topic_dead_letter,
        kafka_producer_config=tuple(sorted(settings.kafka_client_config().items())),
    )


class BatchLander:
    """The foreachBatch callback: land a micro-batch, then record its metrics row."""

    def __init__(self, settings: Settings, checkpoint: str, config: LandingConfig) -> None:
        self.settings = settings
        self.checkpoint = checkpoint
        self.config = config
        self.totals = StreamTotals()
        self._consumer: Any = None

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        started_at = datetime.now(UTC)
        summaries = batch.mapInArrow(
            partial(land_partition, config=self.config, batch_id=batch_id), SUMMARY_DDL
        ).collect()
        metrics = summary_totals([row.asDict() for row in summaries])
        planned = batch_end_offsets(self.checkpoint, batch_id, self.settings.gcs_endpoint)
        # The native source nests offsets under the topic name; ours keys by partition.
        source_offsets = planned.get(self.settings.topic_events, planned)
        finished_at = datetime.now(UTC)
        metrics |= {
            "landing_id": self.config.landing_id,
            "batch_id": batch_id,
            "started_at": started_at,
            "finished_at": finished_at,
            "duration_seconds": (finished_at - started_at).total_seconds(),
            "end_offsets": json.dumps(source_offsets),
            "lag_total": self._lag(source_offsets),
        }
        filesystem, root = lake_filesystem(self.settings.lake_root, self.settings.gcs_endpoint)
        write_parquet_atomically(
            filesystem,
            f"{root}/raw/metrics/metrics-{self.config.landing_id}-b{batch_id:010d}.parquet",
            pa.Table.from_pylist([metrics], schema=METRICS_SCHEMA),
        )
        self.totals.add(metrics)
        log.info(
            "batch %d: %d in, %d landed, %d dead-lettered, lag %d, %.1fs",
            batch_id,
            metrics["rows_in"],
            metrics["rows_landed"],
            metrics["rows_dead_lettered"],
            metrics["lag_total"],
            metrics["duration_seconds"],
        )

    def _lag(self, batch_end: dict[str, int]) -> int:
        """Records already in the topic past this batch's end (what the stream still owes)."""
        if not batch_end:
            return 0
        from confluent_kafka import Consumer

        from spark.kafka_source import client_config

        if self._consumer is None:
            options = {f"kafka.{k}": v for k, v in self.settings.kafka_client_config().items()}
            self._consumer = Consumer(client_config(options))
        topic = self.settings.topic_events
        latest = find_end_offsets(self._consumer, topic, [int(p) for p in batch_end])
        return sum(max(latest[p] - int(batch_end[p]), 0) for p in batch_end)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()


def run_stream(
    spark: SparkSession, settings: Settings, *, available_now: bool = True
) -> StreamTotals:
    checkpoint = checkpoint_location(settings)
    lander = BatchLander(settings, checkpoint, landing_config(settings, checkpoint))
    writer = (
        read_kafka(spark, settings)
        .writeStream.foreachBatch(lander)
        .option("checkpointLocation", checkpoint)
        .queryName("events_raw_to_lake")
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.trigger_seconds} seconds")
    query = writer.start()
    try:
        query.awaitTermination()
    finally:
        if query.isActive:
            query.stop()
        lander.close()
    return lander.totals
