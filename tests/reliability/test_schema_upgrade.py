"""Producers upgraded from contract v1 to v2 while the stream runs: both decode, none is lost.

A rolling upgrade: for a while only v1 producers send, then v2 producers (which set the new
`client` field) start beside them, then the v1 ones stop. The stream never restarts; every
message is decoded with the writer schema its id names and resolved into the newest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics
from tests.reliability.conftest import RunningStream
from tests.reliability.streaming import (
    Outgoing,
    dead_letter_rows,
    event_id,
    good_messages,
    lake_rows,
    serializer_for,
    start_traffic_and_stream,
)

pytestmark = pytest.mark.slow

PER_VERSION = 50  # events per tick from each producer version that is up
TICKS = 7
V1_TICKS = range(0, 4)  # tick 0 goes out before the stream starts
V2_TICKS = range(2, TICKS)  # ticks 2 and 3: both versions at once


def test_v1_and_v2_producers_switched_mid_stream_all_land(
    kafka_settings: Settings, live_stream: Callable[[Settings], RunningStream]
) -> None:
    settings = kafka_settings
    create_topics(settings)
    v1, v2 = serializer_for(settings, 1), serializer_for(settings, 2)
    assert (v1.schema_id, v2.schema_id) == (1, 2)

    def tick(number: int) -> list[Outgoing]:
        first = number * 2 * PER_VERSION
        messages = []
        if number in V1_TICKS:
            messages += good_messages(v1, first, PER_VERSION)
        if number in V2_TICKS:
            messages += good_messages(v2, first + PER_VERSION, PER_VERSION, client="mobile")
        return messages

    producer, stream = start_traffic_and_stream(settings, tick, live_stream, TICKS - 1)
    assert producer.failed == []

    expected = {
        event_id(n * 2 * PER_VERSION + i): (1, None) for n in V1_TICKS for i in range(PER_VERSION)
    } | {
        event_id(n * 2 * PER_VERSION + PER_VERSION + i): (2, "mobile")
        for n in V2_TICKS
        for i in range(PER_VERSION)
    }
    assert sorted(producer.ids) == sorted(expected)
    stream.wait_until(lambda: len(lake_rows(settings)) >= len(expected), "not every event landed")
    assert stream.alive
    stream.stop()

    rows = lake_rows(settings, "event_id, schema_id, client")
    assert len(rows) == len(expected)  # each event once
    assert {row[0]: (row[1], row[2]) for row in rows} == expected
    assert Counter(row[1] for row in rows) == {
        1: len(V1_TICKS) * PER_VERSION,
        2: len(V2_TICKS) * PER_VERSION,
    }
    assert dead_letter_rows(settings, "reason") == []
