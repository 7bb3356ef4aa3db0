"""Building blocks of the live-stream failure tests: a stream process, a live producer, the lake.

`start_stream` runs the stream as a subprocess (driver, JVM and Python workers in their own
process groups), exactly as `orangescrum stream` does, so a test can SIGKILL its whole tree;
tests that only need it running use conftest's in-process `live_stream`. The producer is the
application's own configuration (`ingestion.producer.producer_config`: idempotent, acks=all)
on a background thread, and it records which messages Kafka acknowledged, the only ones the
pipeline owes the lake.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from ingestion.faults import BAD_KINDS, EXPECTED_REASON, make_bad_message
from ingestion.producer import producer_config
from ingestion.serde import EventSerializer
from orangescrum import REPO_ROOT
from orangescrum.core.contract.registry import registry_for
from orangescrum.core.contract.schema import SUBJECT, load_schema_text
from orangescrum.core.settings import Settings
from orangescrum.health import EVENTS_ROLE, kafka_state, stream_state
from tests.ingestion.test_serde import FULL_EVENT

if TYPE_CHECKING:  # conftest imports this module
    from tests.reliability.conftest import RunningStream

START_TIMEOUT = 120

STREAM_SCRIPT = """
import sys

from orangescrum.core.logs import configure_logging
from orangescrum.core.settings import Settings
from spark.session import build_session
from spark.stream import run_stream

configure_logging("INFO")
settings = Settings(_env_file=None)
spark = build_session(settings, "orangescrum-reliability-test")
totals = run_stream(spark, settings, available_now=sys.argv[1] == "available-now")
print(f"landed {totals.rows_landed} in {totals.batches} batches", flush=True)
spark.stop()
"""

# Kinds of bad message the contract knows beyond ingestion/faults.py's, and their reason.
EXTRA_BAD_REASON = {
    "tombstone": "empty_value",
    "truncated_avro_body": "avro_decode_error",
    "unknown_event_type": "unknown_event_type",
    "key_mismatch": "key_mismatch",
}
BAD_REASON = dict(EXPECTED_REASON) | EXTRA_BAD_REASON
ALL_BAD_KINDS = (*BAD_KINDS, *EXTRA_BAD_REASON)


def event_id(number: int) -> str:
    return f"{number:08d}-0000-4000-8000-000000000000"


def event_record(number: int, now: datetime, **changes: Any) -> dict[str, Any]:
    """A valid event numbered `number`, within the stream's age window of `now`."""
    return (
        FULL_EVENT
        | {
            "event_id": event_id(number),
            "company_id": 1 + number % 4,
            "event_timestamp": now - timedelta(hours=number % 50),
        }
        | changes
    )


def serializer_for(settings: Settings, version: int | None = None) -> EventSerializer:
    """A producer's serializer for contract `version` (default: the newest)."""
    registry = registry_for(
        settings.schema_registry_url, settings.schema_registry_basic_auth.get_secret_value()
    )
    return EventSerializer.registered(registry, SUBJECT, load_schema_text(version))


@dataclass(frozen=True)
class Outgoing:
    """One Kafka message a test sends: a good event (its id) or a bad one (its kind)."""

    key: bytes | None
    value: bytes | None
    event_id: str | None = None
    bad_kind: str | None = None


def good_messages(
    serializer: EventSerializer, first: int, count: int, **changes: Any
) -> list[Outgoing]:
    now = datetime.now(UTC)
    messages = []
    for number in range(first, first + count):
        record = event_record(number, now, **changes)
        messages.append(
            Outgoing(
                str(record["company_id"]).encode(), serializer.serialize(record), record["event_id"]
            )
        )
    return messages


def bad_message(kind: str, serializer: EventSerializer, rng: random.Random) -> Outgoing:
    """A message of `kind` (ALL_BAD_KINDS) that only breaks the one rule its reason names."""
    template = event_record(rng.randrange(10_000_000, 20_000_000), datetime.now(UTC))
    key = str(template["company_id"]).encode()
    match kind:
        case "tombstone":
            return Outgoing(key, None, bad_kind=kind)
        case "truncated_avro_body":
            # The framing names a known schema; the body stops in the middle of a record.
            return Outgoing(key, serializer.serialize(template)[:24], bad_kind=kind)
        case "unknown_event_type":
            value = serializer.serialize(template | {"event_type": "task_teleported"})
            return Outgoing(key, value, bad_kind=kind)
        case "key_mismatch":
            return Outgoing(b"999", serializer.serialize(template), bad_kind=kind)
    made = make_bad_message(kind, template, serializer, rng)
    return Outgoing(made.key, made.value, bad_kind=kind)


Tick = Callable[[int], list[Outgoing]]


