"""What refusing bytes after the Avro record costs the JVM decode, on a local SparkSession.

    python bench/decode_cost.py --events 200000 --rounds 4

Serializes simulated events as the producer does, caches them as Kafka rows, then times
spark/decode.py's decode_kafka_records (written to Spark's `noop` sink) with and without the
trailing-bytes rule (the record's `to_avro` length against the body's), alternating, and
prints each variant's times and the ratio of medians. Diagnostic for bench/README.md (Spark
landing): not run by run_all.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import spark.decode as decode
from ingestion.serde import EventSerializer
from ingestion.simulator import SimulationConfig, simulate_history
from orangescrum.core.contract.registry import FileSchemaRegistry
from orangescrum.core.contract.schema import SUBJECT, load_schema_text
from orangescrum.core.settings import Settings
from spark.session import build_session

RAW_DDL = (
    "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp"
)


def timed_decode(records: DataFrame, rules: decode.DecodeRules, *, check: bool) -> float:
    original = decode._record_length
    if not check:
        decode._record_length = lambda *args: F.lit(None).cast("int")
    decode._decode_steps.cache_clear()
    try:
        started = time.perf_counter()
        decode.decode_kafka_records(records, rules).write.format("noop").mode("overwrite").save()
        return time.perf_counter() - started
    finally:
        decode._record_length = original
        decode._decode_steps.cache_clear()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    settings = Settings(data_dir=tempfile.mkdtemp(), spark_master="local[2]", _env_file=None)
    spark = build_session(settings, "decode-cost")
    registry = FileSchemaRegistry()
    serializer = EventSerializer.registered(registry, SUBJECT, load_schema_text())
    now = datetime.now(UTC)
    rows = []
    for offset, delivery in enumerate(
        simulate_history(SimulationConfig(seed=1, companies=20, days=30))
    ):
        record = delivery.record
        key = str(record["company_id"]).encode()
        rows.append((key, serializer.serialize(record), "events-raw", 0, offset, now))
        if len(rows) >= args.events:
            break
    records = spark.createDataFrame(rows, RAW_DDL).cache()
    records.count()
    rules = decode.DecodeRules(
        registry.subject_schemas(SUBJECT), load_schema_text(), max_event_age_days=36500
    )
    timed_decode(records, rules, check=True)  # warm-up: JIT, codegen
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for check in (False, True):
            times[check].append(timed_decode(records, rules, check=check))
    print(f"{len(rows):,} events, {args.rounds} rounds each")
    for check, label in ((False, "without the check"), (True, "with the check")):
        median = statistics.median(times[check])
        print(f"  {label}: {[round(t, 2) for t in times[check]]} s, median {median:.2f} s")
    print(f"ratio {statistics.median(times[True]) / statistics.median(times[False]):.3f}")
    spark.stop()


if __name__ == "__main__":
    main()
