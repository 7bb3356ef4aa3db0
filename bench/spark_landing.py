"""Spark landing: throughput against a raw Kafka read, live latency, and memory.

    python bench/spark_landing.py --events 200000 --live-seconds 30 --rate 2000

Two phases against one broker (a local Apache Kafka broker unless --bootstrap) and one SparkSession:

1. Throughput. `--events` simulated events go to a fresh topic. A plain confluent-kafka
   consumer reads them to the end (the ceiling: no decoding, no writing), then the landing
   stream drains the same topic with Trigger.AvailableNow. Ratio = Spark events/s / raw
   events/s, target >= 0.5.
2. Live. The stream runs continuously (processing-time trigger `--trigger-seconds`) while
   events are produced at `--rate` per second for `--live-seconds`. A watcher polls the lake
   and, when a Parquet file appears, reads its event_ids: latency = file visible time - the
   time that event was handed to the producer. Target p95 <= 1.5 s.

Peak RSS covers this process (the driver) plus its children (the JVM, Python workers and the
local broker; a --bootstrap broker is no child, so not counted), sampled every 0.25 s; target
<= 4 GiB. Not a test: it prints figures and the
machine they were measured on; `--json PATH` also writes them as a run of bench/results.json's
shape (bench/results.py), `--quick` runs a tenth of the volume (20,000 events, 10 s live).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow.parquet as pq
from confluent_kafka import Consumer, KafkaError, TopicPartition

from bench.producer import load_average, machine, sample_records
from bench.results import (
    Figure,
    Target,
    exit_on_sigterm,
    make_figure,
    new_run,
    write_script_run,
)
from ingestion.feed import event_serializer
from ingestion.producer import EventProducer
from orangescrum.core.broker import LocalKafka
from orangescrum.core.logs import configure_logging
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics

TARGET_RATIO = 0.5
TARGET_P95_SECONDS = 1.5
TARGET_RSS_MIB = 4096
QUICK_EVENTS, FULL_EVENTS = 20_000, 200_000
QUICK_LIVE_SECONDS, FULL_LIVE_SECONDS = 10.0, 30.0


# --- memory -------------------------------------------------------------------------------------
def tree_rss_bytes(pid: int) -> int:
    """RSS of a process and all its descendants (psutil if installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        return _proc_tree_rss(pid)
    total = 0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
    return total


def _proc_tree_rss(pid: int) -> int:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        pending += children.get(current, [])
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class PeakRss:
    """Samples the RSS of this process tree in the background; `peak` is the maximum seen."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes(os.getpid()))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- phase 1: throughput ------------------------------------------------------------------------
def produce_all(settings: Settings, records: list[dict[str, Any]]) -> None:
    producer = EventProducer(settings, event_serializer(settings), settings.topic_events)
    for record in records:
        producer.send(record)
    report = producer.flush(120)
    if report.failed:
        raise RuntimeError(f"{report.failed} events not delivered: {report.errors}")


def raw_consume(settings: Settings) -> tuple[int, float]:
    """Read the whole topic with a bare consumer; (messages, seconds)."""
    consumer = Consumer(
        settings.kafka_client_config()
        | {"group.id": f"bench-{uuid.uuid4().hex[:6]}", "enable.partition.eof": True}
        | {"enable.auto.commit": False, "log_level": 3}
    )
    partitions = sorted(
        consumer.list_topics(settings.topic_events, timeout=10)
        .topics[settings.topic_events]
        .partitions
    )
    consumer.assign([TopicPartition(settings.topic_events, p, 0) for p in partitions])
    pending, messages = set(partitions), 0
    started = time.perf_counter()
    while pending:
        for message in consumer.consume(num_messages=10_000, timeout=0.2):
            error = message.error()
            if error is None:
                messages += 1
            elif error.code() == KafkaError._PARTITION_EOF:
                pending.discard(message.partition())
            else:
                raise RuntimeError(f"consume failed: {error}")
    elapsed = time.perf_counter() - started
    consumer.close()
    return messages, elapsed


def metrics_rows(settings: Settings) -> list[dict[str, Any]]:
    files = sorted(Path(settings.lake.metrics).glob("*.parquet"))
    rows = [row for path in files for row in pq.read_table(path).to_pylist()]
    return sorted(rows, key=lambda row: row["batch_id"])


def throughput_phase(spark: Any, settings: Settings, events: int) -> dict[str, Any]:
    from spark.stream import run_stream

    create_topics(settings)
    print(f"[1/2] producing {events:,} events to {settings.topic_events} ...", flush=True)
    produce_all(settings, sample_records(events))
    messages, raw_seconds = raw_consume(settings)
    print(f"      raw consume: {messages:,} messages in {raw_seconds:.2f}s", flush=True)
    started = time.perf_counter()
    totals = run_stream(spark, settings, available_now=True)
    spark_seconds = time.perf_counter() - started
    print(
        f"      Spark landing: {totals.rows_landed:,} events in {spark_seconds:.1f}s, "
        f"{totals.batches} batches",
        flush=True,
    )
    batches = metrics_rows(settings)
    steady = batches[1:] or batches
    return {
        "events": messages,
        "landed": totals.rows_landed,
        "raw_per_s": messages / raw_seconds,
        "spark_per_s": totals.rows_landed / spark_seconds,
        "spark_seconds": spark_seconds,
        "batches": totals.batches,
        "first_batch_seconds": batches[0]["duration_seconds"] if batches else 0.0,
        "steady_batch_per_s": sum(b["rows_landed"] for b in steady)
        / max(sum(b["duration_seconds"] for b in steady), 1e-9),
    }


# --- phase 2: live latency ----------------------------------------------------------------------
class LakeWatcher:
    """Polls raw/events for new files; records when each event_id first became visible."""

    def __init__(self, events_dir: Path, interval: float = 0.05) -> None:
        self.events_dir = events_dir
        self.interval = interval
        self.visible_at: dict[str, float] = {}
        self._seen_files: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.scan()
            self._stop.wait(self.interval)

    def scan(self) -> None:
        if not self.events_dir.is_dir():
            return
        now = time.time()
        for day in os.scandir(self.events_dir):
            if not day.is_dir():
                continue
            for entry in os.scandir(day.path):
                name = entry.name
                if name.startswith(".") or not name.endswith(".parquet"):
                    continue
                if entry.path in self._seen_files:
                    continue
                self._seen_files.add(entry.path)
                for event_id in pq.read_table(entry.path, columns=["event_id"])[
                    "event_id"
                ].to_pylist():
                    self.visible_at.setdefault(event_id, now)

    def start(self) -> LakeWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def live_phase(
    spark: Any, settings: Settings, rate: float, seconds: float, warmup_timeout: float
) -> dict[str, Any]:
    from spark.stream import run_stream

    create_topics(settings)
    records = sample_records(int(rate * seconds) + 500, seed=1_000)
    producer = EventProducer(settings, event_serializer(settings), settings.topic_events)
    sent_at: dict[str, float] = {}

    def send(record: dict[str, Any]) -> str:
        event_id = str(uuid.uuid4())
        sent_at[event_id] = time.time()
        producer.send(record | {"event_id": event_id})
        return event_id

    failure: list[BaseException] = []

    def stream() -> None:
        try:
            run_stream(spark, settings, available_now=False)
        except BaseException as error:  # reported after the phase
            failure.append(error)

    watcher = LakeWatcher(Path(settings.lake.raw_events)).start()
    streaming = threading.Thread(target=stream, daemon=True)
    streaming.start()
    try:
        # Warm-up: the first batch of a fresh query is slow (Python workers, JIT); not measured.
        warmup = [send(record) for record in records[:200]]
        producer.flush()
        print(f"[2/2] warm-up: waiting for the first {len(warmup)} events to land ...", flush=True)
        if not wait_until(lambda: all(e in watcher.visible_at for e in warmup), warmup_timeout):
            raise RuntimeError(f"warm-up events not visible within {warmup_timeout:.0f}s")
        print(
            f"      producing {rate:,.0f} events/s for {seconds:.0f}s "
            f"(trigger {settings.trigger_seconds}s) ...",
            flush=True,
        )
        measured: list[str] = []
        started = time.monotonic()
        backlog = iter(records[200:])
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) - len(measured)
            for _ in range(due):
                measured.append(send(next(backlog)))
            time.sleep(0.005)
        produce_seconds = time.monotonic() - started
        producer.flush()
        landed = wait_until(lambda: all(e in watcher.visible_at for e in measured), 120)
        phases = trigger_phase_medians(spark)
    finally:
        stop_between_batches(spark)
        streaming.join(timeout=60)
        watcher.stop()
    if failure:
        raise failure[0]
    latencies = sorted(
        watcher.visible_at[e] - sent_at[e] for e in measured if e in watcher.visible_at
    )
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "events": len(measured),
        "rate": len(measured) / produce_seconds,
        "missing": len(measured) - len(latencies),
        "all_landed": landed,
        "p50": cuts[49],
        "p95": cuts[94],
        "p99": cuts[98],
        "max": latencies[-1],
        "batches": len(metrics_rows(settings)),
        "trigger_phases_ms": phases,
    }


def trigger_phase_medians(spark: Any) -> dict[str, float]:
    """Median milliseconds per trigger phase (Spark's durationMs) over the live batches."""
    phases: dict[str, list[float]] = {}
    for query in spark.streams.active:
        for progress in query.recentProgress[1:]:  # batch 0 is the warm-up
            if progress.numInputRows:
                for phase, millis in progress.durationMs.items():
                    phases.setdefault(phase, []).append(millis)
    return {phase: statistics.median(values) for phase, values in sorted(phases.items())}


def stop_between_batches(spark: Any, timeout: float = 60) -> None:
    """Stop the live query once no trigger is running (a stop mid-batch logs a scary trace)."""
    logging.getLogger("py4j").setLevel(logging.CRITICAL)
    for query in spark.streams.active:
        wait_until(lambda q=query: not q.status["isTriggerActive"], timeout)
        query.stop()


# --- figures ------------------------------------------------------------------------------------
def figures_of(
    throughput: dict[str, Any] | None,
    live: dict[str, Any] | None,
    peak_rss_bytes: int,
    rate: float,
    *,
    own_broker: bool = True,
) -> list[Figure]:
    """The run's figures in bench/results.json's shape (those of the phases that ran).
    `own_broker`: the broker was this process's child, so its RSS is in the peak."""
    figures = []
    if throughput:
        figures.append(
            make_figure(
                "spark.landing_vs_raw_consumer",
                throughput["spark_per_s"],
                "events/s",
                reference=("bare confluent-kafka consumer", throughput["raw_per_s"]),
                target=Target(TARGET_RATIO, at_most=False, on_ratio=True),
            )
        )
    if live:
        missing = f"{live['missing']:,} of {live['events']:,} events never landed"
        figures.append(
            make_figure(
                "spark.live_latency_p95",
                live["p95"],
                "s",
                target=Target(TARGET_P95_SECONDS, at_most=True, unit="s"),
                note=f"event -> lake file at {rate:,.0f} events/s"
                + (f"; {missing}" if live["missing"] else ""),
            )
        )
    figures.append(
        make_figure(
            "stack.peak_rss",
            peak_rss_bytes / 1024**2,
            "MiB",
            target=Target(TARGET_RSS_MIB, at_most=True, unit="MiB"),
            note="driver + JVM + Python workers"
            + (" + broker" if own_broker else " (an existing broker, not counted)")
            + ", peak over the run",
        )
    )
    return figures


# --- main ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help=f"events for phase 1 (default {FULL_EVENTS:,}; --quick {QUICK_EVENTS:,})",
    )
    parser.add_argument(
        "--max-events-per-batch", type=int, default=50_000, help="phase 1 batch size"
    )
    parser.add_argument("--rate", type=float, default=2_000, help="phase 2 events per second")
    parser.add_argument(
        "--live-seconds",
        type=float,
        default=None,
        help=f"phase 2 seconds (default {FULL_LIVE_SECONDS:.0f}; --quick {QUICK_LIVE_SECONDS:.0f})",
    )
    parser.add_argument(
        "--trigger-seconds", type=float, default=0.5, help="phase 2 processing-time trigger"
    )
    parser.add_argument("--master", default="local[*]", help="Spark master")
    parser.add_argument("--skip-throughput", action="store_true", help="run phase 2 only")
    parser.add_argument("--skip-live", action="store_true", help="run phase 1 only")
    parser.add_argument(
        "--bootstrap",
        default="",
        help="existing broker host:port (default: a local Apache Kafka broker)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every micro-batch")
    parser.add_argument("--quick", action="store_true", help="a tenth of the volume")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    args.events = args.events or (QUICK_EVENTS if args.quick else FULL_EVENTS)
    full_or_quick_live = QUICK_LIVE_SECONDS if args.quick else FULL_LIVE_SECONDS
    args.live_seconds = args.live_seconds or full_or_quick_live
    run = new_run(quick=args.quick)
    exit_on_sigterm()
    configure_logging("INFO" if args.verbose else "WARNING")

    from spark.session import build_session

    stamp = datetime.now(UTC).strftime("%H%M%S")
    load_before = load_average()
    throughput: dict[str, Any] | None = None
    live: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="bench-landing-") as scratch_dir:
        scratch = Path(scratch_dir)
        broker = (
            None
            if args.bootstrap
            else LocalKafka.from_settings(Settings(_env_file=None), scratch / "kafka").start()
        )
        try:
            base = Settings(
                data_dir=scratch / "throughput",
                kafka_bootstrap_servers=args.bootstrap or broker.bootstrap,
                topic_events=f"bench-landing-{stamp}",
                topic_dead_letter=f"bench-landing-dlq-{stamp}",
                max_events_per_batch=args.max_events_per_batch,
                spark_master=args.master,
                _env_file=None,
            )
            with PeakRss() as memory:
                started = time.perf_counter()
                spark = build_session(base, "bench-spark-landing")
                session_seconds = time.perf_counter() - started
                if not args.skip_throughput:
                    throughput = throughput_phase(spark, base, args.events)
                throughput_peak = memory.peak
                if not args.skip_live:
                    live_settings = base.model_copy(
                        update={
                            "data_dir": scratch / "live",
                            "topic_events": f"bench-live-{stamp}",
                            "topic_dead_letter": f"bench-live-dlq-{stamp}",
                            "trigger_seconds": args.trigger_seconds,
                            "max_events_per_batch": max(args.max_events_per_batch, 1),
                        }
                    )
                    live = live_phase(
                        spark, live_settings, args.rate, args.live_seconds, warmup_timeout=180
                    )
                spark.stop()
        finally:
            if broker is not None:
                broker.stop()

    import pyspark

    print()
    print(f"date:        {datetime.now(UTC).isoformat(timespec='seconds')}")
    print(f"machine:     {machine()}")
    print(f"load avg:    {load_before} before, {load_average()} after (1/5/15 min)")
    print(
        f"stack:       pyspark {pyspark.__version__}, master {args.master}, broker "
        f"{args.bootstrap or 'local Apache Kafka (KRaft, one broker)'}; session start "
        f"{session_seconds:.1f}s"
    )
    if throughput:
        ratio = throughput["spark_per_s"] / throughput["raw_per_s"]
        print(
            f"throughput:  {throughput['events']:,} events, batches of "
            f"{args.max_events_per_batch:,} ({throughput['batches']} batches)"
        )
        print(f"  raw consume   {throughput['raw_per_s']:>10,.0f} events/s")
        print(
            f"  Spark landing {throughput['spark_per_s']:>10,.0f} events/s end to end "
            f"({throughput['spark_seconds']:.1f}s incl. first batch "
            f"{throughput['first_batch_seconds']:.1f}s); "
            f"{throughput['steady_batch_per_s']:,.0f} events/s inside later batches"
        )
        verdict = "meets" if ratio >= TARGET_RATIO else "misses"
        print(f"  ratio         {ratio:.2f} Spark/raw ({verdict} the >= {TARGET_RATIO} target)")
        print(f"  peak RSS      {throughput_peak / 1024**2:,.0f} MiB (driver + JVM + workers)")
    if live:
        verdict = "meets" if live["p95"] <= TARGET_P95_SECONDS else "misses"
        print(
            f"live:        {live['events']:,} events at {live['rate']:,.0f} events/s, trigger "
            f"{args.trigger_seconds}s, {live['batches']} batches, {live['missing']} not landed"
        )
        print(
            f"  latency       p50 {live['p50']:.2f}s  p95 {live['p95']:.2f}s  "
            f"p99 {live['p99']:.2f}s  max {live['max']:.2f}s "
            f"({verdict} the p95 <= {TARGET_P95_SECONDS}s target)"
        )
        phases = ", ".join(f"{k} {v / 1000:.1f}s" for k, v in live["trigger_phases_ms"].items())
        print(f"  trigger       median per batch: {phases}")
        print(f"  peak RSS      {memory.peak / 1024**2:,.0f} MiB over both phases")
    if args.json:
        figures = figures_of(
            throughput, live, memory.peak, args.rate, own_broker=not args.bootstrap
        )
        write_script_run(args.json, run, figures)
    return 0


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
