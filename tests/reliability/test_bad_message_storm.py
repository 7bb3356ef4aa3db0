"""A storm of bad messages in live traffic: each one dead-lettered once, the stream unmoved.

Every second the producer sends 100 good events and one message of each bad kind the contract
knows (1% each: undecodable bytes, an unknown schema id, a body that does not decode, a
missing required field, an unknown event type, no key, a key that is not the company, absurd
timestamps either way, a tombstone), shuffled, while a continuous stream runs.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest

from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics
from tests.reliability.conftest import RunningStream
from tests.reliability.streaming import (
    ALL_BAD_KINDS,
    BAD_REASON,
    Outgoing,
    assert_exactly_once,
    bad_message,
    dead_letter_rows,
    dlq_topic_reasons,
    events_lag,
    good_messages,
    lake_rows,
    serializer_for,
    start_traffic_and_stream,
)

pytestmark = pytest.mark.slow

SEED = 20261201
GOOD_PER_TICK = 100
TICKS = 6  # the first before the stream starts, so it is up and through a batch before the rest
# Per reason: TICKS messages for each bad kind that maps to it (both absurd timestamps map to
# timestamp_out_of_range).
EXPECTED_DEAD_LETTERS = {
    "not_confluent_avro": TICKS,
    "unknown_schema_id": TICKS,
    "avro_decode_error": TICKS,
    "missing_required_field": TICKS,
    "unknown_event_type": TICKS,
    "missing_key": TICKS,
    "key_mismatch": TICKS,
    "timestamp_out_of_range": 2 * TICKS,
    "empty_value": TICKS,
}


def test_a_storm_of_bad_messages_is_dead_lettered_and_the_stream_keeps_up(
    kafka_settings: Settings, live_stream: Callable[[Settings], RunningStream]
) -> None:
    settings = kafka_settings
    create_topics(settings)
    serializer = serializer_for(settings)
    rng = random.Random(SEED)
    assert dict(Counter(BAD_REASON[kind] for kind in ALL_BAD_KINDS * TICKS)) == (
        EXPECTED_DEAD_LETTERS
    )

    def tick(number: int) -> list[Outgoing]:
        messages = good_messages(serializer, number * GOOD_PER_TICK, GOOD_PER_TICK)
        messages += [bad_message(kind, serializer, rng) for kind in ALL_BAD_KINDS]
        rng.shuffle(messages)
        return messages

    producer, stream = start_traffic_and_stream(settings, tick, live_stream, TICKS - 1)

    assert producer.failed == []
    assert producer.bad_by_reason() == EXPECTED_DEAD_LETTERS
    dead_total = sum(EXPECTED_DEAD_LETTERS.values())
    stream.wait_until(
        lambda: (
            len(lake_rows(settings)) >= TICKS * GOOD_PER_TICK
            and len(dead_letter_rows(settings, "reason")) >= dead_total
        ),
        "not every message was landed or dead-lettered",
    )
    stream.wait_until(lambda: events_lag(settings) == 0, "the stream's lag did not return to 0")

    assert len(producer.ids) == TICKS * GOOD_PER_TICK
    assert_exactly_once([row[0] for row in lake_rows(settings)], producer.ids, producer.sent_ids)
    dead = dead_letter_rows(settings, "reason, kafka_partition, kafka_offset")
    assert dict(Counter(row[0] for row in dead)) == EXPECTED_DEAD_LETTERS
    assert len({row[1:] for row in dead}) == dead_total  # no Kafka record dead-lettered twice
    assert dlq_topic_reasons(settings) == EXPECTED_DEAD_LETTERS
    assert stream.alive  # after all that, still running
    totals = stream.stop()
    assert totals.rows_landed == TICKS * GOOD_PER_TICK
    assert totals.dead_letter_reasons == EXPECTED_DEAD_LETTERS
