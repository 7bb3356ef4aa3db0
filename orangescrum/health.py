"""The pipeline's health in one document: what `orangescrum status` shows.

Facts from every stage, each read the cheapest way that is still exact, and none needing Spark,
dbt or Airflow (the command answers in about a second):

- Kafka: each partition's offsets on the events and dead-letter topics, and for the events
  topic the stream's lag: end offset - the offset its checkpoint committed (a partition the
  checkpoint does not know yet is read from its earliest offset);
- the stream's checkpoint (orangescrum.core.checkpoint): planned and committed batches;
- the lake: files and bytes per event_date in raw/, processed/ (compacted: manifest present)
  and archive/; dead letters per reason and day (orangescrum.maintenance);
- the last micro-batches' metrics rows, the last dbt invocation (run_results.json beside the
  manifest that ORANGESCRUM_DBT_MANIFEST_PATH names), and source freshness in the lake and the
  warehouse (orangescrum.core.monitoring).

A section that cannot be read (an unreachable broker, a locked warehouse, a broken file) says so
and the others still show: a status check must not fail because part of what it checks is down.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar, TypeVar

from pyarrow import fs as pafs

from orangescrum.core.checkpoint import CheckpointProgress, checkpoint_progress
from orangescrum.core.lake import MANIFEST_NAME, LakeLayout, partition_day
from orangescrum.core.monitoring import (
    DbtRun,
    LakeFreshness,
    RunResultsError,
    WarehouseFreshness,
    dbt_run_results_path,
    lake_freshness,
    metrics_file_count,
    read_dbt_run,
    read_metrics,
    warehouse_freshness,
)
from orangescrum.core.settings import Settings, WarehouseTarget
from orangescrum.maintenance import dead_letter_report

log = logging.getLogger(__name__)

DEFAULT_BATCHES = 10
DEFAULT_KAFKA_TIMEOUT_SECONDS = 5.0
# The stream reads a partition its checkpoint does not know from here (startingOffsets).
EVENTS_ROLE = "events"
DEAD_LETTERS_ROLE = "dead letters"

# Kafka states
REACHABLE = "reachable"
UNREACHABLE = "unreachable"
NOT_CONFIGURED = "not configured"
FAILED = "unreadable"  # any section: reading it failed (the error says why)
# Stream states
NEVER_RAN = "stream never ran"
RAN = "ran"


# --- Kafka --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PartitionState:
    partition: int
    earliest: int
    end: int  # the high watermark: the offset the next message gets
    committed: int | None = None  # events topic: the next offset the stream reads
    lag: int | None = None  # events topic: messages the stream has not read yet

    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("messages",)

    @property
    def messages(self) -> int:
        return self.end - self.earliest


@dataclass(frozen=True)
class TopicState:
    name: str
    role: str  # EVENTS_ROLE or DEAD_LETTERS_ROLE
    exists: bool
    topic_id: str | None = None
    partitions: tuple[PartitionState, ...] = ()

    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("messages", "lag_total")

    @property
    def messages(self) -> int:
        return sum(p.messages for p in self.partitions)

    @property
    def lag_total(self) -> int | None:
        """The stream's lag over every partition (events topic only)."""
        lags = [p.lag for p in self.partitions]
        if self.role != EVENTS_ROLE or not self.exists or None in lags:
            return None
        return sum(lag for lag in lags if lag is not None)


@dataclass(frozen=True)
class KafkaState:
    bootstrap: str
    state: str  # REACHABLE, UNREACHABLE, NOT_CONFIGURED or FAILED
    detail: str = ""
    topics: tuple[TopicState, ...] = ()

    def topic(self, role: str) -> TopicState | None:
        return next((t for t in self.topics if t.role == role), None)


# --- stream, lake, batches, dbt, freshness ------------------------------------------------------
@dataclass(frozen=True)
class StreamState:
    checkpoint: str
    state: str  # RAN or NEVER_RAN
    committed_batch_id: int | None = None
    planned_batch_id: int | None = None
    batch_in_flight: int | None = None  # planned, not committed: running or interrupted
    committed_offsets: dict[str, dict[int, int]] = field(default_factory=dict)
    landing_id: str | None = None
    topic_id: str | None = None  # the id of the topic the checkpoint read
    error: str | None = None


