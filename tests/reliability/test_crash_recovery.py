"""Kill -9 the running stream again and again: plain Parquet readers still see every event once.

The stream runs as a subprocess (driver, JVM and Python workers), continuous trigger, small
batches, while a live producer keeps producing. In each of five rounds, at a seeded random
moment, the whole process tree gets SIGKILL and the stream is restarted on the same
checkpoint. A final AvailableNow pass (in this process) drains the topic. DuckDB's plain
`read_parquet` glob, which knows nothing of Spark, must then return exactly the acknowledged
event_ids: none lost, none twice.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics
from spark.stream import run_stream
from tests.reliability.streaming import (
    LiveProducer,
    Outgoing,
    batches_started,
    good_messages,
    kill_tree,
    lake_rows,
    serializer_for,
    start_stream,
    tail,
    wait_for_progress,
)

pytestmark = pytest.mark.slow

SEED = 20261124
# Where in the stream's life each SIGKILL lands; the exact instant is drawn from SEED.
KILL_MOMENTS = ("batch-cycle", "mid-write", "start-up", "mid-write", "batch-cycle")
MAX_EVENTS_PER_BATCH = 400
EVENTS_PER_TICK = 100  # produced every second for as long as the stream runs ...
TICKS_PER_ROUND = 60  # ... up to this many ticks per round, so the final drain stays short
# Events keep arriving, so every batch writes files: a write in flight shows up with the run's
# first batch (a round produces 15 batches of events). Waiting for it (not for a fixed time)
# is what makes a mid-batch kill certain.
WRITE_IN_FLIGHT_TIMEOUT = 300  # generous: a loaded 2-core machine starts Spark slowly
DRAIN_EVENTS_PER_BATCH = 10_000


def checkpoint_batches(settings: Settings) -> tuple[int, int]:
    """(highest planned batch id, highest committed batch id) in the checkpoint; -1 if none."""
    root = Path(settings.checkpoint_root) / "events-raw-to-lake"

    def highest(folder: str) -> int:
        ids = [int(p.name) for p in (root / folder).glob("[0-9]*") if p.name.isdigit()]
        return max(ids, default=-1)

    return highest("offsets"), highest("commits")


def writes_in_flight(settings: Settings) -> set[Path]:
    """Hidden pending files of landing writes not yet published (renamed into place)."""
    return set(Path(settings.lake.raw_events).glob("*/.*.pending"))


def wait_for_write_in_flight(
    settings: Settings, process: subprocess.Popen[bytes], log_file: Path, stale: set[Path]
) -> None:
    """Until this run writes a pending file (`stale` ones, left by an earlier kill, don't count)."""
    deadline = time.monotonic() + WRITE_IN_FLIGHT_TIMEOUT
    while not writes_in_flight(settings) - stale:
        if process.poll() is not None:
            pytest.fail(f"stream exited with {process.returncode}; log:\n{tail(log_file)}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"no landing write seen in flight within {WRITE_IN_FLIGHT_TIMEOUT}s; "
                f"log:\n{tail(log_file)}"
            )
        time.sleep(0.002)


def test_kill_minus_nine_loses_nothing_and_doubles_nothing(
    spark: SparkSession, kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings
    create_topics(settings)
    rng = random.Random(SEED)
    log_file = tmp_path / "stream.log"
    serializer = serializer_for(settings)

    def tick(number: int) -> list[Outgoing]:
        return good_messages(serializer, number * EVENTS_PER_TICK, EVENTS_PER_TICK)

    producer = LiveProducer(settings, tick, ticks_per_run=TICKS_PER_ROUND)
    mid_batch_kills = torn_writes = 0
    torn_before: set[Path] = set()

    running: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        for number, moment in enumerate(KILL_MOMENTS, start=1):
            producer.start()
            baseline = batches_started(settings)
            running = start_stream(settings, "continuous", log_file, MAX_EVENTS_PER_BATCH)
            if moment == "start-up":
                # Anywhere in start-up: JVM launch, checkpoint read, first plan or batch.
                time.sleep(rng.uniform(2.0, 9.0))
            elif moment == "mid-write":
                # The instant a landing file is half written: often the run's first batch,
                # i.e. the replay of the batch the previous kill interrupted.
                wait_for_write_in_flight(settings, running, log_file, stale=torn_before)
            else:
                # Once a batch of this run committed, at a random point of the next cycle.
                wait_for_progress(running, settings, baseline, log_file)
                time.sleep(rng.uniform(0.0, 3.0))
            kill_tree(running)
            # A batch planned but not committed at the kill is replayed by the next run.
            planned, committed = checkpoint_batches(settings)
            mid_batch_kills += planned > committed
            torn = writes_in_flight(settings)
            torn_writes += bool(torn - torn_before)
            torn_before = torn
            producer.stop()
            print(f"kill {number} ({moment}) after {time.monotonic() - started:.0f}s")
        running = None
        # The drain needs no process of its own: the session's SparkSession resumes the same
        # checkpoint, in batches large enough to take the backlog in one or two.
        drain = settings.model_copy(update={"max_events_per_batch": DRAIN_EVENTS_PER_BATCH})
        run_stream(spark, drain, available_now=True)
        print(f"drained: {time.monotonic() - started:.1f}s")
    finally:
        producer.stop()
        if running is not None and running.poll() is None:
            kill_tree(running)

    assert producer.failed == []
    landed = Counter(row[0] for row in lake_rows(settings))
    produced = Counter(producer.ids)
    assert set(produced.values()) == {1}  # the test itself never reused an id
    doubled = sorted(event for event, count in landed.items() if count > 1)
    unknown = sorted(landed.keys() - produced.keys())
    missing = sorted(produced.keys() - landed.keys())
    assert (doubled, unknown, missing) == ([], [], []), (
        f"of {len(produced)} produced events, {len(doubled)} landed more than once "
        f"(e.g. {doubled[:3]}), {len(missing)} never landed (e.g. {missing[:3]}), "
        f"{len(unknown)} landed without being produced"
    )
    assert landed.total() == produced.total() == producer.ticks * EVENTS_PER_TICK
    print(
        f"{len(KILL_MOMENTS)} kills: {mid_batch_kills} mid-batch, {torn_writes} with a "
        f"half-written file; {produced.total()} events"
    )
    # The mid-write kills crashed a planned batch before its commit; anything less means the
    # test stopped exercising the replay it exists for.
    assert mid_batch_kills >= KILL_MOMENTS.count("mid-write"), tail(log_file)
    assert torn_writes >= 1, tail(log_file)
