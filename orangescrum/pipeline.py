"""The pipeline's stages as plain functions, shared by the CLI, the demo and the Airflow DAGs."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.fs as pafs

from ingestion.faults import BadMessage, make_bad_messages
from ingestion.producer import DeliveryReport, EventProducer
from ingestion.registry import registry_for
from ingestion.schema import SUBJECT, load_schema_text
from ingestion.serde import EventSerializer
from ingestion.simulator import Delivery, SimulationConfig, iter_live, simulate_history
from orangescrum.broker import wait_until_ready
from orangescrum.dbt import run_dbt, status_counts
from orangescrum.errors import OrangeScrumError
from orangescrum.lake import lake_filesystem, list_files
from orangescrum.settings import Settings

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass
class ProduceReport:
    """What went to Kafka: valid events (with redeliveries) and deliberately bad messages."""

    events: int = 0
    duplicates: int = 0
    late: int = 0
    bad_by_kind: Counter[str] = field(default_factory=Counter)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    event_ids: set[str] = field(default_factory=set)

    @property
    def unique_events(self) -> int:
        return len(self.event_ids)

    @property
    def messages(self) -> int:
        return self.events + sum(self.bad_by_kind.values())


def require_broker(settings: Settings) -> None:
    if not settings.kafka_bootstrap_servers:
        raise OrangeScrumError(
            "No Kafka broker is configured: start one with `orangescrum broker start` and set "
            "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS to the address it prints, or run "
            "`orangescrum demo`, which brings its own."
        )
    wait_until_ready(settings.kafka_bootstrap_servers, timeout_seconds=15)


def event_serializer(settings: Settings) -> EventSerializer:
    registry = registry_for(
        settings.schema_registry_url, settings.schema_registry_basic_auth.get_secret_value()
    )
    return EventSerializer.registered(registry, SUBJECT, load_schema_text())


def _interleave(
    deliveries: Iterable[Delivery], bad: list[BadMessage], every: int
) -> Iterable[Delivery | BadMessage]:
    """Spread bad messages through the stream (one every `every` events), rest at the end."""
    pending = list(reversed(bad))
    for position, delivery in enumerate(deliveries, start=1):
        yield delivery
        if pending and position % every == 0:
            yield pending.pop()
    yield from reversed(pending)


def produce_history(
    settings: Settings,
    config: SimulationConfig,
    bad_counts: dict[str, int] | None = None,
    progress: Progress | None = None,
) -> ProduceReport:
    """Simulate an OrangeScrum history and produce it, bad messages mixed in, then flush."""
    serializer = event_serializer(settings)
    producer = EventProducer(settings, serializer, settings.topic_events)
    report = ProduceReport()
    deliveries = simulate_history(config)
    first = next(deliveries, None)
    if first is None:
        raise OrangeScrumError(f"the simulation produced no events for {config}")
    bad = make_bad_messages(bad_counts or {}, first.record, serializer, config.seed)

    def all_deliveries() -> Iterable[Delivery]:
        yield first
        yield from deliveries

    try:
        for item in _interleave(all_deliveries(), bad, every=97):
            _send(producer, item, report)
            if progress is not None:
                progress(1)
    finally:
        # Ctrl-C / SIGTERM included: whatever was handed to the producer gets delivered.
        report.delivery = producer.flush()
    _raise_on_failed_deliveries(settings, report)
    return report


def produce_live(
    settings: Settings,
    config: SimulationConfig,
    rate_per_second: float,
    duration_seconds: float | None = None,
    progress: Progress | None = None,
) -> ProduceReport:
    """Produce fresh events at a steady rate until the duration ends or Ctrl-C."""
    producer = EventProducer(settings, event_serializer(settings), settings.topic_events)
    report = ProduceReport()
    interval = 1.0 / rate_per_second
    started = time.monotonic()
    next_send = started
    try:
        for delivery in iter_live(config, rate_per_second):
            now = time.monotonic()
            if duration_seconds is not None and now - started >= duration_seconds:
                break
            if next_send > now:
                time.sleep(next_send - now)
            next_send += interval
            _send(producer, delivery, report)
            if progress is not None:
                progress(1)
    except KeyboardInterrupt:
        log.info("interrupted: flushing what was produced")
    finally:
        report.delivery = producer.flush()
    _raise_on_failed_deliveries(settings, report)
    return report


def _send(producer: EventProducer, item: Delivery | BadMessage, report: ProduceReport) -> None:
    if isinstance(item, BadMessage):
        producer.send_raw(item.key, item.value)
        report.bad_by_kind[item.kind] += 1
        return
    producer.send(item.record)
    report.events += 1
    report.duplicates += item.is_duplicate
    report.late += item.is_late and not item.is_duplicate
    report.event_ids.add(item.record["event_id"])


def _raise_on_failed_deliveries(settings: Settings, report: ProduceReport) -> None:
    if report.delivery.failed:
        raise OrangeScrumError(
            f"{report.delivery.failed} of {report.messages} messages were not acknowledged by "
            f"{settings.kafka_bootstrap_servers} ({report.delivery.errors}); re-run the command: "
            "the simulation is deterministic and the warehouse deduplicates by event_id."
        )


def load_raw_events(
    settings: Settings, target_path: Path | None = None, *, quiet: bool = False
) -> None:
    """(Re)create raw_events, raw_dead_letters and raw_pipeline_metrics over the lake.

    Tells the operation whether processed/events holds files: BigQuery cannot list GCS from
    SQL, and an external table over a folder without files fails every query.
    """
    require_lake_folder(settings)
    read_processed = processed_zone_has_files(settings)
    run_dbt(
        settings,
        [
            "run-operation",
            "create_raw_events",
            "--args",
            f"{{read_processed: {str(read_processed).lower()}}}",
        ],
        target_path=target_path,
        quiet=quiet,
    )


def require_lake_folder(settings: Settings) -> None:
    """A lake root that is a file would read as an empty lake: empty tables, no error."""
    filesystem, root = lake_filesystem(settings.lake_root, settings.gcs_endpoint)
    if filesystem.get_file_info(root).type == pafs.FileType.File:
        raise OrangeScrumError(
            f"The lake root {settings.lake_root} is not a folder: point ORANGESCRUM_LAKE_URI "
            "(or ORANGESCRUM_DATA_DIR) at the lake folder."
        )


def processed_zone_has_files(settings: Settings) -> bool:
    filesystem, root = lake_filesystem(settings.lake_root, settings.gcs_endpoint)
    return bool(list_files(filesystem, f"{root}/processed/events"))


def build_marts(
    settings: Settings, target_path: Path | None = None, *, quiet: bool = False
) -> dict[str, int]:
    """`dbt build` (models, data tests, unit tests); returns node counts by status."""
    return status_counts(run_dbt(settings, ["build"], target_path=target_path, quiet=quiet))


@dataclass(frozen=True)
class WarehouseCounts:
    raw_rows: int
    raw_distinct_events: int
    dead_letters: int
    fact_activities: int
    fact_distinct_events: int


def warehouse_counts(settings: Settings) -> WarehouseCounts:
    """Row counts of the local DuckDB warehouse, for the demo summary and the tests."""
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as connection:

        def scalar(sql: str) -> int:
            return int(connection.execute(sql).fetchone()[0])

        fact_schema = model_schema(connection, "fact_activities")
        return WarehouseCounts(
            raw_rows=scalar("select count(*) from orangescrum_dw.raw_events"),
            raw_distinct_events=scalar(
                "select count(distinct event_id) from orangescrum_dw.raw_events"
            ),
            dead_letters=scalar("select count(*) from orangescrum_dw.raw_dead_letters"),
            fact_activities=scalar(f"select count(*) from {fact_schema}.fact_activities"),
            fact_distinct_events=scalar(
                f"select count(distinct event_id) from {fact_schema}.fact_activities"
            ),
        )


def model_schema(connection: duckdb.DuckDBPyConnection, table: str) -> str:
    """Schema holding a dbt model (dbt names it after the target and the model's folder)."""
    rows = connection.execute(
        "select table_schema from information_schema.tables where table_name = ?", [table]
    ).fetchall()
    if len(rows) != 1:
        raise OrangeScrumError(
            f"expected one table {table!r} in {connection}, found {len(rows)}: run `dbt build`"
        )
    return rows[0][0]
