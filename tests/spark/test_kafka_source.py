"""The Kafka data source's offset arithmetic, and end offsets against the real broker."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer

from ingestion.topics import create_topics
from spark.kafka_source import cap_offsets, client_config, find_end_offsets


@pytest.mark.parametrize(
    ("start", "end", "limit", "expected"),
    [
        ({"0": 0, "1": 0}, {"0": 10, "1": 10}, 100, {"0": 10, "1": 10}),  # under the limit
        ({"0": 0, "1": 0}, {"0": 100, "1": 300}, 40, {"0": 10, "1": 30}),  # proportional
        ({"0": 5, "1": 0}, {"0": 6, "1": 1}, 1, {"0": 6, "1": 0}),  # floor is 0: still progress
        ({"0": 0}, {"0": 0, "1": 50}, 20, {"0": 0, "1": 20}),  # a partition new since start
        # flooring leaves 2 rows over: the largest remainders take them, no tail batch
        (
            {"0": 0, "1": 0, "2": 0},
            {"0": 66_667, "1": 66_667, "2": 66_666},
            50_000,
            {"0": 16_667, "1": 16_667, "2": 16_666},
        ),
    ],
)
def test_cap_offsets(start, end, limit, expected) -> None:
    capped = cap_offsets(start, end, limit)
    assert capped == expected
    backlog = sum(end[p] - start.get(p, 0) for p in end)
    assert sum(capped[p] - start.get(p, 0) for p in capped) == min(limit, backlog)


def test_end_offsets_are_exact_even_when_the_watermark_lags(kafka_settings) -> None:
    """Tansu reports the last batch's base offset + 1 as high watermark; ends must be real."""
    create_topics(kafka_settings)
    producer = Producer(kafka_settings.kafka_client_config() | {"linger.ms": 50})
    for n in range(250):  # lingering makes multi-record batches
        producer.produce(kafka_settings.topic_events, key=b"1", value=b"x", partition=n % 2)
    assert producer.flush(10) == 0
    consumer = Consumer(
        client_config({f"kafka.{k}": v for k, v in kafka_settings.kafka_client_config().items()})
    )
    try:
        ends = find_end_offsets(consumer, kafka_settings.topic_events, [0, 1, 2])
    finally:
        consumer.close()
    assert ends == {"0": 125, "1": 125, "2": 0}
