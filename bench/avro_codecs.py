"""Avro encode/decode rates of the event contract, without Kafka: where the producer's time goes.

    python bench/avro_codecs.py --events 50000

Encodes simulated events with fastavro as plain dicts, with fastavro through the project's
serializer (optional payloads named by their union branch), and with `cavro` when it is
importable (not a project dependency: install it in a scratch venv to compare); checks that
every codec writes the same bytes, then decodes them back. Prints records/s per codec. Not a
test: it prints figures and the machine they were measured on.
"""

from __future__ import annotations

import argparse
import io
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastavro

from bench.producer import machine
from ingestion.serde import EventSerializer
from ingestion.simulator import SimulationConfig, simulate_history
from orangescrum.core.contract.schema import load_schema_text, parse_schema_text


def rate(label: str, count: int, run: Callable[[], Any], repeats: int) -> Any:
    """Best of `repeats` runs (the least disturbed by other work on the machine)."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    print(f"  {label:<44} {count / best:>10,.0f} records/s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()

    history = simulate_history(SimulationConfig(seed=7, companies=40, days=14))
    records = [delivery.record for delivery in itertools.islice(history, arguments.events)]
    schema_text = load_schema_text()
    parsed = parse_schema_text(schema_text)
    serializer = EventSerializer(schema_id=1, schema_text=schema_text)
    print(f"machine: {machine()}")
    print(f"{len(records):,} simulated events, newest contract version")

    def fastavro_plain() -> list[bytes]:
        bodies = []
        for record in records:
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, parsed, record)
            bodies.append(buffer.getvalue())
        return bodies

    print("encode")
    plain = rate("fastavro, plain dicts", len(records), fastavro_plain, arguments.repeats)
    named = rate(
        "fastavro, union branches named (serializer)",
        len(records),
        lambda: [serializer.serialize(record)[5:] for record in records],
        arguments.repeats,
    )
    assert named == plain, "naming union branches changed the bytes"
    try:
        import cavro
    except ImportError:
        cavro = None
        print("  cavro                                        not installed (pip install cavro)")
    if cavro is not None:
        cavro_schema = cavro.Schema(schema_text)
        encoded = rate(
            "cavro",
            len(records),
            lambda: [cavro_schema.binary_encode(record) for record in records],
            arguments.repeats,
        )
        assert encoded == plain, "cavro wrote other bytes than fastavro"

    print("decode")
    rate(
        "fastavro",
        len(plain),
        lambda: [fastavro.schemaless_reader(io.BytesIO(body), parsed) for body in plain],
        arguments.repeats,
    )
    if cavro is not None:
        rate(
            "cavro",
            len(plain),
            lambda: [cavro_schema.binary_decode(body) for body in plain],
            arguments.repeats,
        )


if __name__ == "__main__":
    main()
