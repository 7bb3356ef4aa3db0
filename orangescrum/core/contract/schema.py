"""Load the versioned Avro contract and derive the Arrow schema the lake stores.

The lake keeps every Avro field (payload records as structs) plus the ingestion columns below,
so the Arrow schema is derived from the Avro one rather than written twice.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa

from orangescrum.core.contract import SCHEMA_DIR

SUBJECT = "events-raw-value"

# Columns the stream adds to every landed event. event_date is the Hive partition
# key: it lives in the folder name, not inside the files.
INGESTION_FIELDS: tuple[pa.Field, ...] = (
    pa.field("kafka_topic", pa.string(), nullable=False),
    pa.field("kafka_partition", pa.int32(), nullable=False),
    pa.field("kafka_offset", pa.int64(), nullable=False),
    pa.field("kafka_timestamp", pa.timestamp("us", tz="UTC")),
    pa.field("schema_id", pa.int32(), nullable=False),
    pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
)

DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("reason", pa.string(), nullable=False),
        pa.field("error_detail", pa.string()),
        pa.field("raw_key", pa.binary()),
        pa.field("raw_value", pa.binary()),
        pa.field("event_id", pa.string()),
        pa.field("schema_id", pa.int32()),
        *INGESTION_FIELDS[:4],
        INGESTION_FIELDS[5],
    ]
)


def schema_path(version: int) -> Path:
    return SCHEMA_DIR / f"activity_event.v{version}.avsc"


def available_versions() -> list[int]:
    return sorted(int(p.name.split(".v")[1].split(".")[0]) for p in SCHEMA_DIR.glob("*.avsc"))


def latest_version() -> int:
    return available_versions()[-1]


def load_schema_text(version: int | None = None) -> str:
    return schema_path(version or latest_version()).read_text()


def canonical_schema(schema_text: str) -> str:
    """One text per schema whatever its key order and spacing, to compare two schemas."""
    return json.dumps(json.loads(schema_text), sort_keys=True, separators=(",", ":"))


@cache
def parse_schema_text(schema_text: str) -> dict[str, Any]:
    """fastavro's parsed form of a schema; cached because decoding looks it up per message."""
    return fastavro.parse_schema(json.loads(schema_text))


def _arrow_type(avro_type: Any) -> tuple[pa.DataType, bool]:
    """Map an Avro type to (Arrow type, nullable)."""
    if isinstance(avro_type, list):
        non_null = [t for t in avro_type if t != "null"]
        if len(non_null) != 1:
            raise ValueError(f"only [null, T] unions are supported, got {avro_type}")
        arrow_type, _ = _arrow_type(non_null[0])
        return arrow_type, "null" in avro_type
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        if logical in ("timestamp-micros", "timestamp-millis"):
            return pa.timestamp("us", tz="UTC"), False
        if logical == "date":
            return pa.date32(), False
        if avro_type["type"] == "record":
            # Payload records are optional: where one is absent its fields are null too, so
            # a field required inside the record is still a nullable column.
            fields = [_arrow_field(f).with_nullable(True) for f in avro_type["fields"]]
            return pa.struct(fields), False
        return _arrow_type(avro_type["type"])
    primitive = {
        "string": pa.string(),
        "long": pa.int64(),
        "int": pa.int32(),
        "double": pa.float64(),
        "float": pa.float32(),
        "boolean": pa.bool_(),
        "bytes": pa.binary(),
    }
    return primitive[avro_type], False


def _arrow_field(avro_field: dict[str, Any]) -> pa.Field:
    arrow_type, nullable = _arrow_type(avro_field["type"])
    return pa.field(avro_field["name"], arrow_type, nullable=nullable)


@cache
def event_arrow_schema(version: int | None = None) -> pa.Schema:
    """Arrow schema of one landed event row: the Avro fields, then the ingestion columns."""
    avro = json.loads(load_schema_text(version))
    return pa.schema([_arrow_field(f) for f in avro["fields"]] + list(INGESTION_FIELDS))