class LiveProducer:
    """Sends tick(n) for n = 0, 1, ... every `interval` seconds on a background thread.

    One librdkafka producer with the application's settings for the producer's whole life,
    as the app keeps one. `acked` holds what Kafka acknowledged, `failed` what it did not;
    numbering goes on across start/stop, so a restarted producer never reuses an event id.
    """

    def __init__(
        self,
        settings: Settings,
        tick: Tick,
        *,
        interval: float = 1.0,
        ticks_per_run: int | None = None,
    ) -> None:
        self.settings = settings
        self.tick = tick
        self.interval = interval
        self.ticks_per_run = ticks_per_run
        self.acked: list[Outgoing] = []
        self.failed: list[tuple[Outgoing, str]] = []
        self.ticks = 0
        self._producer = Producer(producer_config(settings) | {"log_level": 0})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def ids(self) -> list[str]:
        """Acknowledged good events, in acknowledgement order."""
        return [m.event_id for m in self.acked if m.event_id is not None]

    @property
    def sent_ids(self) -> list[str]:
        """Every good event handed to Kafka, acknowledged or not."""
        sent = [*self.acked, *(message for message, _ in self.failed)]
        return [m.event_id for m in sent if m.event_id is not None]

    def bad_by_reason(self) -> dict[str, int]:
        reasons = Counter(BAD_REASON[m.bad_kind] for m in self.acked if m.bad_kind is not None)
        return dict(reasons)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = None if self.ticks_per_run is None else self.ticks + self.ticks_per_run
        try:
            while not self._stop.is_set() and (last is None or self.ticks < last):
                for message in self.tick(self.ticks):
                    self._send(message)
                self.ticks += 1
                self._producer.poll(0)
                self._stop.wait(self.interval)
            self._flush()
        except BaseException as error:  # surfaced by stop()
            self._error = error

    def _send(self, message: Outgoing) -> None:
        def delivered(error: KafkaError | None, _: Message) -> None:
            if error is None:
                self.acked.append(message)
            else:
                self.failed.append((message, error.str()))

        while True:
            try:
                self._producer.produce(
                    self.settings.topic_events,
                    key=message.key,
                    value=message.value,
                    on_delivery=delivered,
                )
                return
            except BufferError:
                self._producer.poll(0.5)

    def _flush(self) -> None:
        remaining = self._producer.flush(120)
        if remaining:
            raise AssertionError(f"{remaining} messages neither acknowledged nor failed in 120 s")

    def wait(self) -> None:
        """Until this run has sent its ticks_per_run ticks and flushed them."""
        assert self.ticks_per_run is not None, "an open-ended run only ends by stop()"
        if self._thread is not None:
            self._thread.join(timeout=self.ticks_per_run * self.interval + 180)
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=180)
            assert not self._thread.is_alive(), "the producer did not finish flushing"
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error


def good_ticks(serializer: EventSerializer, per_tick: int) -> Tick:
    """A tick of `per_tick` good events, numbered on from the previous tick's."""

    def tick(number: int) -> list[Outgoing]:
        return good_messages(serializer, number * per_tick, per_tick)

    return tick


def start_traffic_and_stream(
    settings: Settings,
    tick: Tick,
    live_stream: Callable[[Settings], RunningStream],
    more_ticks: int | None,
) -> tuple[LiveProducer, RunningStream]:
    """A live producer of `tick` and a continuous stream (conftest's `live_stream`).

    Tick 0 is produced and flushed before the stream starts, so the stream is up and through
    a first micro-batch before the rest of the traffic. Then the producer sends `more_ticks`
    more ticks and flushes them (waited for here), or with None keeps producing until the test
    stops it.
    """
    producer = LiveProducer(settings, tick, ticks_per_run=1)
    producer.start()
    producer.wait()
    stream = live_stream(settings)
    stream.wait_for_batch()
    producer.ticks_per_run = more_ticks
    producer.start()
    if more_ticks is not None:
        producer.wait()
    return producer, stream


def stop_when_acknowledged_landed(
    stream: RunningStream, producer: LiveProducer, settings: Settings
) -> None:
    """Until every event Kafka acknowledged is in the lake; then stop the stream, which must
    still be running."""
    stream.wait_until(
        lambda: set(producer.ids) <= {row[0] for row in lake_rows(settings)},
        "not every acknowledged event landed",
    )
    assert stream.alive
    stream.stop()


