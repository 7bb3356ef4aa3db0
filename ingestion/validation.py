"""Contract checks Avro cannot express; a failure is a dead letter with a reason code."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ingestion.events import EVENT_TYPES
from ingestion.serde import DecodeError


@dataclass(frozen=True)
class EventTimeWindow:
    """Event timestamps outside [now - max_age, now + max_future] are absurd, not late."""

    max_age: timedelta
    max_future: timedelta

    def check(self, event_timestamp: datetime, now: datetime) -> None:
        if event_timestamp < now - self.max_age:
            raise DecodeError(
                "timestamp_out_of_range",
                f"event_timestamp {event_timestamp.isoformat()} is older than "
                f"{self.max_age.days} days",
            )
        if event_timestamp > now + self.max_future:
            raise DecodeError(
                "timestamp_out_of_range",
                f"event_timestamp {event_timestamp.isoformat()} is in the future",
            )


def validate_event(
    record: dict[str, Any], key: bytes | None, now: datetime, window: EventTimeWindow
) -> None:
    """Raise DecodeError naming the first broken rule of the event contract."""
    event_id = record.get("event_id") or ""
    try:
        uuid.UUID(event_id)
    except ValueError:
        raise DecodeError(
            "missing_required_field", f"event_id {event_id!r} is not a UUID"
        ) from None
    for id_field in ("company_id", "user_id"):
        if not record.get(id_field) or record[id_field] <= 0:
            raise DecodeError("missing_required_field", f"{id_field} is missing or not positive")
    if record["event_type"] not in EVENT_TYPES:
        raise DecodeError("unknown_event_type", f"event_type {record['event_type']!r}")
    if key is None:
        raise DecodeError("missing_key", "message has no key (expected the company_id)")
    if key != str(record["company_id"]).encode():
        raise DecodeError(
            "key_mismatch", f"key {key!r} is not the event's company_id {record['company_id']}"
        )
    window.check(record["event_timestamp"], now)
