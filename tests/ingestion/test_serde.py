"""The Avro contract on the wire: Confluent framing, registry lookups, decode failures."""

from __future__ import annotations

import io
import json
import struct
from datetime import UTC, date, datetime

import fastavro
import pytest

from ingestion.serde import DecodeError, EventDeserializer, EventSerializer
from orangescrum.core.contract.registry import FileSchemaRegistry, UnknownSchemaError
from orangescrum.core.contract.schema import SUBJECT, event_arrow_schema, load_schema_text

FULL_EVENT = {
    "event_id": "5f0c6d0e-6d5b-4f55-9d0a-0b8a3c1e2f10",
    "event_type": "time_logged",
    "event_timestamp": datetime(2026, 11, 20, 9, 30, 1, 250_000, tzinfo=UTC),
    "company_id": 7,
    "user_id": 70,
    "project_id": 700,
    "task_id": 7000,
    "user_state": {
        "user_id": 70,
        "name": "Asha Rao",
        "email": "asha@example.com",
        "role": "member",
        "user_type": "internal",
        "is_active": True,
        "timezone": "Asia/Kolkata",
        "created_at": datetime(2026, 1, 2, tzinfo=UTC),
    },
    "project_state": {
        "name": "Mobile app",
        "short_name": "MOB",
        "project_type": "development",
        "status": "active",
        "owner_user_id": 71,
        "start_date": date(2026, 1, 5),
        "end_date": None,
        "estimated_hours": 1200.5,
    },
    "task_state": {
        "task_number": 12,
        "title": "Login screen",
        "task_type": "development",
        "priority": "high",
        "status": "Start",
        "legend": 4,
        "assignee_user_id": 70,
        "due_date": date(2026, 11, 30),
        "estimated_hours": 6.0,
        "story_points": 3,
        "milestone_id": None,
    },
    "time_log": {
        "time_log_id": 5,
        "started_at": datetime(2026, 11, 20, 4, 0, tzinfo=UTC),
        "ended_at": datetime(2026, 11, 20, 5, 30, tzinfo=UTC),
        "duration_seconds": 5400,
        "is_billable": True,
        "approval_status": "pending",
    },
    "comment": {"comment_id": 3, "body": "done"},
    "milestone": {"milestone_id": 2, "title": "Beta", "due_date": None},
    "attachment": {"file_id": 9, "file_name": "spec.pdf", "size_bytes": 2048},
}


@pytest.fixture
def registry() -> FileSchemaRegistry:
    return FileSchemaRegistry()


@pytest.fixture
def serializer(registry: FileSchemaRegistry) -> EventSerializer:
    return EventSerializer.registered(registry, SUBJECT, load_schema_text(1))


def test_round_trip_keeps_every_field(registry, serializer) -> None:
    payload = serializer.serialize(FULL_EVENT)
    schema_id, decoded = EventDeserializer(registry, load_schema_text()).deserialize(payload)
    assert schema_id == 1
    # Resolved into the newest reader schema: fields added since v1 take their defaults.
    assert decoded == FULL_EVENT | {"client": None}


def test_wire_format_is_confluent_framing(serializer) -> None:
    payload = serializer.serialize(FULL_EVENT)
    magic, schema_id = struct.unpack(">bI", payload[:5])
    assert (magic, schema_id) == (0, 1)
    # The body is plain Avro: any Avro reader decodes it with the writer schema alone.
    parsed = fastavro.parse_schema(json.loads(load_schema_text(1)))
    assert fastavro.schemaless_reader(io.BytesIO(payload[5:]), parsed) == FULL_EVENT


def test_naming_union_branches_writes_the_bytes_fastavro_writes_for_plain_dicts(
    serializer,
) -> None:
    """The serializer tags optional payloads with their branch (speed); the bytes must not
    change, and the caller's record is left as it was."""
    parsed = fastavro.parse_schema(json.loads(load_schema_text(1)))
    for event in (FULL_EVENT, FULL_EVENT | {"user_state": None, "comment": None}):
        plain = io.BytesIO()
        fastavro.schemaless_writer(plain, parsed, event)
        before = dict(event)
        assert serializer.serialize(event)[5:] == plain.getvalue()
        assert event == before


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty_value"),
        (b'{"json": true}', "not_confluent_avro"),  # first byte is '{', not 0
        (b"\x00\x00\x00\x03\xe7" + b"\x02", "unknown_schema_id"),  # id 999
        (b"\x00\x00\x00\x00\x01" + b"\x80", "avro_decode_error"),  # varint never ends
    ],
)
def test_bad_payloads_raise_with_reason(registry, payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as raised:
        EventDeserializer(registry, load_schema_text()).deserialize(payload)
    assert raised.value.reason == reason


def test_trailing_bytes_are_rejected(registry, serializer) -> None:
    with pytest.raises(DecodeError, match="trailing bytes"):
        EventDeserializer(registry, load_schema_text()).deserialize(
            serializer.serialize(FULL_EVENT) + b"\x00"
        )


def test_file_registry_refuses_unlisted_schema(registry) -> None:
    with pytest.raises(UnknownSchemaError, match=r"registry\.json"):
        registry.register(SUBJECT, json.dumps({"type": "record", "name": "X", "fields": []}))


def test_arrow_schema_has_payload_structs_and_ingestion_columns() -> None:
    schema = event_arrow_schema()
    assert schema.field("task_state").type.get_field_index("legend") >= 0
    assert schema.field("event_id").nullable is False
    assert schema.field("project_id").nullable is True
    assert schema.names[-6:] == [
        "kafka_topic",
        "kafka_partition",
        "kafka_offset",
        "kafka_timestamp",
        "schema_id",
        "ingested_at",
    ]
