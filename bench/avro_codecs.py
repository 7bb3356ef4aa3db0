"""Avro encode/decode rates of the event contract, without Kafka: where the producer's time goes.

    python bench/avro_codecs.py --events 50000

Encodes simulated events with fastavro as plain dicts, with fastavro through the project's
serializer (optional payloads named by their union branch), and with `cavro` when it is
importable (not a project dependency: install it in a scratch venv to compare); checks that
every codec writes the same bytes, then decodes them back. Prints records/s per codec. Not a
test: it prints figures and the machine they were measured on; `--json PATH` also writes them as
a run of bench/results.json's shape (bench/results.py). Diagnostic: bench/run_all.py does not
run it.
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
from bench.results import Figure, make_figure, new_run, write_script_run
from ingestion.serde import EventSerializer
from ingestion.simulator import SimulationConfig, simulate_history
from orangescrum.core.contract.schema import load_schema_text, parse_schema_text


class Rates:
    """Records/s per codec, printed as measured and kept as figures for --json."""

    def __init__(self) -> None:
        self.figures: list[Figure] = []

    def measure(
        self, name: str, label: str, count: int, run: Callable[[], Any], repeats: int
    ) -> Any:
        """Best of `repeats` runs (the least disturbed by other work on the machine)."""
        best = float("inf")
        result = None
        for _ in range(repeats):
            started = time.perf_counter()
            result = run()
            best = min(best, time.perf_counter() - started)
        print(f"  {label:<44} {count / best:>10,.0f} records/s")
        self.figures.append(make_figure(f"avro_codecs.{name}", count / best, "records/s"))
        return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=None, help="default 50000; --quick 5000")
    parser.add_argument("--repeats", type=int, default=None, help="default 3; --quick 1")
    parser.add_argument("--quick", action="store_true", help="a tenth of the volume, one run")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    arguments = parser.parse_args(argv)
    arguments.events = arguments.events or (5_000 if arguments.quick else 50_000)
    arguments.repeats = arguments.repeats or (1 if arguments.quick else 3)
    run = new_run(quick=arguments.quick)
    rates = Rates()

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
    plain = rates.measure(
        "encode.fastavro_plain",
        "fastavro, plain dicts",
        len(records),
        fastavro_plain,
        arguments.repeats,
    )
    named = rates.measure(
        "encode.fastavro_named",
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
        encoded = rates.measure(
            "encode.cavro",
            "cavro",
            len(records),
            lambda: [cavro_schema.binary_encode(record) for record in records],
            arguments.repeats,
        )
        assert encoded == plain, "cavro wrote other bytes than fastavro"

    print("decode")
    rates.measure(
        "decode.fastavro",
        "fastavro",
        len(plain),
        lambda: [fastavro.schemaless_reader(io.BytesIO(body), parsed) for body in plain],
        arguments.repeats,
    )
    if cavro is not None:
        rates.measure(
            "decode.cavro",
            "cavro",
            len(plain),
            lambda: [cavro_schema.binary_decode(body) for body in plain],
            arguments.repeats,
        )
    if arguments.json:
        write_script_run(arguments.json, run, rates.figures)


if __name__ == "__main__":
    main()
