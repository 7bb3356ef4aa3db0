"""Kill -9 the running stream again and again: plain Parquet readers still see every event once.

The stream runs as a subprocess (driver, JVM and Python workers), continuous trigger, small
batches, while this test produces events in rounds. At seeded random moments the whole process
tree gets SIGKILL and the stream is restarted on the same checkpoint. A final AvailableNow pass
drains the topic. DuckDB's plain `read_parquet` glob, which knows nothing of Spark, must then
return exactly the produced event_ids: none lost, none twice.
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
from pathlib import Path

import pytest

from orangescrum import REPO_ROOT
from orangescrum.core.topics import create_topics
from tests.spark.test_stream import lake_ids, produce_events

pytestmark = pytest.mark.slow

SEED = 20261124
# Where in the stream's life each SIGKILL lands; the exact instant is drawn from SEED.
KILL_MOMENTS = ("batch-cycle", "mid-write", "start-up", "mid-write")
MAX_EVENTS_PER_BATCH = 400
EVENTS_PER_TICK = 100  # produced every PRODUCE_INTERVAL for as long as the stream runs ...
PRODUCE_INTERVAL = 1.0
EVENTS_PER_ROUND = 6_000  # ... up to this many per round, so the final drain stays short
START_TIMEOUT = 120
# Events keep arriving, so every trigger writes a file: a write in flight shows up within a few
# batches. Waiting for it (not for a fixed time) is what makes a mid-batch kill certain.
WRITE_IN_FLIGHT_TIMEOUT = 90
FINAL_TIMEOUT = 180

STREAM_SCRIPT = """
import sys

from orangescrum.core.logs import configure_logging
from orangescrum.core.settings import Settings
from spark.session import build_session
from spark.stream import run_stream

configure_logging("INFO")
settings = Settings(_env_file=None)
spark = build_session(settings, "orangescrum-crash-test")
totals = run_stream(spark, settings, available_now=sys.argv[1] == "available-now")
print(f"landed {totals.rows_landed} in {totals.batches} batches", flush=True)
spark.stop()
"""


class Producer:
    """Produces events in the background, numbering them on from where the last round ended."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.ids: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        round_end = len(self.ids) + EVENTS_PER_ROUND
        try:
            while not self._stop.is_set() and len(self.ids) < round_end:
                self.ids += produce_events(self.settings, EVENTS_PER_TICK, first=len(self.ids))
                self._stop.wait(PRODUCE_INTERVAL)
        except BaseException as error:  # surfaced by stop()
            self._error = error

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        error, self._error = self._error, None
        if error is not None:
            raise error


