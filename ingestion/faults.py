"""Deliberately bad messages, for proving the pipeline dead-letters instead of crashing.

Each kind maps to the dead-letter reason the stream must record for it, so tests and the demo
can reconcile exact counts end to end.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ingestion.serde import EventSerializer

# Bad-message kind -> the reason code the stream writes to the dead-letter lake.
EXPECTED_REASON: Final = {
    "undecodable_bytes": "not_confluent_avro",
    "unknown_schema_id": "unknown_schema_id",
    "missing_required_field": "missing_required_field",
    "missing_key": "missing_key",
    "timestamp_far_future": "timestamp_out_of_range",
    "timestamp_far_past": "timestamp_out_of_range",
}
BAD_KINDS: Final = tuple(EXPECTED_REASON)
UNREGISTERED_SCHEMA_ID: Final = 999_999


@dataclass(frozen=True)
class BadMessage:
    kind: str
    key: bytes | None
    value: bytes


def make_bad_message(
    kind: str, template: dict[str, Any], serializer: EventSerializer, rng: random.Random
) -> BadMessage:
    """A message of the given kind, built from a valid event so only one thing is wrong."""
    record = template | {"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
    key = str(record["company_id"]).encode()
    match kind:
        case "undecodable_bytes":
            # Never starts with the magic byte 0, so it cannot pass as Confluent framing.
            value = bytes([rng.randrange(1, 256)]) + rng.randbytes(rng.randrange(8, 64))
        case "unknown_schema_id":
            value = EventSerializer(UNREGISTERED_SCHEMA_ID, serializer.schema_text).serialize(
                record
            )
        case "missing_required_field":
            value = serializer.serialize(record | {"event_id": ""})
        case "missing_key":
            key, value = None, serializer.serialize(record)
        case "timestamp_far_future":
            far = datetime(2300, 1, 1, tzinfo=UTC)
            value = serializer.serialize(record | {"event_timestamp": far})
        case "timestamp_far_past":
            far = datetime(1990, 1, 1, tzinfo=UTC)
            value = serializer.serialize(record | {"event_timestamp": far})
        case _:
            raise ValueError(f"unknown bad-message kind {kind!r}; choose from {BAD_KINDS}")
    return BadMessage(kind, key, value)


def make_bad_messages(
    counts: dict[str, int], template: dict[str, Any], serializer: EventSerializer, seed: int
) -> list[BadMessage]:
    """Exactly counts[kind] messages of each kind, in a seeded shuffled order."""
    rng = random.Random(seed)
    messages = [
        make_bad_message(kind, template, serializer, rng)
        for kind in sorted(counts)
        for _ in range(counts[kind])
    ]
    rng.shuffle(messages)
    return messages
