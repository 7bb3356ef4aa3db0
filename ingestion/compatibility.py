"""Schema evolution rules for the event contract, checked with Apache Avro's own resolver.

The project's policy is FULL compatibility between consecutive versions: consumers on the new
version read old data (BACKWARD) and consumers still on the old version read new data
(FORWARD). In practice: a field may only be added or removed if it has a default, and no type
may change except by Avro's promotions (int -> long, null -> [null, T], ...).
"""

from __future__ import annotations

import json
from enum import StrEnum

from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.schema import RecordSchema, Schema, UnionSchema, parse


class CompatibilityMode(StrEnum):
    BACKWARD = "backward"  # the new version reads data written with the old one
    FORWARD = "forward"  # the old version reads data written with the new one
    FULL = "full"  # both


def _record_branch(schema: Schema) -> RecordSchema | None:
    if isinstance(schema, RecordSchema):
        return schema
    if isinstance(schema, UnionSchema):
        records = [s for s in schema.schemas if isinstance(s, RecordSchema)]
        return records[0] if len(records) == 1 else None
    return None


def _nullable(schema: Schema) -> bool:
    return isinstance(schema, UnionSchema) and any(s.type == "null" for s in schema.schemas)


def _reader_problems(reader: RecordSchema, writer: RecordSchema, path: str) -> list[str]:
    """Why `reader` cannot decode data written with `writer`, one line per field."""
    checker = ReaderWriterCompatibilityChecker()
    writer_fields = {field.name: field for field in writer.fields}
    problems = []
    for field in reader.fields:
        name = f"{path}{field.name}"
        writer_field = writer_fields.get(field.name)
        if writer_field is None:
            if not field.has_default:
                problems.append(f"field '{name}' is required here and absent in the other version")
            continue
        reader_record, writer_record = _record_branch(field.type), _record_branch(writer_field.type)
        if reader_record is not None and writer_record is not None:
            if _nullable(writer_field.type) and not _nullable(field.type):
                problems.append(f"field '{name}' may be null in the writer but not in the reader")
            problems += _reader_problems(reader_record, writer_record, f"{name}.")
            continue
        result = checker.get_compatibility(field.type, writer_field.type)
        if result.compatibility is not SchemaCompatibilityType.compatible:
            problems.append(f"field '{name}': {'; '.join(sorted(result.messages))}")
    return problems


def compatibility_problems(
    old_text: str, new_text: str, mode: CompatibilityMode = CompatibilityMode.FULL
) -> list[str]:
    """Every rule the new schema breaks against the old one; empty means compatible."""
    old, new = parse(old_text), parse(new_text)
    if not isinstance(old, RecordSchema) or not isinstance(new, RecordSchema):
        raise ValueError("both schemas must be Avro records")
    problems = []
    if mode in (CompatibilityMode.BACKWARD, CompatibilityMode.FULL):
        problems += [f"backward: {p}" for p in _reader_problems(new, old, "")]
    if mode in (CompatibilityMode.FORWARD, CompatibilityMode.FULL):
        problems += [f"forward: {p}" for p in _reader_problems(old, new, "")]
    return problems


def registry_mode(registry_text: str) -> CompatibilityMode:
    return CompatibilityMode(json.loads(registry_text).get("compatibility", "full").lower())
