"""Kafka records -> contract-valid events or dead letters, decoded in the JVM.

Messages are Avro in the Confluent wire format: byte 0 is the magic byte 0, bytes 1-4 the
big-endian schema id, the rest the Avro body. The framing is parsed with Spark SQL and each
body decoded by spark-avro's `from_avro` with the writer schema its id names, resolved into
the reader schema (the newest version the code knows), so v1 and v2 messages come out as one
row shape. Nothing is decoded in Python, so the same job runs on any Spark cluster (Dataproc
included, whose Spark has no Python streaming sources).

The rules are the event contract's, in order; the first one a record breaks is its
dead-letter reason (`ingestion.serde.EventDeserializer`, the Python consumers' decoder, uses
the same codes for the framing rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro, to_avro

from orangescrum.core.contract.events import EVENT_TYPES
from orangescrum.core.contract.schema import canonical_schema

REASON = "reason"
ERROR_DETAIL = "error_detail"
# The ingestion columns every landed row and every dead letter carries.
KAFKA_COLUMNS = {
    "kafka_topic": "topic",
    "kafka_partition": "partition",
    "kafka_offset": "offset",
    "kafka_timestamp": "timestamp",
}
# Python's uuid.UUID accepts the canonical form with or without hyphens; so does this.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


@dataclass(frozen=True)
class DecodeRules:
    """What decoding needs besides the records: writer schemas by id and the time window."""

    writer_schemas: Mapping[int, str]  # schema id -> Avro schema text, from the registry
    reader_schema_text: str
    max_event_age_days: int = 365
    max_event_future_minutes: int = 60


def _decoded_event(body: Column, schema_id: Column, rules: DecodeRules) -> Column:
    """The Avro body decoded with the writer schema its id names, as the reader schema's row.

    PERMISSIVE: a body that does not decode becomes a row of nulls instead of failing the
    batch.
    """
    decoded: Column | None = None
    reader = canonical_schema(rules.reader_schema_text)
    for writer_id, writer_text in sorted(rules.writer_schemas.items()):
        options = {"mode": "PERMISSIVE"}
        if canonical_schema(writer_text) != reader:
            # Avro's resolving decoder maps an older writer into the reader schema; data
            # written with the reader schema itself skips it (the common, fast case).
            options["avroSchema"] = rules.reader_schema_text
        branch = from_avro(body, writer_text, options)
        condition = schema_id == F.lit(writer_id)
        decoded = F.when(condition, branch) if decoded is None else decoded.when(condition, branch)
    if decoded is None:
        raise ValueError("the registry lists no schema for the events subject")
    return decoded


def _record_length(event: Column, body: Column, schema_id: Column, rules: DecodeRules) -> Column:
    """How many bytes of the body its record takes, found by encoding the record again.

    `from_avro` stops reading at the end of the record, so bytes after it would pass unseen
    (the Python decoders reject them). Avro's binary encoding of a value is canonical as every
    Avro library writes it (minimal varints, one block per array or map), so the record's
    encoding is as long as the body exactly when nothing follows it. Data written with the
    reader schema is re-encoded from the decoded row itself; an older writer's record is
    decoded again without resolution, so it is re-encoded in its own schema.
    """
    reader = canonical_schema(rules.reader_schema_text)
    length: Column | None = None
    for writer_id, writer_text in sorted(rules.writer_schemas.items()):
        if canonical_schema(writer_text) == reader:
            record = event
        else:
            record = from_avro(body, writer_text, {"mode": "PERMISSIVE"})
        branch = F.length(to_avro(record, writer_text))
        condition = schema_id == F.lit(writer_id)
        length = F.when(condition, branch) if length is None else length.when(condition, branch)
    assert length is not None  # _decoded_event refused an empty registry first
    return length


def decode_kafka_records(records: DataFrame, rules: DecodeRules) -> DataFrame:
    """One row per Kafka record: the event's columns, the Kafka columns, and a `reason`.

    `reason` is null for a valid event and the dead-letter reason code otherwise, with a
    human-readable `error_detail`. `raw_key`/`raw_value` keep the original bytes of dead
    letters only. Event age is judged against the Kafka timestamp, not the wall clock, so a
    replayed batch decides the same way.
    """
    key = (
        tuple(sorted(rules.writer_schemas.items())),
        rules.reader_schema_text,
        rules.max_event_age_days,
        rules.max_event_future_minutes,
    )
    # Columns are JVM objects: a new JVM (gateway) gets columns of its own.
    steps = _decode_steps(key, id(records.sparkSession.sparkContext._jvm))
    for columns in steps:
        records = records.select(*columns)
    return records


@lru_cache(maxsize=8)
def _decode_steps(key: tuple, jvm: int) -> tuple[list[Column | str], ...]:
    """The three projections of decode_kafka_records, built once per set of rules.

    Building a Column costs a py4j round trip; the ~200 behind these took ~0.25 s, paid on
    every micro-batch before they were kept (unresolved columns are reusable across frames).
    """
    writer_schemas, reader_schema_text, max_event_age_days, max_event_future_minutes = key
    rules = DecodeRules(
        dict(writer_schemas), reader_schema_text, max_event_age_days, max_event_future_minutes
    )
    value = F.col("value")
    framed = (F.length(value) >= 5) & (F.hex(F.substring(value, 1, 1)) == F.lit("00"))
    schema_id = F.when(framed, F.conv(F.hex(F.substring(value, 2, 4)), 16, 10).cast("int"))
    known_id = schema_id.isin(*rules.writer_schemas)
    body = F.expr("substring(value, 6)")
    framing = [
        "*",
        schema_id.alias("schema_id"),
        F.when(known_id, _decoded_event(body, schema_id, rules)).alias("event"),
        F.coalesce(F.col("timestamp"), F.current_timestamp()).alias("_sent_at"),
    ]
    event = F.col("event")
    event_timestamp = event["event_timestamp"]
    sent_at = F.col("_sent_at")
    too_old = sent_at - F.expr(f"make_dt_interval({rules.max_event_age_days})")
    too_new = sent_at + F.expr(f"make_dt_interval(0, 0, {rules.max_event_future_minutes})")
    company = event["company_id"].cast("string")
    # Only for a body that decoded: a row of nulls is no record to encode.
    record_length = F.when(
        event["event_id"].isNotNull(), _record_length(event, body, F.col("schema_id"), rules)
    )
    trailing = F.length(body) - record_length
    rules_in_order: list[tuple[Column, str, Column]] = [
        (value.isNull() | (F.length(value) == 0), "empty_value", F.lit("message has no value")),
        (
            ~framed,
            "not_confluent_avro",
            F.concat(
                F.lit("first byte "),
                F.lower(F.hex(F.substring(value, 1, 1))),
                F.lit(" is not the Confluent magic byte 00 (or the message is too short)"),
            ),
        ),
        (
            ~known_id,
            "unknown_schema_id",
            F.concat(F.lit("no schema with id "), schema_id.cast("string")),
        ),
        (
            # PERMISSIVE turns a body that does not decode into a row of nulls (not a null
            # row); event_id is required in every version, so it is null only then.
            event["event_id"].isNull(),
            "avro_decode_error",
            F.concat(
                F.lit("the Avro body does not decode with writer schema id "),
                schema_id.cast("string"),
            ),
        ),
        (
            F.coalesce(trailing > 0, F.lit(False)),
            "avro_decode_error",
            F.concat(
                trailing.cast("string"),
                F.lit(" byte(s) after the end of the Avro record (writer schema id "),
                schema_id.cast("string"),
                F.lit(")"),
            ),
        ),
        (
            F.coalesce(~event["event_id"].rlike(UUID_PATTERN), F.lit(True)),
            "missing_required_field",
            F.concat(
                F.lit("event_id '"),
                F.coalesce(event["event_id"], F.lit("")),
                F.lit("' is not a UUID"),
            ),
        ),
        (
            F.coalesce(event["company_id"] <= 0, F.lit(True)),
            "missing_required_field",
            F.lit("company_id is missing or not positive"),
        ),
        (
            F.coalesce(event["user_id"] <= 0, F.lit(True)),
            "missing_required_field",
            F.lit("user_id is missing or not positive"),
        ),
        (
            ~event["event_type"].isin(*EVENT_TYPES),
            "unknown_event_type",
            F.concat(F.lit("event_type '"), event["event_type"], F.lit("'")),
        ),
        (
            F.col("key").isNull(),
            "missing_key",
            F.lit("message has no key (expected the company_id)"),
        ),
        (
            F.col("key").cast("string") != company,
            "key_mismatch",
            F.concat(
                F.lit("key '"),
                F.col("key").cast("string"),
                F.lit("' is not the event's company_id "),
                company,
            ),
        ),
        (
            event_timestamp < too_old,
            "timestamp_out_of_range",
            F.concat(
                F.lit("event_timestamp "),
                event_timestamp.cast("string"),
                F.lit(f" is older than {rules.max_event_age_days} days"),
            ),
        ),
        (
            event_timestamp > too_new,
            "timestamp_out_of_range",
            F.concat(
                F.lit("event_timestamp "),
                event_timestamp.cast("string"),
                F.lit(" is in the future"),
            ),
        ),
    ]
    outcome: Column | None = None
    for broken, code, explanation in rules_in_order:
        verdict = F.struct(F.lit(code).alias(REASON), explanation.alias(ERROR_DETAIL))
        outcome = F.when(broken, verdict) if outcome is None else outcome.when(broken, verdict)
    assert outcome is not None
    judging: list[Column | str] = ["*", outcome.alias("_outcome")]
    is_dead = F.col("_outcome").isNotNull()
    output: list[Column | str] = [
        "event.*",
        *(F.col(source).alias(target) for target, source in KAFKA_COLUMNS.items()),
        "schema_id",
        F.current_timestamp().alias("ingested_at"),
        F.col("_outcome")[REASON].alias(REASON),
        F.col("_outcome")[ERROR_DETAIL].alias(ERROR_DETAIL),
        F.when(is_dead, F.col("key")).alias("raw_key"),
        F.when(is_dead, value).alias("raw_value"),
    ]
    return framing, judging, output
