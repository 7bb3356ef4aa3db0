"""Create the platform's topics idempotently.

Every admin request here runs with a `ClientErrors` error callback: against a secured cluster
a refused login or an untrusted certificate ends the request with the sentence naming the
setting to fix, instead of a timeout; a refused ACL names the topic and the user.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.kafka_security import ClientErrors, result_of
from orangescrum.core.settings import Settings

log = logging.getLogger(__name__)

DAY_MS = 24 * 60 * 60 * 1000


def create_topics(settings: Settings) -> dict[str, str]:
    """Create events and dead-letter topics; returns topic -> "created" | "exists"."""
    errors = ClientErrors(settings)
    admin = AdminClient(errors.config())
    retention = str(settings.topic_retention_days * DAY_MS)
    wanted = [
        NewTopic(
            name,
            num_partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            config={"retention.ms": retention},
        )
        for name in (settings.topic_events, settings.topic_dead_letter)
    ]
    outcome: dict[str, str] = {}
    for name, future in admin.create_topics(wanted, request_timeout=15).items():
        try:
            result_of(admin, future, errors, resource=name, action="create")
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


def delete_topics(settings: Settings, names: list[str]) -> None:
    """Delete topics that exist (the demo's fresh start); missing ones are not an error."""
    errors = ClientErrors(settings)
    admin = AdminClient(errors.config())
    try:
        existing = set(admin.list_topics(timeout=15).topics)
    except KafkaException:
        admin.poll(0)  # serves error_cb: a security failure is said as such
        errors.raise_if_heard()
        raise
    doomed = [name for name in names if name in existing]
    if not doomed:
        return
    for name, future in admin.delete_topics(doomed, request_timeout=30).items():
        result_of(admin, future, errors, resource=name, action="delete")
    # Deletion is asynchronous on the brokers: wait until a new topic of the name can exist.
    for _ in range(100):
        if not set(doomed) & set(admin.list_topics(timeout=15).topics):
            return
        time.sleep(0.1)


def topic_id(settings: Settings, topic: str) -> str:
    """Kafka's unique id of a topic: a recreated topic of the same name gets a new one."""
    errors = ClientErrors(settings)
    admin = AdminClient(errors.config())
    timeout = settings.kafka_outage_tolerance_seconds
    try:
        # A broker that is down is waited for up to the outage tolerance; a security failure
        # is not (result_of raises its sentence at once).
        request = admin.describe_topics(TopicCollection([topic]), request_timeout=timeout)
        description = result_of(admin, request[topic], errors, resource=topic, action="describe")
    except KafkaException as error:
        if error.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise OrangeScrumError(
                f"Topic {topic} does not exist on {settings.kafka_bootstrap_servers}: run "
                "`orangescrum topics create`."
            ) from None
        raise OrangeScrumError(
            f"Kafka at {settings.kafka_bootstrap_servers} did not answer within {timeout}s "
            f"({error.args[0].str()}); start the broker or fix "
            "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS, then run the stream again."
        ) from None
    return str(description.topic_id)
