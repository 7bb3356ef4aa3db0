"""The broker stops and starts again while the stream runs: nothing lost, nothing twice.

A broker of the test's own (the shared one must not go down under other tests) serves a live
producer and a continuous stream. The broker is stopped mid-stream for a few seconds, then
started again from its log dirs on the same ports. The producer keeps producing through the
outage (librdkafka buffers and retries), the stream keeps running (Spark's Kafka source
retries within ORANGESCRUM_KAFKA_OUTAGE_TOLERANCE_SECONDS), and at the end every event the
producer saw acknowledged is in the lake exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

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

OUTAGE_SECONDS = 8
EVENTS_PER_TICK = 100


def test_stream_and_producer_ride_out_a_broker_restart(
    tmp_path: Path,
    settings: Settings,
    live_stream: Callable[[Settings], RunningStream],
) -> None:
    kafka = LocalKafka.from_settings(settings, tmp_path / "kafka").start()
    try:
        settings = settings.model_copy(
            update={
                "kafka_bootstrap_servers": kafka.bootstrap,
                "topic_events": "events-outage",
                "topic_dead_letter": "dlq-outage",
            }
        )
        create_topics(settings)
        tick = good_ticks(serializer_for(settings), EVENTS_PER_TICK)
        # Live traffic until stopped, the outage in the middle of it.
        producer, stream = start_traffic_and_stream(settings, tick, live_stream, None)
        try:
            time.sleep(2)
            kafka.stop()
            ticks_at_stop = producer.ticks
            time.sleep(OUTAGE_SECONDS)
            assert stream.alive, "the stream died with the broker"
            restarted = LocalKafka.from_settings(settings, tmp_path / "kafka").start()
            assert restarted.bootstrap == kafka.bootstrap  # same ports: clients reconnect
            kafka = restarted
            ticks_in_outage = producer.ticks - ticks_at_stop
            time.sleep(2)
        finally:
            producer.stop()  # flushed: every message acknowledged or failed
        stop_when_acknowledged_landed(stream, producer, settings)
    finally:
        kafka.stop()

    # The outage outlasted no delivery timeout: librdkafka delivered everything it buffered.
    assert producer.failed == []
    assert ticks_in_outage >= OUTAGE_SECONDS  # production went on through the outage
    assert_exactly_once([row[0] for row in lake_rows(settings)], producer.ids, producer.sent_ids)
