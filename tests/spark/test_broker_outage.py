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
from collections import Counter

import pytest

from orangescrum.core.broker import LocalKafka
from orangescrum.core.topics import create_topics
from tests.spark.test_crash_recovery import (
    Producer,
    batches_started,
    kill_tree,
    start_stream,
    tail,
    wait_for_progress,
)
from tests.spark.test_stream import lake_ids, produce_events

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 8
DRAIN_TIMEOUT = 180


def test_stream_and_producer_ride_out_a_broker_restart(tmp_path, settings, broker) -> None:
    kafka = LocalKafka(tmp_path / "kafka", broker.jar_cache_dir).start()
    try:
        settings = settings.model_copy(
            update={
                "kafka_bootstrap_servers": kafka.bootstrap,
                "topic_events": "events-outage",
                "topic_dead_letter": "dlq-outage",
            }
        )
        create_topics(settings)
        log_file = tmp_path / "stream.log"
        producer = Producer(settings)
        before = produce_events(settings, 50, first=100_000)  # so a first batch runs
        stream = start_stream(settings, "continuous", log_file)
        try:
            wait_for_progress(stream, settings, 0, log_file)  # up and through a first batch
            producer.start()  # ~10 s of live traffic, the outage in the middle of it
            time.sleep(2)
            kafka.stop()
            time.sleep(OUTAGE_SECONDS)
            assert stream.poll() is None, f"the stream died with the broker:\n{tail(log_file)}"
            restarted = LocalKafka(tmp_path / "kafka", broker.jar_cache_dir).start()
            assert restarted.bootstrap == kafka.bootstrap  # same ports: clients reconnect
            kafka = restarted
            producer.stop()  # every id it recorded was acknowledged (flushed without failure)
            batches_at_restart = batches_started(settings)
            wait_for_progress(stream, settings, batches_at_restart, log_file)
            deadline = time.monotonic() + DRAIN_TIMEOUT
            expected = len(before) + len(producer.ids)
            while len(lake_ids(settings)) < expected and time.monotonic() < deadline:
                assert stream.poll() is None, tail(log_file)
                time.sleep(1)
        finally:
            producer.stop()
            if stream.poll() is None:
                kill_tree(stream)
    finally:
        kafka.stop()

    landed = Counter(lake_ids(settings))
    assert set(landed.values()) == {1}, "an event landed twice"
    assert sorted(landed) == sorted(before + producer.ids)
