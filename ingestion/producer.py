"""Idempotent Avro producer: every event keyed by company_id, delivery accounted for."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from ingestion.serde import EventSerializer
from orangescrum.core.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    # The first failure as librdkafka reported it: its code tells a refused ACL from the rest.
    first_error: KafkaError | None = None

    def on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is None:
            self.delivered += 1
            return
        self.failed += 1
        self.errors[error.str()] = self.errors.get(error.str(), 0) + 1
        if self.first_error is None:
            self.first_error = error


def producer_config(settings: Settings) -> dict[str, Any]:
    return settings.kafka_client_config() | {
        # Idempotence makes librdkafka's retries safe: the broker drops resent batches.
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 20,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
    }


class EventProducer:
    def __init__(self, settings: Settings, serializer: EventSerializer, topic: str) -> None:
        self._producer = Producer(producer_config(settings))
        self._serializer = serializer
        self._topic = topic
        self.report = DeliveryReport()

    def send(self, record: dict[str, Any]) -> None:
        self.send_raw(str(record["company_id"]).encode(), self._serializer.serialize(record))

    def send_raw(self, key: bytes | None, value: bytes | None) -> None:
        """Produce bytes as they are (also how deliberately bad messages get in)."""
        while True:
            try:
                self._producer.produce(
                    self._topic, key=key, value=value, on_delivery=self.report.on_delivery
                )
                break
            except BufferError:
                # Local queue full: let deliveries drain, then retry the same message.
                self._producer.poll(0.5)
        self._producer.poll(0)

    def flush(self, timeout_seconds: float = 60) -> DeliveryReport:
        remaining = self._producer.flush(timeout_seconds)
        if remaining:
            log.error("%d messages still undelivered after %.0fs", remaining, timeout_seconds)
            self.report.failed += remaining
        return self.report