def stream_env(settings) -> dict[str, str]:
    return dict(os.environ) | {
        "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "ORANGESCRUM_TOPIC_EVENTS": settings.topic_events,
        "ORANGESCRUM_TOPIC_DEAD_LETTER": settings.topic_dead_letter,
        "ORANGESCRUM_DATA_DIR": str(settings.data_dir),
        "ORANGESCRUM_TRIGGER_SECONDS": "1",
        "ORANGESCRUM_MAX_EVENTS_PER_BATCH": str(MAX_EVENTS_PER_BATCH),
        "ORANGESCRUM_SPARK_MASTER": "local[2]",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


def start_stream(settings, mode: str, log_file: Path) -> subprocess.Popen:
    with log_file.open("ab") as log_stream:
        return subprocess.Popen(
            [sys.executable, "-c", STREAM_SCRIPT, mode],
            env=stream_env(settings),
            cwd=REPO_ROOT,
            stdout=log_stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: driver + JVM
        )


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL the driver, the JVM and every Python worker, all at once, like a power cut.

    PySpark's worker daemon moves itself to its own process group, so killing the stream's
    group alone would leave workers that could finish a write after the kill: every process
    group of the tree is killed.
    """
    groups = {process.pid}
    try:
        import psutil

        for child in psutil.Process(process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error, OSError):
                groups.add(os.getpgid(child.pid))
    except ImportError:
        pass  # without psutil only the stream's own group (driver + JVM) is killed
    except Exception:  # the process is already gone
        pass
    groups.discard(os.getpgrp())  # never this test's own group
    for group in sorted(groups, key=lambda pgid: pgid != process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    process.wait(timeout=30)


def batches_started(settings) -> int:
    """Micro-batches recorded as finished (metrics) across every run so far."""
    return len(list(Path(settings.lake.metrics).glob("*.parquet")))


def checkpoint_batches(settings) -> tuple[int, int]:
    """(highest planned batch id, highest committed batch id) in the checkpoint; -1 if none."""
    root = Path(settings.checkpoint_root) / "events-raw-to-lake"

    def highest(folder: str) -> int:
        ids = [int(p.name) for p in (root / folder).glob("[0-9]*") if p.name.isdigit()]
        return max(ids, default=-1)

    return highest("offsets"), highest("commits")


def tail(log_file: Path, lines: int = 60) -> str:
    """The end of the stream's log, without librdkafka's reconnect chatter."""
    kept = [line for line in log_file.read_text().splitlines() if "rdkafka" not in line]
    return "\n".join(kept[-lines:])


def writes_in_flight(settings) -> set[Path]:
    """Hidden pending files of landing writes not yet published (renamed into place)."""
    return set(Path(settings.lake.raw_events).glob("*/.*.pending"))


def wait_for_write_in_flight(
    settings, process: subprocess.Popen, log_file: Path, stale: set[Path]
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


def wait_for_progress(process: subprocess.Popen, settings, baseline: int, log_file: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while batches_started(settings) <= baseline:
        if process.poll() is not None:
            pytest.fail(f"stream exited with {process.returncode}; log:\n{tail(log_file)}")
        if time.monotonic() > deadline:
            pytest.fail(f"no micro-batch within {START_TIMEOUT}s; log:\n{tail(log_file)}")
        time.sleep(0.1)


def test_kill_minus_nine_loses_nothing_and_doubles_nothing(kafka_settings, tmp_path) -> None:
    settings = kafka_settings
    create_topics(settings)
    rng = random.Random(SEED)
    log_file = tmp_path / "stream.log"
    producer = Producer(settings)
    mid_batch_kills = torn_writes = 0
    torn_before: set[Path] = set()

    running: subprocess.Popen | None = None
    try:
        for moment in KILL_MOMENTS:
            producer.start()
            baseline = batches_started(settings)
            running = start_stream(settings, "continuous", log_file)
            if moment == "start-up":
                # Anywhere in start-up: JVM launch, checkpoint read, first plan or batch.
                time.sleep(rng.uniform(2.0, 9.0))
            else:
                # Once batches run back to back (the backlog exceeds a batch) ...
                wait_for_progress(running, settings, baseline, log_file)
                if moment == "mid-write":
                    # ... the instant a landing file is half written,
                    wait_for_write_in_flight(settings, running, log_file, stale=torn_before)
                else:
                    # ... or at a random point of the batch cycle.
                    time.sleep(rng.uniform(0.0, 3.0))
            kill_tree(running)
            # A batch planned but not committed at the kill is replayed by the next run.
            planned, committed = checkpoint_batches(settings)
            mid_batch_kills += planned > committed
            torn = writes_in_flight(settings)
            torn_writes += bool(torn - torn_before)
            torn_before = torn
            producer.stop()

        running = start_stream(settings, "available-now", log_file)
        assert running.wait(timeout=FINAL_TIMEOUT) == 0, tail(log_file)
    finally:
        producer.stop()
        if running is not None and running.poll() is None:
            kill_tree(running)

    landed = Counter(lake_ids(settings))
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
    assert landed.total() == produced.total()
    print(
        f"{len(KILL_MOMENTS)} kills: {mid_batch_kills} mid-batch, {torn_writes} with a "
        f"half-written file; {sum(produced.values())} events"
    )
    # The mid-write kills crashed a planned batch before its commit; anything less means the
    # test stopped exercising the replay it exists for.
    assert mid_batch_kills >= KILL_MOMENTS.count("mid-write"), tail(log_file)
    assert torn_writes >= 1, tail(log_file)