def stream_env(settings: Settings, max_events_per_batch: int) -> dict[str, str]:
    return dict(os.environ) | {
        "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "ORANGESCRUM_TOPIC_EVENTS": settings.topic_events,
        "ORANGESCRUM_TOPIC_DEAD_LETTER": settings.topic_dead_letter,
        "ORANGESCRUM_DATA_DIR": str(settings.data_dir),
        "ORANGESCRUM_TRIGGER_SECONDS": "1",
        "ORANGESCRUM_MAX_EVENTS_PER_BATCH": str(max_events_per_batch),
        "ORANGESCRUM_SPARK_MASTER": "local[2]",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


def start_stream(
    settings: Settings, mode: str, log_file: Path, max_events_per_batch: int = 400
) -> subprocess.Popen[bytes]:
    """`mode` "continuous" or "available-now"; output appended to log_file."""
    with log_file.open("ab") as log_stream:
        return subprocess.Popen(
            [sys.executable, "-c", STREAM_SCRIPT, mode],
            env=stream_env(settings, max_events_per_batch),
            cwd=REPO_ROOT,
            stdout=log_stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: driver + JVM
        )


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the driver, the JVM and every Python worker, all at once, like a power cut.

    PySpark's worker daemon moves itself to its own process group, so killing the stream's
    group alone would leave workers that could finish a write after the kill: every process
    group of the tree is killed.
    """
    import psutil

    groups = {process.pid}
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error, OSError):
                groups.add(os.getpgid(child.pid))
    groups.discard(os.getpgrp())  # never this test's own group
    for group in sorted(groups, key=lambda pgid: pgid != process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    process.wait(timeout=30)


def batches_started(settings: Settings) -> int:
    """Micro-batches recorded as finished (metrics) across every run so far."""
    return len(list(Path(settings.lake.metrics).glob("*.parquet")))


def tail(log_file: Path, lines: int = 60) -> str:
    """The end of the stream's log, without librdkafka's reconnect chatter."""
    kept = [line for line in log_file.read_text().splitlines() if "rdkafka" not in line]
    return "\n".join(kept[-lines:])


def wait_for_progress(
    process: subprocess.Popen[bytes], settings: Settings, baseline: int, log_file: Path
) -> None:
    """Until a micro-batch beyond `baseline` finished, failing if the stream exits first."""
    wait_until(
        lambda: batches_started(settings) > baseline,
        process,
        log_file,
        START_TIMEOUT,
        "no micro-batch",
    )


def wait_until(
    done: Callable[[], bool],
    process: subprocess.Popen[bytes],
    log_file: Path,
    timeout: float,
    what: str,
) -> None:
    """Poll done() while the stream runs; fail naming `what` on exit or timeout."""
    deadline = time.monotonic() + timeout
    while not done():
        if process.poll() is not None:
            pytest.fail(f"stream exited with {process.returncode}; log:\n{tail(log_file)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f}s; log:\n{tail(log_file)}")
        time.sleep(0.5)


def lake_rows(settings: Settings, columns: str = "event_id") -> list[tuple[Any, ...]]:
    """Rows of the landed events as a plain Parquet reader (DuckDB, no Spark) sees them."""
    return _day_folder_rows(Path(settings.lake.raw_events), columns, "hive_partitioning = true")


def dead_letter_rows(settings: Settings, columns: str) -> list[tuple[Any, ...]]:
    return _day_folder_rows(Path(settings.lake.dead_letters), columns)


def _day_folder_rows(folder: Path, columns: str, *options: str) -> list[tuple[Any, ...]]:
    """`columns` of the Parquet files in the day folders under `folder` ([] when none)."""
    if not any(folder.glob("*/*.parquet")):
        return []
    arguments = ", ".join((f"'{folder}/*/*.parquet'", *options))
    with duckdb.connect() as connection:
        return connection.execute(f"select {columns} from read_parquet({arguments})").fetchall()


def dlq_topic_reasons(settings: Settings) -> dict[str, int]:
    """Messages per `reason` header on the dead-letter topic, read to its end."""
    consumer = Consumer(
        settings.kafka_client_config()
        | {"group.id": "reliability-dlq", "enable.partition.eof": True, "log_level": 0}
    )
    partitions = range(settings.topic_partitions)
    consumer.assign([TopicPartition(settings.topic_dead_letter, p, 0) for p in partitions])
    reasons: Counter[str] = Counter()
    at_end: set[int] = set()
    try:
        while len(at_end) < len(partitions):
            message = consumer.poll(10)
            assert message is not None, "the dead-letter topic did not reach its end"
            error = message.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error.str()
                at_end.add(message.partition())
                continue
            reasons[dict(message.headers() or [])["reason"].decode()] += 1
    finally:
        consumer.close()
    return dict(reasons)


def events_lag(settings: Settings) -> int | None:
    """Records on the events topic past the checkpoint's committed offsets, as `status` shows."""
    topic = kafka_state(settings, stream_state(settings), timeout=10).topic(EVENTS_ROLE)
    return None if topic is None else topic.lag_total


def assert_exactly_once(landed: Iterable[str], acked: Iterable[str], sent: Iterable[str]) -> None:
    """Every acknowledged event landed once; nothing landed twice or that was never sent."""
    counts = Counter(landed)
    acked_set, sent_set = set(acked), set(sent)
    doubled = sorted(e for e, n in counts.items() if n > 1)
    missing = sorted(acked_set - counts.keys())
    unknown = sorted(counts.keys() - sent_set)
    assert (doubled, missing, unknown) == ([], [], []), (
        f"of {len(acked_set)} acknowledged events, {len(doubled)} landed more than once "
        f"(e.g. {doubled[:3]}), {len(missing)} never landed (e.g. {missing[:3]}), "
        f"{len(unknown)} landed without being sent (e.g. {unknown[:3]})"
    )
