"""Create the platform's topics idempotently."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from orangescrum.settings import Settings

log = logging.getLogger(__name__)

DAY_MS = 24 * 60 * 60 * 1000


def create_topics(settings: Settings) -> dict[str, str]:
    """Create events and dead-letter topics; returns topic -> "created" | "exists"."""
    admin = AdminClient(settings.kafka_client_config())
    retention = str(settings.topic_retention_days * DAY_MS)
    wanted = [
        NewTopic(
            name,
            num_partitions=settings.topic_partitions,
            replication_factor=-1,  # the cluster's default: 1 locally, 3 on a real cluster
            config={"retention.ms": retention},
        )
        for name in (settings.topic_events, settings.topic_dead_letter)
    ]
    outcome: dict[str, str] = {}
    for name, future in admin.create_topics(wanted, request_timeout=15).items():
        try:
            future.result()
            outcome[name] = "created"
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            outcome[name] = "exists"
        log.info("topic %s: %s", name, outcome[name])
    return outcome


def partition_count(admin: AdminClient, topic: str) -> int:
    metadata = admin.list_topics(topic, timeout=10).topics[topic]
    if metadata.error is not None:
        raise KafkaException(metadata.error)
    return len(metadata.partitions)