@dataclass(frozen=True)
class LakeDay:
    event_date: date
    raw_files: int = 0
    raw_bytes: int = 0
    processed_files: int = 0
    processed_bytes: int = 0
    compacted: bool = False  # processed copy complete (its manifest written)
    archived_files: int = 0
    archived_bytes: int = 0


@dataclass(frozen=True)
class LakeState:
    root: str
    days: tuple[LakeDay, ...] = ()
    error: str | None = None

    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("totals",)

    @property
    def totals(self) -> dict[str, int]:
        return {
            "raw_days": sum(1 for d in self.days if d.raw_files),
            "raw_files": sum(d.raw_files for d in self.days),
            "raw_bytes": sum(d.raw_bytes for d in self.days),
            "processed_days": sum(1 for d in self.days if d.processed_files),
            "processed_files": sum(d.processed_files for d in self.days),
            "processed_bytes": sum(d.processed_bytes for d in self.days),
            "archived_days": sum(1 for d in self.days if d.archived_files),
        }


@dataclass(frozen=True)
class DeadLetterDay:
    event_date: date
    reason: str
    count: int


@dataclass(frozen=True)
class DeadLetterState:
    by_day: tuple[DeadLetterDay, ...] = ()
    error: str | None = None

    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("total", "by_reason")

    @property
    def by_reason(self) -> dict[str, int]:
        """Most frequent first, ties by name."""
        totals: dict[str, int] = {}
        for row in self.by_day:
            totals[row.reason] = totals.get(row.reason, 0) + row.count
        return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))

    @property
    def total(self) -> int:
        return sum(row.count for row in self.by_day)


@dataclass(frozen=True)
class BatchMetrics:
    landing_id: str | None
    batch_id: int | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    rows_in: int | None
    rows_landed: int | None
    rows_dead_lettered: int | None
    lag_total: int | None  # records left in the topic after the batch; None: broker was down


@dataclass(frozen=True)
class BatchesState:
    files: int = 0  # metrics files in the lake: one per micro-batch ever landed (until cleanup)
    recent: tuple[BatchMetrics, ...] = ()  # newest first
    error: str | None = None


@dataclass(frozen=True)
class DbtState:
    run_results: str
    state: str  # "never ran", "succeeded", "failed" or "unreadable"
    run: DbtRun | None = None
    error: str | None = None


@dataclass(frozen=True)
class FreshnessState:
    lake: LakeFreshness | None = None
    warehouse: WarehouseFreshness | None = None
    lake_age_seconds: float | None = None  # since the newest ingestion in the lake
    warehouse_age_seconds: float | None = None  # since the newest ingestion in the marts
    error: str | None = None


