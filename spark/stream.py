"""The streaming job: Kafka `events-raw` -> decoded events and dead letters in the lake.

`run_stream(settings, available_now=True)` drains what is in the topic now and stops (the
Airflow micro-run); without it the query runs on a processing-time trigger until stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
from py4j.protocol import Py4JError
from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

from orangescrum.core.checkpoint import (
    LANDING_ID_FILE,
    TOPIC_ID_FILE,
    batch_end_offsets,
    read_checkpoint_file,
)
from orangescrum.core.contract.registry import registry_for
from orangescrum.core.contract.schema import SUBJECT, load_schema_text
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.kafka_security import java_client_sentence
from orangescrum.core.lake import filesystem_for, write_parquet_atomically
from orangescrum.core.monitoring import METRICS_SCHEMA
from orangescrum.core.settings import Settings
from orangescrum.core.topics import topic_id
from spark.decode import DecodeRules, decode_kafka_records
from spark.gcs_landing import land_with_spark, lands_through_spark
from spark.landing import SUMMARY_DDL, LandingConfig, land_partition, publish, summary_totals

log = logging.getLogger(__name__)

LOCK_FILE = "orangescrum_stream.lock"
# The change stream's {topic: id} (TopicGuard); the event stream keeps TOPIC_ID_FILE.
TOPIC_IDS_FILE = "orangescrum_topic_ids.json"


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


def _write_small_file(checkpoint: str, name: str, text: str, gcs_endpoint: str) -> None:
    filesystem, path = filesystem_for(checkpoint, gcs_endpoint)
    filesystem.create_dir(path, recursive=True)
    with filesystem.open_output_stream(f"{path}/{name}") as stream:
        stream.write(text.encode())


def landing_id(checkpoint: str, gcs_endpoint: str = "") -> str:
    """A short id fixed for the life of a checkpoint.

    Batch ids restart at 0 with a new checkpoint; putting this id in file names keeps a new
    query from overwriting the files of an earlier one.
    """
    existing = read_checkpoint_file(checkpoint, LANDING_ID_FILE, gcs_endpoint)
    if existing:
        return existing
    new_id = uuid.uuid4().hex[:8]
    _write_small_file(checkpoint, LANDING_ID_FILE, new_id, gcs_endpoint)
    return new_id


class TopicGuard:
    """Refuses to read a topic other than the one the checkpoint's offsets belong to.

    A topic deleted and recreated (or a broker started empty) starts its offsets again at 0:
    a checkpoint from the old topic would silently skip the new one's first records, whatever
    the offsets. Kafka gives every topic a unique id; the checkpoint keeps the one it read.

    The event stream reads one topic and keeps its id alone in TOPIC_ID_FILE (which
    `orangescrum status` reads). The change stream subscribes to its table topics by pattern
    and passes the topics each batch reads; their ids are kept as {topic: id} in
    TOPIC_IDS_FILE, a topic added the first time it is read.
    """

    def __init__(self, settings: Settings, checkpoint: str) -> None:
        self.settings = settings
        self.checkpoint = checkpoint

    def check(self, topics: Collection[str] | None = None) -> None:
        """`topics`: None for the events topic; else the topics a batch reads."""
        several = topics is not None
        names = sorted(topics) if topics is not None else [self.settings.topic_events]
        current = self._topic_ids(names)
        remembered = self._remembered(several)
        for name, now in current.items():
            before = remembered.get(name)
            if before is not None and before != now:
                raise OrangeScrumError(
                    f"Topic {name} was recreated (its id is {now}; the checkpoint "
                    f"{self.checkpoint} read {before}), so the checkpoint's offsets do not "
                    "apply to it: move that checkpoint folder aside to read the new topic from "
                    "its start, or point the stream at the original cluster."
                )
        if current.keys() - remembered.keys():
            self._remember(remembered | current, several)

    def _topic_ids(self, names: list[str]) -> dict[str, str]:
        """One describe request for all of them (a dozen table topics every batch add up);
        when it fails, topic_id asks for each and says why in a sentence."""
        if len(names) > 1:
            from confluent_kafka import KafkaException, TopicCollection
            from confluent_kafka.admin import AdminClient

            admin = AdminClient(self.settings.kafka_client_config())
            requests = admin.describe_topics(TopicCollection(names), request_timeout=10)
            with contextlib.suppress(KafkaException):
                return {name: str(request.result().topic_id) for name, request in requests.items()}
        return {name: topic_id(self.settings, name) for name in names}

    def _remembered(self, several: bool) -> dict[str, str]:
        name = TOPIC_IDS_FILE if several else TOPIC_ID_FILE
        text = read_checkpoint_file(self.checkpoint, name, self.settings.gcs_endpoint)
        if text is None:
            return {}
        return json.loads(text) if several else {self.settings.topic_events: text}

    def _remember(self, ids: dict[str, str], several: bool) -> None:
        name, text = (
            (TOPIC_IDS_FILE, json.dumps(ids, sort_keys=True))
            if several
            else (TOPIC_ID_FILE, ids[self.settings.topic_events])
        )
        _write_small_file(self.checkpoint, name, text, self.settings.gcs_endpoint)


KAFKA_COLUMNS = ("key", "value", "topic", "partition", "offset", "timestamp")
# How often the source retries a broker it cannot reach (outage tolerance / interval).
RETRY_INTERVAL_MS = 1000


def _jaas_config(settings: Settings) -> str:
    """librdkafka's sasl.username/password as the Java client's JAAS line."""
    module = (
        "org.apache.kafka.common.security.scram.ScramLoginModule"
        if settings.kafka_sasl_mechanism.upper().startswith("SCRAM")
        else "org.apache.kafka.common.security.plain.PlainLoginModule"
    )
    return (
        f'{module} required username="{settings.kafka_sasl_username}" '
        f'password="{settings.kafka_sasl_password.get_secret_value()}";'
    )


def kafka_source_options(settings: Settings) -> dict[str, str]:
    """Options of Spark's `kafka` source: the same cluster and security as every client."""
    options = {
        "kafka.bootstrap.servers": settings.kafka_bootstrap_servers,
        "kafka.security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        options["kafka.sasl.mechanism"] = settings.kafka_sasl_mechanism
        options["kafka.sasl.jaas.config"] = _jaas_config(settings)
    if settings.kafka_ssl_ca_location:
        # The Java client reads the same PEM bundle librdkafka's ssl.ca.location names.
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = settings.kafka_ssl_ca_location
    retries = max(1, settings.kafka_outage_tolerance_seconds * 1000 // RETRY_INTERVAL_MS)
    return options | {
        "subscribe": settings.topic_events,
        "startingOffsets": "earliest",
        "maxOffsetsPerTrigger": str(settings.max_events_per_batch),
        # Offsets that vanished (retention, a recreated topic) stop the stream, never skip.
        "failOnDataLoss": "true",
        "fetchOffset.numRetries": str(retries),
        "fetchOffset.retryIntervalMs": str(RETRY_INTERVAL_MS),
    }


def read_kafka(spark: SparkSession, settings: Settings) -> DataFrame:
    """Kafka records as (key, value, topic, partition, offset, timestamp)."""
    try:
        frame = spark.readStream.format("kafka").options(**kafka_source_options(settings)).load()
    except Exception as error:
        if "KAFKA_DATA_SOURCE_NOT_ENABLED" in str(error) or "Failed to find data source" in str(
            error
        ):
            raise OrangeScrumError(
                "Spark's Kafka connector is not on the classpath: run `orangescrum jars fetch` "
                "(on a cluster: spark-submit --packages "
                "org.apache.spark:spark-sql-kafka-0-10_2.13:<spark version>)."
            ) from None
        raise
    return frame.select(*KAFKA_COLUMNS)


def landing_config(settings: Settings, checkpoint: str) -> LandingConfig:
    return LandingConfig(
        lake=settings.lake,
        landing_id=landing_id(checkpoint, settings.gcs_endpoint),
        dead_letter_topic=settings.topic_dead_letter,
        kafka_producer_config=tuple(sorted(settings.kafka_client_config().items())),
        dead_letter_timeout_seconds=settings.kafka_outage_tolerance_seconds,
    )


def decode_rules(settings: Settings) -> DecodeRules:
    """Writer schemas as the registry lists them now, and the contract's time window."""
    registry = registry_for(
        settings.schema_registry_url, settings.schema_registry_basic_auth.get_secret_value()
    )
    return DecodeRules(
        writer_schemas=registry.subject_schemas(SUBJECT),
        reader_schema_text=load_schema_text(),
        max_event_age_days=settings.max_event_age_days,
        max_event_future_minutes=settings.max_event_future_minutes,
    )


class LagProbe:
    """Records already in the topics past a batch's end offsets (what the stream still owes)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._consumer: Any = None

    def lag(self, batch_end: dict[str, dict[str, int]]) -> int | None:
        """`batch_end`: {topic: {partition (as text): end offset}}, as Spark plans a batch."""
        if not any(batch_end.values()):
            return 0
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        if self._consumer is None:
            self._consumer = Consumer(
                self.settings.kafka_client_config() | {"group.id": "orangescrum-lag-probe"}
            )
        lag = 0
        try:
            for topic, partitions in batch_end.items():
                for partition, end in partitions.items():
                    _, high = self._consumer.get_watermark_offsets(
                        TopicPartition(topic, int(partition)), timeout=10
                    )
                    lag += max(high - int(end), 0)
        except KafkaException as error:
            # A metric, not a reason to stop: the broker may be restarting right now.
            log.warning("lag unknown for this batch (%s)", error.args[0].str())
            return None
        return lag

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()


def write_batch_metrics(
    settings: Settings,
    landing_id: str,
    batch_id: int,
    counts: dict[str, Any],
    started_at: datetime,
    finished_at: datetime,
    end_offsets: dict[str, Any],
    lag_total: int | None,
) -> dict[str, Any]:
    """A micro-batch's metrics row (METRICS_SCHEMA) in raw/metrics; returns it.

    The file is named by landing id and batch id: a replayed batch rewrites its own row, and
    the event and change streams (each its own landing id) never write each other's.
    """
    metrics = counts | {
        "landing_id": landing_id,
        "batch_id": batch_id,
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_seconds": (finished_at - started_at).total_seconds(),
        "end_offsets": json.dumps(end_offsets),
        "lag_total": lag_total,
    }
    filesystem, lake = settings.lake.open()
    write_parquet_atomically(
        filesystem,
        lake.metrics_file(landing_id, batch_id),
        pa.Table.from_pylist([metrics], schema=METRICS_SCHEMA),
    )
    return metrics


class SentenceKeepingLander:
    """A foreachBatch callback that keeps the sentence of the OrangeScrumError it raised.

    Spark wraps what foreachBatch raises in a StreamingQueryException whose text is a stack
    trace; the stream's runner re-raises `failure` instead.
    """

    failure: OrangeScrumError | None = None

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        try:
            self._land(batch, batch_id)
        except OrangeScrumError as error:
            self.failure = error
            raise

    def _land(self, batch: DataFrame, batch_id: int) -> None:
        raise NotImplementedError


class BatchLander(SentenceKeepingLander):
    """The foreachBatch callback: decode and land a micro-batch, then record its metrics row."""

    def __init__(self, settings: Settings, checkpoint: str, config: LandingConfig) -> None:
        self.settings = settings
        self.checkpoint = checkpoint
        self.config = config
        self.guard = TopicGuard(settings, checkpoint)
        self.probe = LagProbe(settings)
        self.totals = StreamTotals()

    def _land(self, batch: DataFrame, batch_id: int) -> None:
        started_at = datetime.now(UTC)
        # Before anything lands: these offsets must belong to the topic the checkpoint read.
        self.guard.check()
        # Per batch, so a schema version registered while the stream runs is decoded at once.
        decoded = decode_kafka_records(batch, decode_rules(self.settings))
        if lands_through_spark(self.config.lake):
            # gs://: Spark's own Parquet writer, so Google's gcs-connector does the I/O.
            summaries = land_with_spark(decoded, self.config, batch_id)
        else:
            summaries = [
                row.asDict()
                for row in decoded.mapInArrow(
                    partial(land_partition, config=self.config, batch_id=batch_id), SUMMARY_DDL
                ).collect()
            ]
            filesystem, _ = self.settings.lake.open()
            publish(filesystem, sorted({path for row in summaries for path in row.pop("files")}))
        planned = batch_end_offsets(self.checkpoint, batch_id, self.settings.gcs_endpoint)
        source_offsets = planned.get(self.settings.topic_events, {})
        finished_at = datetime.now(UTC)
        metrics = write_batch_metrics(
            self.settings,
            self.config.landing_id,
            batch_id,
            summary_totals(summaries),
            started_at,
            finished_at,
            source_offsets,
            self._lag(source_offsets),
        )
        self.totals.add(metrics)
        log.info(
            "batch %d: %d in, %d landed, %d dead-lettered, lag %s, %.1fs",
            batch_id,
            metrics["rows_in"],
            metrics["rows_landed"],
            metrics["rows_dead_lettered"],
            metrics["lag_total"],
            metrics["duration_seconds"],
        )

    def _lag(self, batch_end: dict[str, int]) -> int | None:
        """Records already in the events topic past this batch's end."""
        return self.probe.lag({self.settings.topic_events: batch_end})

    def close(self) -> None:
        self.probe.close()


@contextmanager
def checkpoint_lock(checkpoint: str) -> Iterator[None]:
    """One stream per checkpoint: Spark does not stop a second process from writing the same
    offset log, which would land batches twice. Local checkpoints only (flock)."""
    if "://" in checkpoint:
        yield
        return
    Path(checkpoint).mkdir(parents=True, exist_ok=True)
    with (Path(checkpoint) / LOCK_FILE).open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise OrangeScrumError(
                f"Another stream ({holder}) is running on the checkpoint {checkpoint}; stop it "
                "first, or give this one its own ORANGESCRUM_CHECKPOINT_DIR."
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def with_trigger(
    writer: DataStreamWriter, settings: Settings, *, available_now: bool
) -> DataStreamWriter:
    """AvailableNow drains what is there and stops; otherwise a micro-batch every
    ORANGESCRUM_TRIGGER_SECONDS (fractions allowed, so in milliseconds)."""
    if available_now:
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=f"{round(settings.trigger_seconds * 1000)} milliseconds")


def run_stream(
    spark: SparkSession, settings: Settings, *, available_now: bool = True
) -> StreamTotals:
    checkpoint = settings.lake.stream_checkpoint
    with checkpoint_lock(checkpoint):
        return _run_query(spark, settings, checkpoint, available_now=available_now)


def _run_query(
    spark: SparkSession, settings: Settings, checkpoint: str, *, available_now: bool
) -> StreamTotals:
    lander = BatchLander(settings, checkpoint, landing_config(settings, checkpoint))
    lander.guard.check()  # refuse a recreated topic before Spark plans a single batch
    writer = (
        read_kafka(spark, settings)
        .writeStream.foreachBatch(lander)
        .option("checkpointLocation", checkpoint)
        .queryName("events_raw_to_lake")
    )
    query = with_trigger(writer, settings, available_now=available_now).start()
    try:
        await_query(
            query,
            lander,
            settings,
            stopped="The stream stopped",
            rerun=f"the checkpoint {checkpoint}, so rerunning `orangescrum stream` once the "
            "cause is fixed neither skips nor repeats a record",
            read_topic=settings.topic_events,
        )
    finally:
        lander.close()
    return lander.totals


def await_query(
    query: StreamingQuery,
    lander: SentenceKeepingLander,
    settings: Settings,
    *,
    stopped: str,
    rerun: str,
    read_topic: str | None = None,
) -> None:
    """Wait for a streaming query to end; a failure becomes one OrangeScrumError sentence (the
    lander's own, a refusal by the cluster when `read_topic` is given, else `stopped`, the root
    cause and `rerun`); the query is stopped however it ends."""
    try:
        query.awaitTermination()
    except StreamingQueryException as error:
        if lander.failure is not None:
            raise lander.failure from None
        log.exception(stopped.lower(), extra={"file_only": True})
        if read_topic is not None:
            # A user the cluster refuses (its ACLs, its login, its CA) is said as such:
            # rerunning cannot help until the settings or the ACLs change.
            refused = java_client_sentence(
                settings,
                getattr(error, "desc", None) or str(error),
                topic=read_topic,
                action="read",
            )
            if refused is not None:
                raise OrangeScrumError(refused) from None
        raise OrangeScrumError(
            f"{stopped}: {_first_line(error)}. Batches that landed are recorded in {rerun} "
            f"(details: {settings.log_file})."
        ) from None
    finally:
        # After Ctrl-C/SIGTERM the py4j connection the interrupted call used is broken, and
        # stopping may fail too: the checkpoint keeps the query restartable either way.
        with contextlib.suppress(Py4JError):
            if query.isActive:
                query.stop()


def _first_line(error: StreamingQueryException) -> str:
    """The root cause's message, without Spark's and py4j's stack frames."""
    text = getattr(error, "desc", None) or str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    ours = [line.partition("orangescrum: ")[2] for line in lines if "orangescrum: " in line]
    if ours:  # a sentence this project wrote for the person at the terminal
        return ours[0].rstrip(".")
    causes = [line for line in lines if "Exception:" in line or "Error:" in line]
    chosen = (causes[-1] if causes else lines[0] if lines else type(error).__name__)[:300]
    return chosen.rstrip(".")
