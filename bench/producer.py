"""Producer throughput: Avro events through EventProducer vs raw confluent-kafka, same run.

    python bench/producer.py --events 200000 --repeats 3

Both sides send the same messages (simulated OrangeScrum events; the raw side sends their
pre-encoded bytes, so payload sizes and compression are identical) with the same producer
configuration (`ingestion.producer.producer_config`) to topics of the same broker: a local
Apache Kafka broker unless --bootstrap points at another. A third side encodes with
confluent-kafka's own AvroSerializer (the path a user would write), as the peer to beat. The
ratio avro/raw is what the Avro contract costs; the target is >= 0.7. Encode-only
throughput is printed too, to show where the difference goes. Not a test: it prints figures
and the machine they were measured on; `--json PATH` also writes them as a run of
bench/results.json's shape (bench/results.py), `--quick` runs a tenth of the volume once.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.results import (
    Figure,
    Target,
    exit_on_sigterm,
    make_figure,
    new_run,
    write_script_run,
)
from ingestion.feed import event_serializer
from ingestion.producer import EventProducer, producer_config
from ingestion.simulator import SimulationConfig, simulate_history
from orangescrum.core.broker import LocalKafka
from orangescrum.core.settings import Settings

TARGET_RATIO = 0.7
QUICK_EVENTS, FULL_EVENTS = 20_000, 200_000
QUICK_REPEATS, FULL_REPEATS = 1, 3


def machine() -> str:
    """One line describing where the figures come from."""
    cpu = platform.processor() or "unknown cpu"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        memory = f", {kib / 1024**2:.0f} GiB RAM"
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores{memory}, "
        f"Python {platform.python_version()}"
    )


def load_average() -> str:
    """1/5/15-minute load averages: other work on the machine skews every figure here."""
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def sample_records(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """`count` simulated events (several seeds chained when one history is too short)."""
    records: list[dict[str, Any]] = []
    for offset in itertools.count():
        config = SimulationConfig(seed=seed + offset, companies=20, days=30)
        records += [
            d.record for d in itertools.islice(simulate_history(config), count - len(records))
        ]
        if len(records) >= count:
            return records
    raise AssertionError("unreachable")


def create_topic(settings: Settings, name: str, partitions: int) -> None:
    admin = AdminClient(settings.kafka_client_config())
    for future in admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=-1)], request_timeout=15
    ).values():
        future.result()


def timed(run: Callable[[], int]) -> float:
    """Events per second of `run`, which returns how many events it delivered."""
    started = time.perf_counter()
    delivered = run()
    return delivered / (time.perf_counter() - started)


def run_bench(settings: Settings, events: int, repeats: int, partitions: int) -> dict[str, Any]:
    serializer = event_serializer(settings)
    print(f"simulating {events:,} events ...", flush=True)
    records = sample_records(events)
    keys = [str(r["company_id"]).encode() for r in records]
    encoded = [serializer.serialize(r) for r in records]
    mean_size = statistics.fmean(len(v) for v in encoded)
    stamp = datetime.now(UTC).strftime("%H%M%S")

    def avro_side(topic: str) -> Callable[[], int]:
        def run() -> int:
            producer = EventProducer(settings, serializer, topic)
            for record in records:
                producer.send(record)
            report = producer.flush()
            if report.failed:
                raise RuntimeError(f"{report.failed} Avro messages failed: {report.errors}")
            return report.delivered

        return run

    def raw_side(topic: str) -> Callable[[], int]:
        def run() -> int:
            producer = Producer(producer_config(settings))
            delivered = failed = 0

            def on_delivery(error: Any, _message: Any) -> None:
                nonlocal delivered, failed
                if error is None:
                    delivered += 1
                else:
                    failed += 1

            for key, value in zip(keys, encoded, strict=True):
                while True:
                    try:
                        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                        break
                    except BufferError:
                        producer.poll(0.5)
                producer.poll(0)
            producer.flush(120)
            if failed or delivered != len(encoded):
                raise RuntimeError(f"raw side: {delivered} delivered, {failed} failed")
            return delivered

        return run

    def confluent_side(topic: str) -> Callable[[], int]:
        """The path a user would write: confluent-kafka's own AvroSerializer (mock registry)."""
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.avro import AvroSerializer
        from confluent_kafka.serialization import MessageField, SerializationContext

        registry = SchemaRegistryClient.new_client({"url": "mock://bench"})
        avro = AvroSerializer(registry, serializer.schema_text)
        context = SerializationContext(topic, MessageField.VALUE)

        def run() -> int:
            producer = Producer(producer_config(settings))
            for key, record in zip(keys, records, strict=True):
                value = avro(record, context)
                while True:
                    try:
                        producer.produce(topic, key=key, value=value)
                        break
                    except BufferError:
                        producer.poll(0.5)
                producer.poll(0)
            if producer.flush(120):
                raise RuntimeError("confluent side: messages left undelivered")
            return len(records)

        return run

    def encode_only() -> int:
        for record in records:
            serializer.serialize(record)
        return len(records)

    avro_rates, raw_rates, confluent_rates, encode_rates = [], [], [], []
    for repeat in range(repeats):
        # Rotate which side goes first so warm-up and broker growth favour none.
        sides = [
            ("raw", raw_rates, raw_side),
            ("avro", avro_rates, avro_side),
            ("confluent", confluent_rates, confluent_side),
        ]
        sides = sides[repeat % 3 :] + sides[: repeat % 3]
        for name, rates, side in sides:
            topic = f"bench-{name}-{stamp}-{repeat}"
            create_topic(settings, topic, partitions)
            rates.append(timed(side(topic)))
            print(f"  repeat {repeat + 1}: {name:9} {rates[-1]:>10,.0f} events/s", flush=True)
        encode_rates.append(timed(encode_only))
    return {
        "events": events,
        "mean_message_bytes": mean_size,
        "avro_events_per_s": statistics.median(avro_rates),
        "raw_events_per_s": statistics.median(raw_rates),
        "confluent_events_per_s": statistics.median(confluent_rates),
        "encode_only_events_per_s": statistics.median(encode_rates),
    }