@dataclass(frozen=True)
class PipelineHealth:
    checked_at: datetime
    kafka: KafkaState
    stream: StreamState
    lake: LakeState
    dead_letters: DeadLetterState
    batches: BatchesState
    dbt: DbtState
    freshness: FreshnessState

    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("problems",)

    @property
    def problems(self) -> list[str]:
        """What someone should act on, one sentence each (empty: all is well)."""
        found: list[str] = []
        kafka = self.kafka
        if kafka.state == NOT_CONFIGURED:
            found.append(f"Kafka is not configured ({kafka.detail}).")
        elif kafka.state == UNREACHABLE:
            found.append(f"Kafka at {kafka.bootstrap} is unreachable ({kafka.detail}).")
        elif kafka.state == FAILED:
            found.append(f"Kafka at {kafka.bootstrap} could not be read: {kafka.detail}")
        for topic in kafka.topics:
            if not topic.exists:
                found.append(f"Topic {topic.name} does not exist: run `orangescrum topics create`.")
        events = kafka.topic(EVENTS_ROLE)
        stream = self.stream
        if events is not None and events.exists:
            if stream.topic_id and events.topic_id and stream.topic_id != events.topic_id:
                found.append(
                    f"Topic {events.name} was recreated (id {events.topic_id}, the checkpoint "
                    f"read {stream.topic_id}): the stream will refuse it."
                )
            for p in events.partitions:
                if p.committed is not None and p.committed > p.end:
                    found.append(
                        f"{events.name} partition {p.partition}: the checkpoint is at offset "
                        f"{p.committed}, past the topic's end {p.end} (topic recreated?)."
                    )
                elif p.committed is not None and p.committed < p.earliest:
                    found.append(
                        f"{events.name} partition {p.partition}: offsets {p.committed} to "
                        f"{p.earliest - 1} were deleted before the stream read them "
                        "(retention); the stream will stop (failOnDataLoss)."
                    )
        if stream.error:
            found.append(f"The stream checkpoint {stream.checkpoint} is unreadable: {stream.error}")
        elif stream.state == NEVER_RAN:
            found.append("The stream never ran: run `orangescrum stream --available-now`.")
        for name, section in (
            ("lake", self.lake),
            ("dead letters", self.dead_letters),
            ("micro-batch metrics", self.batches),
            ("source freshness", self.freshness),
        ):
            if section.error:
                found.append(f"The {name} could not be read: {section.error}")
        if self.dbt.state == "failed" and self.dbt.run is not None:
            found.append(
                f"The last dbt {self.dbt.run.command} had {len(self.dbt.run.failures)} node(s) "
                "that did not pass."
            )
        elif self.dbt.state == FAILED:
            found.append(f"The dbt run results are unreadable: {self.dbt.error}")
        warehouse = self.freshness.warehouse
        if warehouse is not None and warehouse.state not in {"ok", "not checked"}:
            found.append(f"Warehouse {warehouse.path}: {warehouse.state} ({warehouse.detail}).")
        return found

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types: timestamps and days as ISO 8601 text, UTC."""
        return _plain(self)


# --- gathering ----------------------------------------------------------------------------------
def gather(
    settings: Settings,
    *,
    batches: int = DEFAULT_BATCHES,
    kafka_timeout: float = DEFAULT_KAFKA_TIMEOUT_SECONDS,
    now: datetime | None = None,
) -> PipelineHealth:
    """Every section, each on its own: one that fails carries its error, the rest still show."""
    checked_at = now or datetime.now(UTC)
    stream = _guarded(lambda: stream_state(settings), _stream_failed(settings))
    filesystem, lake = settings.lake.open()
    return PipelineHealth(
        checked_at=checked_at,
        kafka=_guarded(
            lambda: kafka_state(settings, stream, kafka_timeout),
            lambda e: KafkaState(settings.kafka_bootstrap_servers, FAILED, e),
        ),
        stream=stream,
        lake=_guarded(
            lambda: lake_state(filesystem, lake, settings.lake_root),
            lambda e: LakeState(settings.lake_root, error=e),
        ),
        dead_letters=_guarded(
            lambda: dead_letter_state(settings), lambda e: DeadLetterState(error=e)
        ),
        batches=_guarded(
            lambda: batches_state(filesystem, lake, batches), lambda e: BatchesState(error=e)
        ),
        dbt=_guarded(
            lambda: dbt_state(settings),
            lambda e: DbtState(
                str(dbt_run_results_path(settings.dbt_manifest_file)), FAILED, error=e
            ),
        ),
        freshness=_guarded(
            lambda: freshness_state(filesystem, lake, settings, checked_at),
            lambda e: FreshnessState(error=e),
        ),
    )


T = TypeVar("T")


def _guarded(build: Callable[[], T], failed: Callable[[str], T]) -> T:
    try:
        return build()
    except Exception as error:  # a status check reports what it could not read, never stops
        log.warning("status: %s", error, exc_info=True, extra={"file_only": True})
        return failed(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")


def _stream_failed(settings: Settings) -> Callable[[str], StreamState]:
    return lambda error: StreamState(settings.lake.stream_checkpoint, NEVER_RAN, error=error)


def stream_state(settings: Settings) -> StreamState:
    progress: CheckpointProgress = checkpoint_progress(
        settings.lake.stream_checkpoint, settings.gcs_endpoint
    )
    return StreamState(
        checkpoint=progress.path,
        state=RAN if progress.has_run else NEVER_RAN,
        committed_batch_id=progress.committed_batch_id,
        planned_batch_id=progress.planned_batch_id,
        batch_in_flight=progress.batch_in_flight,
        committed_offsets=progress.committed_offsets,
        landing_id=progress.landing_id,
        topic_id=progress.topic_id,
    )


def kafka_state(settings: Settings, stream: StreamState, timeout: float) -> KafkaState:
    """Offsets of both topics; the events topic's against the checkpoint's committed ones."""
    bootstrap = settings.kafka_bootstrap_servers
    if not bootstrap:
        return KafkaState("", NOT_CONFIGURED, "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS is empty")
    refused = _unreachable(bootstrap, min(timeout, 2.0))
    if refused:
        return KafkaState(bootstrap, UNREACHABLE, refused)
    from confluent_kafka import KafkaError, KafkaException

    try:
        return KafkaState(bootstrap, REACHABLE, topics=_topics(settings, stream, timeout))
    except KafkaException as error:
        kafka_error = error.args[0] if error.args else None
        if not isinstance(kafka_error, KafkaError):
            return KafkaState(bootstrap, FAILED, str(error))
        lost = {KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}
        if kafka_error.code() in lost:
            return KafkaState(
                bootstrap, UNREACHABLE, f"no answer within {timeout:g}s: {kafka_error.str()}"
            )
        return KafkaState(bootstrap, FAILED, kafka_error.str())


def _unreachable(bootstrap: str, timeout: float) -> str:
    """Why no bootstrap address accepts a TCP connection; empty when one does."""
    errors = []
    for address in (a.strip() for a in bootstrap.split(",") if a.strip()):
        host, _, port = address.rpartition("://")[2].rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return ""
        except (OSError, ValueError) as error:
            errors.append(f"{address}: {getattr(error, 'strerror', None) or error}")
    return "; ".join(errors)


def _topics(settings: Settings, stream: StreamState, timeout: float) -> tuple[TopicState, ...]:
    from confluent_kafka import Consumer, KafkaException, TopicCollection, TopicPartition
    from confluent_kafka.admin import AdminClient

    config = settings.kafka_client_config() | {"log_level": 0}
    admin = AdminClient(config)
    metadata = admin.list_topics(timeout=timeout).topics
    consumer = Consumer(config | {"group.id": "orangescrum-status", "enable.auto.commit": False})
    # An unreadable checkpoint: the offsets show, the lag is unknown.
    committed = None if stream.error else stream.committed_offsets.get(settings.topic_events, {})
    states = []
    try:
        for name, role in (
            (settings.topic_events, EVENTS_ROLE),
            (settings.topic_dead_letter, DEAD_LETTERS_ROLE),
        ):
            topic = metadata.get(name)
            if topic is None or topic.error is not None:
                states.append(TopicState(name, role, exists=False))
                continue
            partitions = []
            for number in sorted(topic.partitions):
                earliest, end = consumer.get_watermark_offsets(
                    TopicPartition(name, number), timeout=timeout
                )
                if role == EVENTS_ROLE and committed is not None:
                    start = committed.get(number)
                    read_from = start if start is not None else earliest
                    partitions.append(
                        PartitionState(number, earliest, end, start, max(end - read_from, 0))
                    )
                else:
                    partitions.append(PartitionState(number, earliest, end))
            try:
                described = admin.describe_topics(TopicCollection([name]), request_timeout=timeout)[
                    name
                ].result()
                topic_id = str(described.topic_id)
            except KafkaException:
                topic_id = None  # e.g. no Describe permission: the offsets still show
            states.append(TopicState(name, role, True, topic_id, tuple(partitions)))
    finally:
        consumer.close()
    return tuple(states)


def lake_state(filesystem: pafs.FileSystem, lake: LakeLayout, root: str) -> LakeState:
    """Files and bytes per day and zone; `lake` is rooted inside `filesystem`."""
    zones = {
        "raw": _zone_days(filesystem, lake.raw_events),
        "processed": _zone_days(filesystem, lake.processed_events),
        "archived": _zone_days(filesystem, lake.archived_raw_events),
    }
    compacted = _manifest_days(filesystem, lake.processed_events)
    days = sorted({day for zone in zones.values() for day in zone})
    return LakeState(
        root,
        tuple(
            LakeDay(
                day,
                *zones["raw"].get(day, (0, 0)),
                *zones["processed"].get(day, (0, 0)),
                day in compacted,
                *zones["archived"].get(day, (0, 0)),
            )
            for day in days
        ),
    )


def _zone_files(filesystem: pafs.FileSystem, folder: str) -> list[pafs.FileInfo]:
    selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
    return [info for info in filesystem.get_file_info(selector) if info.type == pafs.FileType.File]


def _day_of(info: pafs.FileInfo) -> date | None:
    return partition_day(info.path.rpartition("/")[0].rpartition("/")[2])


def _zone_days(filesystem: pafs.FileSystem, folder: str) -> dict[date, tuple[int, int]]:
    """(files, bytes) of the visible Parquet files of each event_date= folder."""
    days: dict[date, tuple[int, int]] = {}
    for info in _zone_files(filesystem, folder):
        day = _day_of(info)
        if (
            day is None
            or not info.base_name.endswith(".parquet")
            or info.base_name.startswith((".", "_"))
        ):
            continue
        files, size = days.get(day, (0, 0))
        days[day] = (files + 1, size + (info.size or 0))
    return days


def _manifest_days(filesystem: pafs.FileSystem, folder: str) -> set[date]:
    return {
        day
        for info in _zone_files(filesystem, folder)
        if info.base_name == MANIFEST_NAME and (day := _day_of(info)) is not None
    }


def dead_letter_state(settings: Settings) -> DeadLetterState:
    return DeadLetterState(
        tuple(
            DeadLetterDay(row.event_date, row.reason, row.count)
            for row in dead_letter_report(settings)
        )
    )


def batches_state(filesystem: pafs.FileSystem, lake: LakeLayout, count: int) -> BatchesState:
    rows = read_metrics(filesystem, lake, newest_files=count).to_pylist()
    names = [f.name for f in fields(BatchMetrics)]
    recent = [BatchMetrics(**{name: row[name] for name in names}) for row in reversed(rows)]
    return BatchesState(metrics_file_count(filesystem, lake), tuple(recent[:count]))


def dbt_state(settings: Settings) -> DbtState:
    path = dbt_run_results_path(settings.dbt_manifest_file)
    try:
        run = read_dbt_run(path)
    except RunResultsError as error:
        return DbtState(str(path), FAILED, error=str(error))
    if run is None:
        return DbtState(str(path), "never ran")
    return DbtState(str(path), "succeeded" if run.succeeded else "failed", run)


def freshness_state(
    filesystem: pafs.FileSystem, lake: LakeLayout, settings: Settings, now: datetime
) -> FreshnessState:
    in_lake = lake_freshness(filesystem, lake)
    if settings.dbt_target is WarehouseTarget.PROD:
        warehouse = WarehouseFreshness(
            f"bigquery:{settings.gcp_project}.{settings.bigquery_dataset}",
            "not checked",
            "the prod target is BigQuery; only the local DuckDB warehouse is read",
        )
    else:
        warehouse = warehouse_freshness(settings.duckdb_file)
    return FreshnessState(
        in_lake,
        warehouse,
        _age(now, in_lake.newest_ingested_at),
        _age(now, warehouse.newest_ingested_at),
    )


def _age(now: datetime, moment: datetime | None) -> float | None:
    return None if moment is None else round((now - moment).total_seconds(), 3)


def _plain(value: Any) -> Any:
    """Dataclasses (with their JSON_PROPERTIES), dates and containers as JSON types."""
    if is_dataclass(value) and not isinstance(value, type):
        document = {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
        for name in getattr(value, "JSON_PROPERTIES", ()):
            document[name] = _plain(getattr(value, name))
        return document
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
