"""Producing to a real Apache Kafka broker: every event type round-trips, exact accounting."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date

import pytest
from confluent_kafka import Consumer, TopicPartition

from ingestion.faults import BAD_KINDS
from ingestion.feed import event_serializer, produce_history, produce_live
from ingestion.serde import EventDeserializer
from ingestion.simulator import SimulationConfig, simulate_history
from orangescrum.core.contract.events import EVENT_TYPES
from orangescrum.core.contract.registry import FileSchemaRegistry
from orangescrum.core.contract.schema import load_schema_text
from orangescrum.core.topics import create_topics

# A fixed start: the fortnight must contain every event type, whatever today is.
HISTORY = SimulationConfig(
    seed=3,
    companies=1,
    days=14,
    start_date=date(2024, 3, 4),
    duplicate_rate=0.02,
    late_rate=0.05,
)


def read_topic(settings, topic: str) -> list:
    consumer = Consumer(
        settings.kafka_client_config() | {"group.id": "t", "enable.partition.eof": True}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.topic_partitions)])
    messages, eof = [], 0
    while eof < settings.topic_partitions:
        message = consumer.poll(10)
        assert message is not None, "topic did not reach its end"
        if message.error():
            eof += 1
        else:
            messages.append(message)
    consumer.close()
    return messages


def test_every_event_type_round_trips_through_the_serde(settings) -> None:
    serializer = event_serializer(settings)
    deserializer = EventDeserializer(FileSchemaRegistry(), load_schema_text())
    seen = {}
    for delivery in simulate_history(HISTORY):
        seen.setdefault(delivery.record["event_type"], delivery.record)
    assert set(seen) == set(EVENT_TYPES)
    for record in seen.values():
        assert deserializer.deserialize(serializer.serialize(record)) == (2, record)


def test_history_with_bad_messages_is_delivered_exactly(kafka_settings) -> None:
    create_topics(kafka_settings)
    report = produce_history(kafka_settings, HISTORY, dict.fromkeys(BAD_KINDS, 3))

    messages = read_topic(kafka_settings, kafka_settings.topic_events)
    assert report.delivery.delivered == len(messages) == report.messages
    assert report.delivery.failed == 0
    assert report.bad_by_kind == Counter(dict.fromkeys(BAD_KINDS, 3))
    # The key is the company, so one tenant's events stay ordered in one partition.
    keyed = [m for m in messages if m.key() is not None]
    assert {m.key() for m in keyed} == {b"1"}
    assert len({m.partition() for m in keyed}) == 1


def test_live_stream_paces_and_accounts(kafka_settings) -> None:
    create_topics(kafka_settings)
    report = produce_live(
        kafka_settings, SimulationConfig(seed=1), rate_per_second=200, duration_seconds=1.5
    )
    assert report.delivery.failed == 0
    assert report.delivery.delivered == len(read_topic(kafka_settings, kafka_settings.topic_events))
    # Paced at 200/s for 1.5 s: never more than the budget (plus the first send).
    assert 0 < report.events <= 301
    # a live feed counts its distinct events instead of keeping every id (memory over hours)
    assert report.event_ids == set()
    assert report.unique_events == report.events - report.duplicates


@pytest.mark.slow
def test_sigint_flushes_and_reports(kafka_settings) -> None:
    create_topics(kafka_settings)
    env = os.environ | {
        "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.kafka_bootstrap_servers,
        "ORANGESCRUM_TOPIC_EVENTS": kafka_settings.topic_events,
        "ORANGESCRUM_DATA_DIR": str(kafka_settings.data_dir),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "orangescrum", "simulate", "live", "--rate", "500"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(6)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    delivered = int(re.search(r"delivered ([\d,]+), failed 0", stderr)[1].replace(",", ""))
    assert delivered > 0
    assert delivered == len(read_topic(kafka_settings, kafka_settings.topic_events))
