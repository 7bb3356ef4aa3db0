"""Feeding Kafka: simulated history or live traffic plus deliberate faults, with a delivery report.

Shared by the CLI, the demo and the Airflow ingest DAG."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ingestion.faults import BadMessage, make_bad_messages
from ingestion.producer import DeliveryReport, EventProducer
from ingestion.serde import EventSerializer
from ingestion.simulator import Delivery, SimulationConfig, iter_live, simulate_history
from orangescrum.core.contract.registry import registry_for
from orangescrum.core.contract.schema import SUBJECT, load_schema_text
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.kafka_security import kafka_error_sentence
from orangescrum.core.settings import Settings

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
    # A live feed runs for hours: keeping every id would grow by ~150 bytes an event (a soak
    # measured it), so it only counts; a history keeps them for the reconciliation.
    track_event_ids: bool = True

    @property
    def unique_events(self) -> int:
        if self.track_event_ids:
            return len(self.event_ids)
        return self.events - self.duplicates

    @property
    def messages(self) -> int:
        return self.events + sum(self.bad_by_kind.values())


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
    report = ProduceReport(track_event_ids=False)
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
    if report.track_event_ids:
        report.event_ids.add(item.record["event_id"])


def _raise_on_failed_deliveries(settings: Settings, report: ProduceReport) -> None:
    first = report.delivery.first_error
    # A user without WRITE on the topic: re-running cannot help, the ACL or the user must change.
    if first is not None and (
        refused := kafka_error_sentence(
            settings, first, resource=settings.topic_events, action="write to"
        )
    ):
        raise OrangeScrumError(refused)
    if report.delivery.failed:
        raise OrangeScrumError(
            f"{report.delivery.failed} of {report.messages} messages were not acknowledged by "
            f"{settings.kafka_bootstrap_servers} ({report.delivery.errors}); re-run the command: "
            "the simulation is deterministic and the warehouse deduplicates by event_id."
        )
