"""Schema drift in the app database: columns the change mapping does not know, or misses.

spark/cdc.py maps the app's tables as orangescrum/core/appdb/schema.sql creates them, reading
each column it needs by name. A column added in the app database (`ALTER TABLE ... ADD
COLUMN`) reaches Debezium's change events at once; the mapping never reads it, so later
changes of that table still land as before and the new column's values are ignored. Ignored,
not silently: the change stream compares the field names each table's records carry with
`known_columns()` and logs a WARNING once per table and column (`ColumnDrift`), so someone
decides whether to map it. A known column the records no longer carry is warned about the same
way: the mapping reads it as null, so an event that requires it becomes a dead letter
(`missing_required_field`).

The field names are read from the record's own schema (JsonConverter with schemas writes it
before the payload, the same bytes for every record of one version of a table, so each
version is parsed once per task), or from the row image when a record has no schema.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from spark.cdc import CdcRules, Unmappable

log = logging.getLogger(__name__)

# Lines of a CREATE TABLE that define an index or key, not a column.
_NOT_COLUMNS = frozenset({"KEY", "PRIMARY", "UNIQUE", "INDEX", "CONSTRAINT", "FOREIGN"})
_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*)\)", re.DOTALL)
# JsonConverter's envelope: {"schema":{...},"payload":{...}}, schema first, no whitespace.
_SCHEMA_HEAD, _PAYLOAD_KEY = b'{"schema":', b',"payload":'


@cache
def known_columns() -> Mapping[str, frozenset[str]]:
    """Each app table's columns as schema.sql creates them: what spark/cdc.py was written for."""
    from orangescrum.core.appdb.connection import APP_TABLES, schema_statements

    tables: dict[str, frozenset[str]] = {}
    for statement in schema_statements():
        match = _CREATE.match(statement)
        if match is None or match.group(1) not in APP_TABLES:
            continue
        words = (line.split(maxsplit=1) for line in match.group(2).splitlines())
        tables[match.group(1)] = frozenset(
            line[0] for line in words if line and line[0].upper() not in _NOT_COLUMNS
        )
    return tables


@cache
def _schema_fields(schema_bytes: bytes) -> tuple[str, ...] | None:
    """The row image's field names in a Debezium value schema (its `after`, else `before`)."""
    try:
        schema = json.loads(schema_bytes)
    except ValueError:
        return None
    images = {
        part.get("field"): part for part in schema.get("fields") or [] if isinstance(part, dict)
    }
    image = images.get("after") or images.get("before")
    if not isinstance(image, dict) or not isinstance(image.get("fields"), list):
        return None
    return tuple(sorted(str(f.get("field")) for f in image["fields"] if isinstance(f, dict)))


def image_fields(value: bytes | None) -> tuple[str, ...] | None:
    """The field names of a change record's row; None for a tombstone or what is no change."""
    if not value:
        return None
    end = value.find(_PAYLOAD_KEY)
    if value.startswith(_SCHEMA_HEAD) and end > 0:
        fields = _schema_fields(bytes(value[len(_SCHEMA_HEAD) : end]))
        if fields is not None:
            return fields
    try:
        document: Any = json.loads(value)
    except ValueError:
        return None  # the mapping dead-letters it
    if isinstance(document, dict) and "payload" in document:
        document = document["payload"]
    if not isinstance(document, dict):
        return None
    image = document.get("after") or document.get("before")
    return tuple(sorted(image)) if isinstance(image, dict) else None


def survey(
    topics: Iterable[str], values: Iterable[bytes | None], rules: CdcRules
) -> Counter[tuple[str, tuple[str, ...]]]:
    """Records per (table, field names) in one task's records."""
    seen: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for topic, value in zip(topics, values, strict=True):
        fields = image_fields(value)
        if fields is None:
            continue
        try:
            seen[(rules.table_of(topic), fields)] += 1
        except Unmappable:
            continue  # not a table topic: dead-lettered by the mapping
    return seen


class ColumnDrift:
    """Warns once per table and column (for the life of the stream) about drifted columns."""

    def __init__(self, known: Mapping[str, frozenset[str]] | None = None) -> None:
        self.known = known if known is not None else known_columns()
        self.warned: set[tuple[str, str]] = set()

    def observe(self, table: str, fields: Iterable[str]) -> list[str]:
        """Log (and return) a warning for each column of `table` not warned about yet."""
        known = self.known.get(table)
        if known is None:
            return []  # a table the mapping does not know is a dead letter of its own
        carried = frozenset(fields)
        messages = []
        for column in sorted(carried - known):
            if (table, column) not in self.warned:
                messages.append(
                    f"Table {table} has a column {column} the change mapping does not know: "
                    "its values are ignored (changes of the table still land); map it in "
                    "spark/cdc.py and add it to orangescrum/core/appdb/schema.sql to use it."
                )
                self.warned.add((table, column))
        for column in sorted(known - carried):
            if (table, column) not in self.warned:
                messages.append(
                    f"Table {table} no longer has the column {column} the change mapping "
                    "knows: it reads as null, so an event that requires it becomes a dead "
                    "letter (missing_required_field)."
                )
                self.warned.add((table, column))
        for message in messages:
            log.warning(message)
        return messages
