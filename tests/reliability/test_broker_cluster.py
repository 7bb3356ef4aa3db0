"""A three-broker cluster loses a broker mid-stream: every acknowledged event lands once.

Replication factor 3, min.insync.replicas=2, producers with acks=all (the application's
settings): with one broker SIGKILLed, the partitions it led move to the others, producers and
the stream follow them, and nothing Kafka acknowledged is lost or landed twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from ingestion.producer import producer_config
from orangescrum.core.broker import LocalKafka
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics
from tests.reliability.conftest import RunningStream
from tests.reliability.streaming import (
    assert_exactly_once,
    good_ticks,
    lake_rows,
    serializer_for,
    start_traffic_and_stream,
    stop_when_acknowledged_landed,
)

pytestmark = pytest.mark.slow

EVENTS_PER_TICK = 100
TICKS_AFTER_KILL = 8


def test_a_broker_killed_mid_stream_loses_no_acknowledged_event(
    tmp_path: Path,
    settings: Settings,
    live_stream: Callable[[Settings], RunningStream],
) -> None:
    with LocalKafka.from_settings(settings, tmp_path / "kafka", brokers=3) as cluster:
        # The topic takes the cluster's defaults (replication factor 3, min.insync.replicas 2),
        # which `broker start --brokers 3` sets.
        settings = settings.model_copy(update={"kafka_bootstrap_servers": cluster.bootstrap})
        assert settings.topic_replication_factor == -1
        create_topics(settings)
        admin = AdminClient(settings.kafka_client_config())
        resource = ConfigResource(ConfigResource.Type.TOPIC, settings.topic_events)
        topic_config = admin.describe_configs([resource])[resource].result()
        assert topic_config["min.insync.replicas"].value == "2"
        assert producer_config(settings)["acks"] == "all"
        metadata = admin.list_topics(settings.topic_events, timeout=10)
        assert len(metadata.brokers) == 3
        topic = metadata.topics[settings.topic_events]
        assert sorted(len(p.replicas) for p in topic.partitions.values()) == [3, 3, 3]
        # The leader of partition 0: its clients must move to another broker.
        victim = topic.partitions[0].leader

        tick = good_ticks(serializer_for(settings), EVENTS_PER_TICK)
        producer, stream = start_traffic_and_stream(settings, tick, live_stream, None)
        try:
            time.sleep(2)
            cluster.kill(victim)
            ticks_at_kill = producer.ticks
            stream.wait_until(
                lambda: producer.ticks >= ticks_at_kill + TICKS_AFTER_KILL, "the producer stalled"
            )
        finally:
            producer.stop()  # flushed: every message acknowledged or failed
        assert producer.failed == []
        first_after_kill = ticks_at_kill * EVENTS_PER_TICK
        after_kill = [i for i in producer.ids if int(i[:8]) >= first_after_kill]
        assert len(after_kill) == (producer.ticks - ticks_at_kill) * EVENTS_PER_TICK
        assert len(after_kill) >= TICKS_AFTER_KILL * EVENTS_PER_TICK
        stop_when_acknowledged_landed(stream, producer, settings)
        assert cluster.exited() == [(victim, -9)]
        moved = admin.list_topics(settings.topic_events, timeout=10).topics[settings.topic_events]
        assert moved.partitions[0].leader != victim

    assert_exactly_once([row[0] for row in lake_rows(settings)], producer.ids, producer.sent_ids)