def figures_of(figures: dict[str, Any]) -> list[Figure]:
    """The run's figures in bench/results.json's shape."""
    avro = figures["avro_events_per_s"]
    return [
        make_figure(
            "producer.avro_vs_raw",
            avro,
            "events/s",
            reference=("raw confluent-kafka produce, pre-encoded", figures["raw_events_per_s"]),
            target=Target(TARGET_RATIO, at_most=False, on_ratio=True),
        ),
        make_figure(
            "producer.avro_vs_avroserializer",
            avro,
            "events/s",
            reference=("confluent-kafka AvroSerializer", figures["confluent_events_per_s"]),
            target=Target(1.0, at_most=False, on_ratio=True),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help=f"messages per side per run (default {FULL_EVENTS:,}; --quick {QUICK_EVENTS:,})",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"runs per side, median reported (default {FULL_REPEATS}; --quick {QUICK_REPEATS})",
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of the volume, one run")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--partitions", type=int, default=3, help="partitions of each topic")
    parser.add_argument(
        "--bootstrap",
        default="",
        help="existing broker host:port (default: a local Apache Kafka broker)",
    )
    args = parser.parse_args(argv)
    args.events = args.events or (QUICK_EVENTS if args.quick else FULL_EVENTS)
    args.repeats = args.repeats or (QUICK_REPEATS if args.quick else FULL_REPEATS)

    run = new_run(quick=args.quick)
    exit_on_sigterm()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-producer-") as scratch:
        broker = (
            None
            if args.bootstrap
            else LocalKafka.from_settings(Settings(_env_file=None), Path(scratch) / "kafka").start()
        )
        bootstrap = args.bootstrap or broker.bootstrap
        try:
            settings = Settings(
                data_dir=Path(scratch), kafka_bootstrap_servers=bootstrap, _env_file=None
            )
            figures = run_bench(settings, args.events, args.repeats, args.partitions)
        finally:
            if broker is not None:
                broker.stop()

    import confluent_kafka

    ratio = figures["avro_events_per_s"] / figures["raw_events_per_s"]
    print()
    print(f"date:      {datetime.now(UTC).isoformat(timespec='seconds')}")
    print(f"machine:   {machine()}")
    print(f"load avg:  {load_before} before, {load_average()} after (1/5/15 min)")
    print(
        f"client:    confluent-kafka {confluent_kafka.__version__} "
        f"(librdkafka {confluent_kafka.libversion()[0]}); broker "
        f"{'local Apache Kafka (KRaft, one broker)' if broker else bootstrap}"
    )
    print(
        f"workload:  {figures['events']:,} events x {args.repeats} runs per side, "
        f"{figures['mean_message_bytes']:.0f} B mean Avro message, {args.partitions} partitions"
    )
    print(f"raw bytes: {figures['raw_events_per_s']:>10,.0f} events/s (median)")
    print(f"Avro:      {figures['avro_events_per_s']:>10,.0f} events/s (median, EventProducer)")
    print(
        f"peer:      {figures['confluent_events_per_s']:>10,.0f} events/s (median, "
        "confluent-kafka's AvroSerializer)"
    )
    print(f"encode:    {figures['encode_only_events_per_s']:>10,.0f} events/s (Avro encode only)")
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    print(f"ratio:     {ratio:.2f} Avro/raw ({verdict} the >= {TARGET_RATIO} target)")
    peer = figures["avro_events_per_s"] / figures["confluent_events_per_s"]
    verdict = "at least as fast as" if peer >= 1 else "slower than"
    print(f"vs peer:   {peer:.2f} EventProducer/AvroSerializer ({verdict} the peer)")
    if args.json:
        write_script_run(args.json, run, figures_of(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
