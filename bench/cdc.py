"""Change data capture: app-database commit -> lake file, throughput, latency and memory.

    python bench/cdc.py                          # 60,000 changes, then 120 s at 500 changes/s
    python bench/cdc.py --quick --results /tmp/cdc-results.json   # a tenth, recorded elsewhere

Starts the whole database path, each server its own process: a local Apache Kafka broker, the
local MariaDB (`LocalMariaDB`, the app database), a simulated day of one company written into it
(`orangescrum simulate app-db`), Kafka Connect with Debezium's MariaDB connector
(`LocalConnect`; the bench waits until its snapshot is in the topics), and `orangescrum stream
--source appdb --continuous` (spark/cdc_stream.py). Then this process plays the app: PyMySQL
transactions as the app user, each change one of three, in turn: a new task (easycases insert
-> task_created), a time log on it (log_times insert -> time_logged), its status moved
(easycases legend update -> task_status_changed). Every change gives exactly one lake event,
found again by (event type, task id) in the Parquet files of raw/events, which a watcher lists
every --poll-seconds (files appear by rename, so a listed file is complete).

1. Warm-up (not measured): --warmup-changes, until all are in the lake (the stream's first
   batches, the Python workers).
2. Throughput: --changes committed as fast as one writer can, --burst-changes-per-commit a
   transaction. Value: changes / (last event visible in a lake file - start of the first
   transaction); reference: the writer's own commit rate over the same start.
3. Latency: --rate changes/s for --latency-seconds, --changes-per-commit a transaction (1: as
   the app commits each request). Per change: the time the lake file holding its event was
   first listed - the time its commit returned; p50 and p95 recorded (no target: the issue
   sets none).

Peak RSS: every --sample-seconds the RSS of the broker JVM, mariadbd, the Connect JVM and the
stream (Python driver, its JVM, its Python workers) is summed; the peak of the sum over the
whole run (start-up included), target <= 6 GiB. This process (the writer, the watcher) is the
app and the bench, not the pipeline, and is not counted. Where the time went, in the notes: the
latency split by the lake row's kafka_timestamp and ingested_at (commit -> Kafka -> mapped ->
file), the cores each process and other work kept busy per phase, and the stream's batches (from
its raw/metrics rows: duration, and the part spent reading its lookup topics).

Exit code 0 when every change landed; the figures are recorded either way: appended to
--results (bench/results.json) through bench/results.py, or with --json PATH (how
bench/run_all.py runs it) written there as one run. Everything runs in a scratch folder removed
at the end (--keep keeps it); the children's output and samples.jsonl go to --logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.results import (
    Figure,
    Target,
    add_run_arguments,
    append_run,
    exit_on_sigterm,
    finish_run,
    load_runs,
    make_figure,
    new_run,
    scratch_and_logs,
    write_script_run,
)
from bench.soak import (
    BROKER,
    STREAM_DRIVER,
    STREAM_JVM,
    STREAM_WORKERS,
    broker_jvm_pid,
    lake_rows,
    launch,
    mib,
    prepare_environment,
    stop,
    stream_rss,
    tail,
    tree_rss,
    wait_for_stream,
)

log = logging.getLogger("cdc")

TARGET_RSS_MIB = 6 * 1024
FULL_CHANGES, QUICK_CHANGES = 60_000, 6_000
FULL_LATENCY_SECONDS, QUICK_LATENCY_SECONDS = 120.0, 12.0
DEFAULT_RATE = 500.0
WARMUP_CHANGES = 300
# The simulated history the bench writes on top of: the projects and users topics it fills are
# what the stream looks facts up in every batch, and time logs need a known project.
SEED_HISTORY = ("--days", "1", "--companies", "1", "--seed", "42", "--start-date", "2025-03-03")
# The bench's task ids: above the simulator's, below translate.REPLY_ID_OFFSET (replies), one
# range per phase so a phase's events are never mistaken for another's.
FIRST_TASK_ID = 500_000_000_000
PHASE_ID_SPAN = 1_000_000_000

MARIADB = "mariadb"
CONNECT = "connect"
ROLES = (BROKER, MARIADB, CONNECT, STREAM_DRIVER, STREAM_JVM, STREAM_WORKERS)
ROLE_LABELS = {
    BROKER: "broker",
    MARIADB: "mariadbd",
    CONNECT: "Connect",
    STREAM_DRIVER: "stream driver",
    STREAM_JVM: "stream JVM",
    STREAM_WORKERS: "stream workers",
}

# The three changes the writer makes, in turn, and the event each one lands as.
INSERT_TASK = "insert_task"
INSERT_TIME_LOG = "insert_time_log"
UPDATE_STATUS = "update_status"
EVENT_OF_KIND = {
    INSERT_TASK: "task_created",
    INSERT_TIME_LOG: "time_logged",
    UPDATE_STATUS: "task_status_changed",
}
Key = tuple[str, int]  # (event type, task id): one lake event per change


# --- pure: the plan, matching, percentiles, memory (tests/test_bench_cdc.py) -------------------
@dataclass(frozen=True)
class Change:
    kind: str
    task_id: int

    @property
    def key(self) -> Key:
        return (EVENT_OF_KIND[self.kind], self.task_id)


def change_plan(first_task_id: int, count: int) -> list[Change]:
    """`count` changes: per task its insert, a time log on it, its status update, in that order
    (so a commit boundary anywhere keeps each change after the insert it needs)."""
    kinds = (INSERT_TASK, INSERT_TIME_LOG, UPDATE_STATUS)
    return [Change(kinds[n % 3], first_task_id + n // 3) for n in range(count)]


def in_commits(plan: Sequence[Change], per_commit: int) -> list[Sequence[Change]]:
    return [plan[start : start + per_commit] for start in range(0, len(plan), per_commit)]


Stamps = tuple[float | None, float | None]  # (kafka_timestamp, ingested_at) in epoch seconds


def bench_rows(
    event_types: Iterable[str | None],
    task_ids: Iterable[int | None],
    sent: Iterable[float | None],
    mapped: Iterable[float | None],
    *,
    lowest_task_id: int,
) -> list[tuple[Key, Stamps]]:
    """The lake file's rows the bench wrote (its task ids; the snapshot's are not): each one's
    key and when Connect sent it to Kafka and the stream mapped it."""
    return [
        ((event_type, task_id), (sent_at, mapped_at))
        for event_type, task_id, sent_at, mapped_at in zip(
            event_types, task_ids, sent, mapped, strict=True
        )
        if event_type is not None and task_id is not None and task_id >= lowest_task_id
    ]


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default, statistics.quantiles
    'inclusive'): the same definition the other benches' p95 use."""
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * fraction
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


# Where a change's latency goes, from the lake row's own timestamps.
SENT, MAPPED, LANDED = "commit -> Kafka", "Kafka -> mapped", "mapped -> file"
STAGE_LABELS = {
    SENT: "commit -> Kafka record (binlog, Debezium, Connect's producer)",
    MAPPED: "Kafka record -> the stream's batch mapping it (trigger, earlier batch, lookups)",
    LANDED: "mapped -> lake file listed (mapping, Parquet write, rename)",
}


@dataclass(frozen=True)
class Latency:
    count: int  # changes committed
    missing: int  # of them never seen in a lake file
    p50: float | None
    p95: float | None
    p99: float | None
    maximum: float | None
    stages: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # (p50, p95)


def stages_of(
    committed: Mapping[Key, float], visible: Mapping[Key, float], stamps: Mapping[Key, Stamps]
) -> dict[str, tuple[float, float]]:
    """(p50, p95) of each stage over the changes whose lake row carries both timestamps."""
    parts: dict[str, list[float]] = {SENT: [], MAPPED: [], LANDED: []}
    for key, at in committed.items():
        sent, mapped = stamps.get(key, (None, None))
        if key not in visible or sent is None or mapped is None:
            continue
        parts[SENT].append(sent - at)
        parts[MAPPED].append(mapped - sent)
        parts[LANDED].append(visible[key] - mapped)
    return {
        stage: (percentile(ordered, 0.50), percentile(ordered, 0.95))
        for stage, values in parts.items()
        if (ordered := sorted(values))
    }


def latency_of(
    committed: Mapping[Key, float],
    visible: Mapping[Key, float],
    stamps: Mapping[Key, Stamps] | None = None,
) -> Latency:
    """Per change: when its event's file was first listed - when its commit returned."""
    seconds = sorted(visible[key] - at for key, at in committed.items() if key in visible)
    missing = len(committed) - len(seconds)
    if not seconds:
        return Latency(len(committed), missing, None, None, None, None)
    return Latency(
        len(committed),
        missing,
        percentile(seconds, 0.50),
        percentile(seconds, 0.95),
        percentile(seconds, 0.99),
        seconds[-1],
        stages_of(committed, visible, stamps or {}),
    )


@dataclass(frozen=True)
class Throughput:
    changes: int
    writer_seconds: float  # start of the first transaction -> the last commit returned
    pipeline_seconds: float | None  # the same start -> the last event visible; None: not all
    topics_seconds: float | None  # the same start -> every change in the table topics
    missing: int

    @property
    def writer_rate(self) -> float:
        return self.changes / self.writer_seconds

    @property
    def pipeline_rate(self) -> float | None:
        return self.changes / self.pipeline_seconds if self.pipeline_seconds else None


def throughput_of(
    started: float,
    last_commit: float,
    committed: Iterable[Key],
    visible: Mapping[Key, float],
    topics_at: float | None = None,
) -> Throughput:
    keys = list(committed)
    seen = [visible[key] for key in keys if key in visible]
    missing = len(keys) - len(seen)
    last_visible = max(seen) - started if seen and not missing else None
    topics = topics_at - started if topics_at is not None else None
    return Throughput(len(keys), last_commit - started, last_visible, topics, missing)


# CPU is sampled per server (the stream as one tree), for this process (the writer and the
# watcher) and for the whole machine: what is left is other work sharing the cores.
STREAM, BENCH, MACHINE, OTHERS = "stream", "bench", "machine", "others"
CPU_ROLES = (BROKER, MARIADB, CONNECT, STREAM, BENCH)


@dataclass(frozen=True)
class RssSample:
    elapsed: float  # seconds since the broker started
    phase: str
    rss: Mapping[str, int | None]  # role -> bytes; None: not running (yet)
    cpu: Mapping[str, float | None] = field(default_factory=dict)  # role -> CPU seconds so far

    @property
    def total(self) -> int:
        return sum(value for value in self.rss.values() if value)


@dataclass(frozen=True)
class RssPeak:
    total: int  # bytes: the largest sum of one sample
    phase: str  # the phase of that sample
    at_peak: Mapping[str, int | None]  # each role in that sample
    role_max: Mapping[str, int]  # each role's own largest value over the run


def rss_peak(samples: Sequence[RssSample]) -> RssPeak | None:
    """The sample with the largest sum: the stack's peak, as the roles shared the machine at one
    moment (the sum of each role's own maximum would add peaks that never coincided)."""
    if not samples:
        return None
    top = max(samples, key=lambda sample: sample.total)
    role_max = {role: max((s.rss.get(role) or 0) for s in samples) for role in ROLES}
    return RssPeak(top.total, top.phase, dict(top.rss), role_max)


def cpu_by_phase(samples: Sequence[RssSample]) -> dict[str, dict[str, float]]:
    """Cores each role kept busy in each phase (CPU seconds / wall seconds between the phase's
    first and last sample), `others` being the machine's busy cores no role accounts for."""
    phases: dict[str, list[RssSample]] = {}
    for sample in samples:
        phases.setdefault(sample.phase, []).append(sample)
    result: dict[str, dict[str, float]] = {}
    for phase, taken in phases.items():
        first, last = taken[0], taken[-1]
        wall = last.elapsed - first.elapsed
        if wall <= 0:
            continue
        cores = {}
        for role in (*CPU_ROLES, MACHINE):
            start, end = first.cpu.get(role), last.cpu.get(role)
            if start is not None and end is not None:
                cores[role] = (end - start) / wall
        if MACHINE in cores:
            busy = cores.pop(MACHINE)
            cores[OTHERS] = max(0.0, busy - sum(cores.values()))
        result[phase] = cores
    return result


@dataclass(frozen=True)
class BatchTiming:
    """One micro-batch of the stream, from its metrics row in raw/metrics and its rows."""

    batch_id: int
    started: float  # epoch seconds: foreachBatch began
    seconds: float  # foreachBatch: the lookups read, mapping, landing, the metrics row
    rows: int  # events landed
    lookups_seconds: float | None  # began -> the batch's ingested_at, stamped after the lookups


def batch_timings(
    metrics: Iterable[Mapping[str, Any]], ingested: Iterable[float]
) -> list[BatchTiming]:
    """Each batch's timing; its ingested_at is the one stamp inside its [started, finished]."""
    stamps = sorted(set(ingested))
    timings = []
    for row in sorted(metrics, key=lambda row: row["batch_id"]):
        started, finished = row["started_at"], row["finished_at"]
        inside = [stamp for stamp in stamps if started <= stamp <= finished]
        timings.append(
            BatchTiming(
                row["batch_id"],
                started,
                finished - started,
                row["rows_landed"] or 0,
                inside[0] - started if inside else None,
            )
        )
    return timings


@dataclass(frozen=True)
class BatchSummary:
    count: int
    rows_p50: float
    seconds_p50: float
    seconds_max: float
    lookups_p50: float | None
    lookups_max: float | None


def batches_in(timings: Sequence[BatchTiming], window: tuple[float, float]) -> BatchSummary | None:
    """The batches that began inside the window (a phase's start and end, epoch seconds)."""
    chosen = [t for t in timings if window[0] <= t.started < window[1]]
    if not chosen:
        return None
    seconds = sorted(t.seconds for t in chosen)
    lookups = sorted(t.lookups_seconds for t in chosen if t.lookups_seconds is not None)
    return BatchSummary(
        len(chosen),
        percentile(sorted(float(t.rows) for t in chosen), 0.5),
        percentile(seconds, 0.5),
        seconds[-1],
        percentile(lookups, 0.5) if lookups else None,
        lookups[-1] if lookups else None,
    )


# --- the app's writes ---------------------------------------------------------------------------
INSERT_TASK_SQL = (
    "INSERT INTO easycases (id, uniq_id, case_no, company_id, project_id, user_id, type_id, "
    "priority, title, assign_to, istype, legend, isactive, dt_created, actual_dt_created) "
    "VALUES (%s, %s, %s, %s, %s, %s, 1, 1, %s, %s, 1, 1, 1, %s, %s)"
)
INSERT_TIME_LOG_SQL = (
    "INSERT INTO log_times (log_id, user_id, project_id, task_id, task_date, start_datetime, "
    "end_datetime, total_hours, is_billable, is_from_timer, created) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, 1800, 1, 0, %s)"
)
# legend 1 (new) -> 2 (in progress), and the touch the app makes on every task change.
UPDATE_STATUS_SQL = (
    "UPDATE easycases SET legend = 2, updated_by = %s, dt_created = %s WHERE id = %s"
)


@dataclass(frozen=True)
class Owner:
    """The seeded project (and its owner) the bench's tasks belong to."""

    company_id: int
    project_id: int
    user_id: int


def seeded_owner(settings: Any) -> Owner:
    from orangescrum.core.appdb.connection import connect

    connection = connect(settings)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT company_id, id, user_id FROM projects WHERE isactive = 1 "
                "ORDER BY id LIMIT 1"
            )
            row = cursor.fetchone()
    finally:
        connection.close()
    if row is None:
        raise RuntimeError("the seeded history has no active project")
    return Owner(*row)


def task_row(task_id: int, owner: Owner, now: datetime) -> tuple[Any, ...]:
    """INSERT_TASK_SQL's values: a new task of the owner's, assigned to them, created now."""
    return (
        task_id,
        f"bench-{task_id}",
        task_id % 10**9,  # case_no, an INT
        owner.company_id,
        owner.project_id,
        owner.user_id,
        f"bench task {task_id}",
        owner.user_id,
        now,
        now,
    )


class AppWriter:
    """One app connection (the app user, transactions); `commit` returns when MariaDB has."""

    def __init__(self, settings: Any, owner: Owner) -> None:
        from orangescrum.core.appdb.connection import connect

        self.owner = owner
        self.connection = connect(settings)

    def commit(self, changes: Sequence[Change]) -> float:
        """Write the changes in one transaction; the wall time its commit returned."""
        # DATETIME holds seconds; the connection's zone is UTC, so naive UTC values.
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        owner = self.owner
        tasks = [c.task_id for c in changes if c.kind == INSERT_TASK]
        logs = [c.task_id for c in changes if c.kind == INSERT_TIME_LOG]
        updates = [c.task_id for c in changes if c.kind == UPDATE_STATUS]
        with self.connection.cursor() as cursor:
            # Inserts before updates: a commit that holds a task's insert and its update needs it.
            if tasks:
                cursor.executemany(
                    INSERT_TASK_SQL,
                    [task_row(task_id, owner, now) for task_id in tasks],
                )
            if logs:
                cursor.executemany(
                    INSERT_TIME_LOG_SQL,
                    [
                        (t, owner.user_id, owner.project_id, t, now.date(), now, now, now)
                        for t in logs
                    ],
                )
            if updates:
                cursor.executemany(UPDATE_STATUS_SQL, [(owner.user_id, now, t) for t in updates])
        self.connection.commit()
        return time.time()

    def close(self) -> None:
        self.connection.close()


# --- watching: the lake and the processes' memory -----------------------------------------------
KEY_COLUMNS = ("event_type", "task_id")
# When Connect's producer sent the change's record, and when the stream's batch mapped it.
STAMP_COLUMNS = ("kafka_timestamp", "ingested_at")


def epoch_seconds(column: Any) -> list[float | None]:
    """A timestamp[us] column as wall-clock seconds (time.time()'s scale)."""
    micros = pc.cast(column, pa.int64()).to_pylist()
    return [None if value is None else value / 1e6 for value in micros]


class LakeWatcher:
    """Lists raw/events every `interval` seconds; for each new Parquet file, when it was first
    listed, for each of the bench's events in it."""

    def __init__(self, events_dir: Path, lowest_task_id: int, interval: float) -> None:
        self.events_dir = events_dir
        self.lowest_task_id = lowest_task_id
        self.interval = interval
        self._visible: dict[Key, float] = {}
        self._stamps: dict[Key, Stamps] = {}
        self._files: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.scan()
                self._stop.wait(self.interval)
        except BaseException as error:  # reported by the main thread, which waits on it
            self.error = error

    def scan(self) -> None:
        if not self.events_dir.is_dir():
            return
        new = []
        for day in os.scandir(self.events_dir):
            if day.is_dir():
                new += [
                    entry.path
                    for entry in os.scandir(day.path)
                    if entry.name.endswith(".parquet")
                    and not entry.name.startswith((".", "_"))
                    and entry.path not in self._files
                ]
        # The time of the listing, not of the read: the file was complete when it was listed.
        listed_at = time.time()
        for path in new:
            table = pq.read_table(path, columns=[*KEY_COLUMNS, *STAMP_COLUMNS])
            rows = bench_rows(
                table["event_type"].to_pylist(),
                table["task_id"].to_pylist(),
                *(epoch_seconds(table[column]) for column in STAMP_COLUMNS),
                lowest_task_id=self.lowest_task_id,
            )
            with self._lock:
                for key, stamp in rows:
                    if key not in self._visible:
                        self._visible[key], self._stamps[key] = listed_at, stamp
            self._files.add(path)

    def visible(self) -> dict[Key, float]:
        with self._lock:
            return dict(self._visible)

    def stamps(self) -> dict[Key, Stamps]:
        with self._lock:
            return dict(self._stamps)

    def missing(self, keys: Iterable[Key]) -> int:
        with self._lock:
            return sum(key not in self._visible for key in keys)

    def start(self) -> LakeWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def tree_cpu(pid: int) -> float | None:
    """CPU seconds (user + system, and of its reaped children) of a process and its living
    descendants (forked Python workers come and go); None once it has exited."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def machine_busy_cpu() -> float:
    """CPU seconds every core of the machine has spent busy since boot."""
    import psutil

    times = psutil.cpu_times()
    # Not guest time: Linux counts it in user already.
    parts = ("user", "nice", "system", "irq", "softirq")
    return sum(getattr(times, part, 0.0) for part in parts)


class RssSampler:
    """Every `interval` seconds the RSS of each role, tagged with the phase it was taken in."""

    def __init__(self, pids: Mapping[str, int | None], interval: float, path: Path) -> None:
        self.pids = dict(pids)
        self.stream_pid: int | None = None
        self.interval = interval
        self.path = path
        self.phase = "start-up"
        self.samples: list[RssSample] = []
        self._began = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, role: str, pid: int | None) -> None:
        # A new dict, not an update: the sampling thread may be iterating the old one.
        self.pids = {**self.pids, role: pid}

    def sample(self) -> RssSample:
        pids = self.pids
        rss: dict[str, int | None] = {
            role: tree_rss(pid) if pid else None for role, pid in pids.items()
        }
        cpu = {role: tree_cpu(pid) if pid else None for role, pid in pids.items()}
        if self.stream_pid is not None:
            rss |= stream_rss(self.stream_pid)
            cpu[STREAM] = tree_cpu(self.stream_pid)
        own = os.times()  # this process only: a reaped child's time would land in children_*
        cpu[BENCH] = own.user + own.system
        cpu[MACHINE] = machine_busy_cpu()
        return RssSample(round(time.monotonic() - self._began, 2), self.phase, rss, cpu)

    def _run(self) -> None:
        with self.path.open("w") as output:
            while not self._stop.is_set():
                sample = self.sample()
                self.samples.append(sample)
                output.write(json.dumps(asdict(sample)) + "\n")
                self._stop.wait(self.interval)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# --- the stack ----------------------------------------------------------------------------------
def seed_history(scratch: Path, logs: Path) -> None:
    command = [sys.executable, "-m", "orangescrum", "simulate", "app-db", *SEED_HISTORY]
    process = launch(command, logs / "simulate-app-db.log", scratch)
    if process.wait() != 0:
        raise RuntimeError(
            f"simulate app-db failed (exit code {process.returncode}):\n"
            + tail(logs / "simulate-app-db.log")
        )


def wait_for_snapshot(settings: Any, timeout: float) -> dict[str, int]:
    """Until every table's topic holds at least a record per row (Debezium's snapshot); the
    stream subscribes by pattern, and a topic created after it started would be seen late."""
    from orangescrum.core.appdb.connection import APP_TABLES, connect, row_counts
    from orangescrum.core.connect import table_topic, topic_message_counts

    connection = connect(settings)
    try:
        rows = row_counts(connection)
    finally:
        connection.close()
    topics = {table: table_topic(settings, table) for table in APP_TABLES}
    deadline = time.monotonic() + timeout
    while True:
        counts = topic_message_counts(settings, list(topics.values()))
        if all((counts[topics[table]] or 0) >= rows[table] for table in APP_TABLES):
            return {table: counts[topics[table]] or 0 for table in APP_TABLES}
        if time.monotonic() > deadline:
            raise RuntimeError(f"the snapshot was not in the topics within {timeout:.0f}s")
        time.sleep(1)


def topic_totals(settings: Any) -> int:
    """Records in the easycases and log_times topics: what the bench's changes go to."""
    from orangescrum.core.connect import table_topic, topic_message_counts

    names = [table_topic(settings, table) for table in ("easycases", "log_times")]
    return sum(count or 0 for count in topic_message_counts(settings, names).values())


def wait_visible(
    watcher: LakeWatcher,
    keys: Sequence[Key],
    stream: Any,
    timeout: float,
    on_topics: tuple[Any, int] | None = None,
) -> float | None:
    """Until every key is in a lake file, the stream exits (raised) or the timeout passes.

    With `on_topics` (settings, records expected in the table topics): the wall time the
    topics were first seen holding them all (Debezium's side done); None otherwise.
    """
    deadline = time.monotonic() + timeout
    topics_at: float | None = None
    while watcher.missing(keys):
        if on_topics is not None and topics_at is None:
            settings, expected = on_topics
            if topic_totals(settings) >= expected:
                topics_at = time.time()
        if watcher.error is not None:
            raise RuntimeError(f"the lake watcher failed: {watcher.error!r}")
        if stream.poll() is not None:
            raise RuntimeError(f"the stream exited with code {stream.returncode}")
        if time.monotonic() > deadline:
            log.warning(
                "%d of %d changes not in the lake after %.0fs",
                watcher.missing(keys),
                len(keys),
                timeout,
            )
            return topics_at
        time.sleep(0.1 if on_topics else 0.2)
    return topics_at


@dataclass
class Outcome:
    throughput: Throughput | None = None
    latency: Latency | None = None
    latency_rate: float | None = None  # changes/s the writer reached
    peak: RssPeak | None = None
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> role -> cores
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)  # phase -> epoch s
    batches: list[BatchTiming] = field(default_factory=list)
    dead_letters: int | None = None
    failures: list[str] = field(default_factory=list)


def warm_up(args: argparse.Namespace, writer: AppWriter, watcher: LakeWatcher, stream: Any) -> None:
    plan = change_plan(FIRST_TASK_ID, args.warmup_changes)
    for commit in in_commits(plan, 30):
        writer.commit(commit)
    keys = [change.key for change in plan]
    started = time.monotonic()
    wait_visible(watcher, keys, stream, args.drain_timeout)
    if watcher.missing(keys):
        raise RuntimeError("the warm-up changes did not all reach the lake")
    log.info("warm-up: %d changes in the lake after %.1fs", len(keys), time.monotonic() - started)


def throughput_phase(
    args: argparse.Namespace, settings: Any, writer: AppWriter, watcher: LakeWatcher, stream: Any
) -> Throughput:
    plan = change_plan(FIRST_TASK_ID + PHASE_ID_SPAN, args.changes)
    commits = in_commits(plan, args.burst_changes_per_commit)
    expected_in_topics = topic_totals(settings) + len(plan)
    log.info(
        "throughput: committing %s changes, %d a transaction, as fast as one writer can",
        f"{len(plan):,}",
        args.burst_changes_per_commit,
    )
    started = time.time()
    last_commit = started
    for commit in commits:
        last_commit = writer.commit(commit)
    keys = [change.key for change in plan]
    log.info(
        "throughput: writer done after %.1fs (%s changes/s); waiting for the lake",
        last_commit - started,
        f"{len(plan) / (last_commit - started):,.0f}",
    )
    topics_at = wait_visible(
        watcher, keys, stream, args.drain_timeout, on_topics=(settings, expected_in_topics)
    )
    result = throughput_of(started, last_commit, keys, watcher.visible(), topics_at)
    rate = result.pipeline_rate
    log.info(
        "throughput: %s changes/s commit -> lake (all in the lake after %s s; in the topics "
        "after %s s), %d missing",
        f"{rate:,.0f}" if rate else "-",
        f"{result.pipeline_seconds:.1f}" if result.pipeline_seconds else "-",
        f"{result.topics_seconds:.1f}" if result.topics_seconds is not None else "-",
        result.missing,
    )
    return result


def latency_phase(
    args: argparse.Namespace, writer: AppWriter, watcher: LakeWatcher, stream: Any
) -> tuple[Latency, float]:
    plan = change_plan(FIRST_TASK_ID + 2 * PHASE_ID_SPAN, round(args.rate * args.latency_seconds))
    commits = in_commits(plan, args.changes_per_commit)
    committed: dict[Key, float] = {}
    log.info(
        "latency: %s changes/s for %gs, %d a transaction",
        f"{args.rate:,g}",
        args.latency_seconds,
        args.changes_per_commit,
    )
    started = time.monotonic()
    done, next_report = 0, 10.0
    for commit in commits:
        # Paced on the changes due by now: a writer that fell behind catches up, never bunches.
        while done + len(commit) > (time.monotonic() - started) * args.rate:
            time.sleep(0.001)
        at = writer.commit(commit)
        committed.update((change.key, at) for change in commit)
        done += len(commit)
        if (elapsed := time.monotonic() - started) >= next_report:
            log.info(
                "latency: %s committed (%s/s), %s not yet in the lake",
                f"{done:,}",
                f"{done / elapsed:,.0f}",
                f"{watcher.missing(committed):,}",
            )
            next_report += 10
    rate = done / (time.monotonic() - started)
    wait_visible(watcher, list(committed), stream, args.drain_timeout)
    result = latency_of(committed, watcher.visible(), watcher.stamps())
    log.info(
        "latency: p50 %s s, p95 %s s at %s changes/s; %d missing",
        seconds_text(result.p50),
        seconds_text(result.p95),
        f"{rate:,.0f}",
        result.missing,
    )
    return result, rate


def batches_text(outcome: Outcome, phase: str) -> str:
    window = outcome.windows.get(phase)
    summary = batches_in(outcome.batches, window) if window else None
    if summary is None:
        return "no stream batch timings"
    lookups = (
        f", of which reading the lookup topics p50 {summary.lookups_p50:.1f} s (max "
        f"{summary.lookups_max:.1f})"
        if summary.lookups_p50 is not None and summary.lookups_max is not None
        else ""
    )
    return (
        f"{summary.count} stream batches, {summary.rows_p50:,.0f} events each (p50), "
        f"{summary.seconds_p50:.1f} s each in foreachBatch (p50; max {summary.seconds_max:.1f})"
        f"{lookups}"
    )


def cpu_text(cores: Mapping[str, float]) -> str:
    return ", ".join(f"{role} {share:.2f}" for role, share in cores.items())


def seconds_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def stages_text(latency: Latency) -> str:
    return ", ".join(
        f"{stage} {p50:.2f}/{p95:.2f} s" for stage, (p50, p95) in latency.stages.items()
    )


def mark(
    outcome: Outcome, began: tuple[str, float], sampler: RssSampler, phase: str
) -> tuple[str, float]:
    """End the phase that `began` (its name, its start) and start the next."""
    now = time.time()
    outcome.windows[began[0]] = (began[1], now)
    sampler.phase = phase
    return phase, now


def read_batch_timings(settings: Any) -> list[BatchTiming]:
    """The stream's metrics rows (raw/metrics) and the ingested_at stamps of raw/events."""
    import pyarrow.dataset as ds

    folder = Path(settings.lake.metrics)
    rows = [
        row
        for path in sorted(folder.glob("*.parquet"))
        for row in pq.read_table(
            path, columns=["batch_id", "started_at", "finished_at", "rows_landed"]
        ).to_pylist()
    ]
    for row in rows:
        row["started_at"] = row["started_at"].timestamp()
        row["finished_at"] = row["finished_at"].timestamp()
    events = ds.dataset(settings.lake.raw_events, format="parquet", partitioning="hive")
    stamps = pc.unique(events.to_table(columns=["ingested_at"])["ingested_at"])
    return batch_timings(rows, (s for s in epoch_seconds(stamps) if s is not None))


def run_bench(args: argparse.Namespace, scratch: Path, logs: Path) -> Outcome:
    from orangescrum.core.appdb.server import LocalMariaDB
    from orangescrum.core.appdb.server import running_pid as mariadb_pid
    from orangescrum.core.broker import LocalKafka
    from orangescrum.core.connect import LocalConnect
    from orangescrum.core.connect import running_pid as connect_pid
    from orangescrum.core.processes import free_port
    from orangescrum.core.settings import Settings
    from spark.cdc_stream import cdc_checkpoint

    outcome = Outcome()
    broker = LocalKafka.from_settings(Settings(_env_file=None), scratch / "kafka").start()
    # Its only java child now; the Connect JVM will be another.
    sampler = RssSampler({BROKER: broker_jvm_pid()}, args.sample_seconds, logs / "samples.jsonl")
    sampler.start()
    children: list[Any] = []
    appdb: Any = None
    worker: Any = None
    watcher: LakeWatcher | None = None
    writer: AppWriter | None = None
    try:
        prepare_environment(scratch / "data", broker.bootstrap, args.trigger_seconds)
        os.environ["ORANGESCRUM_APPDB_PORT"] = str(free_port())
        settings = Settings(_env_file=None)
        appdb = LocalMariaDB.from_settings(settings).start()
        sampler.watch(MARIADB, mariadb_pid(settings.appdb_data_dir))
        log.info(
            "broker on %s, MariaDB on %s; seeding a day of history", broker.bootstrap, appdb.address
        )
        seed_history(scratch, logs)
        worker = LocalConnect(settings).start()
        sampler.watch(CONNECT, connect_pid(settings.connect_data_dir))
        snapshot = wait_for_snapshot(settings, args.start_timeout)
        log.info(
            "Connect on %s; snapshot in the topics: %s records",
            worker.url,
            f"{sum(snapshot.values()):,}",
        )
        command = [sys.executable, "-m", "orangescrum", "stream", "--source", "appdb"]
        stream = launch([*command, "--continuous"], logs / "stream.log", scratch)
        children.append(stream)
        sampler.stream_pid = stream.pid
        try:
            wait_for_stream(settings, stream, args.start_timeout, cdc_checkpoint(settings))
        except RuntimeError:
            log.error("the stream did not start; last lines:\n%s", tail(logs / "stream.log"))
            raise
        log.info("stream running (pid %d, trigger %gs)", stream.pid, settings.trigger_seconds)
        watcher = LakeWatcher(Path(settings.lake.raw_events), FIRST_TASK_ID, args.poll_seconds)
        watcher.start()
        writer = AppWriter(settings, seeded_owner(settings))
        sampler.phase = "warm-up"
        began = ("warm-up", time.time())
        warm_up(args, writer, watcher, stream)
        began = mark(outcome, began, sampler, "throughput")
        outcome.throughput = throughput_phase(args, settings, writer, watcher, stream)
        began = mark(outcome, began, sampler, "latency")
        outcome.latency, outcome.latency_rate = latency_phase(args, writer, watcher, stream)
        mark(outcome, began, sampler, "stopping")
        if stream.poll() is not None:
            outcome.failures.append(f"the stream exited with code {stream.returncode}")
        while children:
            stop(children.pop())
        outcome.dead_letters = lake_rows(
            Path(settings.lake.dead_letters), ["kafka_partition", "kafka_offset"]
        ).num_rows
        outcome.batches = read_batch_timings(settings)
        with (logs / "batches.jsonl").open("w") as output:
            output.writelines(json.dumps(asdict(t)) + "\n" for t in outcome.batches)
    except Exception as error:
        log.exception("the bench stopped")
        outcome.failures.append(f"{type(error).__name__}: {error}")
    finally:
        if writer is not None:
            writer.close()
        if watcher is not None:
            watcher.stop()
        while children:
            stop(children.pop())
        if worker is not None:
            worker.stop()
        if appdb is not None:
            appdb.stop()
        broker.stop()
        sampler.stop()
        outcome.peak = rss_peak(sampler.samples)
        outcome.cpu = cpu_by_phase(sampler.samples)
    return outcome


# --- figures ------------------------------------------------------------------------------------
def figures_of(args: argparse.Namespace, outcome: Outcome) -> list[Figure]:
    """The bench's figures in bench/results.json's shape; one that was not measured keeps its
    place with value None and the reason."""
    figures = []
    result = outcome.throughput
    if result is None:
        figures.append(make_figure("cdc.throughput", None, "changes/s", note="not measured"))
    else:
        topics = (
            f"; every change in the table topics after {result.topics_seconds:.1f} s"
            if result.topics_seconds is not None
            else ""
        )
        missing = f"; {result.missing:,} never reached the lake" if result.missing else ""
        note = (
            f"{result.changes:,} changes ({args.burst_changes_per_commit} a transaction: task "
            f"inserts, time-log inserts and status updates in equal thirds), first transaction "
            f"-> last event visible in a lake file; writer done after "
            f"{result.writer_seconds:.1f} s{topics}{missing}; stream trigger "
            f"{args.trigger_seconds:g} s; {batches_text(outcome, 'throughput')}; cores busy: "
            f"{cpu_text(outcome.cpu.get('throughput', {}))}"
        )
        figures.append(
            make_figure(
                "cdc.throughput",
                result.pipeline_rate,
                "changes/s",
                reference=("the writer's commit rate", result.writer_rate),
                note=note,
            )
        )
    latency = outcome.latency
    if latency is None:
        figures += [
            make_figure(f"cdc.latency_{p}", None, "s", note="not measured") for p in ("p95", "p50")
        ]
    else:
        missing = f", {latency.missing:,} never visible" if latency.missing else ""
        rate = f"{outcome.latency_rate:,.0f}" if outcome.latency_rate else "?"
        note = (
            f"commit returned -> lake file listed (every {args.poll_seconds:g} s), "
            f"{latency.count:,} changes at {args.rate:,g} changes/s for "
            f"{args.latency_seconds:g} s ({rate}/s reached, {args.changes_per_commit} a "
            f"transaction), stream trigger {args.trigger_seconds:g} s; p50 "
            f"{seconds_text(latency.p50)} s, p95 {seconds_text(latency.p95)} s, p99 "
            f"{seconds_text(latency.p99)} s, max {seconds_text(latency.maximum)} s{missing}; "
            f"stages p50/p95: {stages_text(latency)}; {batches_text(outcome, 'latency')}; "
            f"cores busy: {cpu_text(outcome.cpu.get('latency', {}))}"
        )
        figures += [
            make_figure("cdc.latency_p95", latency.p95, "s", note=note),
            make_figure("cdc.latency_p50", latency.p50, "s", note="as cdc.latency_p95"),
        ]
    peak = outcome.peak
    note = f"peak of the summed RSS, sampled every {args.sample_seconds:g} s over the whole run" + (
        f", reached in the {peak.phase} phase: "
        + ", ".join(f"{ROLE_LABELS[r]} {mib(peak.at_peak.get(r))}" for r in ROLES)
        + " MiB; each one's own max: "
        + ", ".join(f"{ROLE_LABELS[r]} {mib(peak.role_max[r])}" for r in ROLES)
        + " MiB"
        if peak
        else ""
    )
    figures.append(
        make_figure(
            "cdc.peak_rss",
            peak.total / 1024**2 if peak else None,
            "MiB",
            target=Target(TARGET_RSS_MIB, at_most=True, unit="MiB"),
            note=note,
        )
    )
    return figures


def print_report(args: argparse.Namespace, outcome: Outcome) -> None:
    print()
    result = outcome.throughput
    if result:
        rate = result.pipeline_rate
        print(
            f"throughput: {result.changes:,} changes; writer {result.writer_rate:,.0f}/s "
            f"({result.writer_seconds:.1f} s); commit -> lake "
            f"{f'{rate:,.0f}/s' if rate else '-'} "
            f"({seconds_text(result.pipeline_seconds)} s); in the topics after "
            f"{seconds_text(result.topics_seconds)} s; missing {result.missing:,}"
        )
    latency = outcome.latency
    if latency:
        print(
            f"latency at {args.rate:,g}/s: p50 {seconds_text(latency.p50)} s, p95 "
            f"{seconds_text(latency.p95)} s, p99 {seconds_text(latency.p99)} s, max "
            f"{seconds_text(latency.maximum)} s over {latency.count:,} changes; missing "
            f"{latency.missing:,}"
        )
        for stage, (p50, p95) in latency.stages.items():
            print(f"  {STAGE_LABELS[stage]}: p50 {p50:.2f} s, p95 {p95:.2f} s")
    peak = outcome.peak
    if peak:
        print(
            f"peak RSS: {mib(peak.total)} MiB (target <= {TARGET_RSS_MIB:,} MiB) in the "
            f"{peak.phase} phase"
        )
        for role in ROLES:
            print(
                f"  {ROLE_LABELS[role]:<15} {mib(peak.at_peak.get(role)):>6} MiB at the peak, "
                f"{mib(peak.role_max[role]):>6} MiB its own max"
            )
    for phase in ("throughput", "latency"):
        print(f"{phase}: {batches_text(outcome, phase)}")
    print(f"cores busy per phase ({', '.join(CPU_ROLES)}, {OTHERS}: the rest of the machine):")
    for phase, cores in outcome.cpu.items():
        print(f"  {phase:<10} {cpu_text(cores)}")
    if outcome.dead_letters:
        print(f"dead letters in the lake: {outcome.dead_letters:,}")
    for failure in outcome.failures:
        print(f"FAILED: {failure}")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--changes",
        type=int,
        help=f"throughput phase: changes to commit (default {FULL_CHANGES:,}; --quick "
        f"{QUICK_CHANGES:,})",
    )
    parser.add_argument(
        "--burst-changes-per-commit",
        type=int,
        default=300,
        help="throughput phase: changes a transaction (default 300)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"latency phase: changes/s (default {DEFAULT_RATE:g})",
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        help=f"latency phase: how long (default {FULL_LATENCY_SECONDS:g}; --quick "
        f"{QUICK_LATENCY_SECONDS:g})",
    )
    parser.add_argument(
        "--changes-per-commit",
        type=int,
        default=1,
        help="latency phase: changes a transaction (default 1, as the app commits a request)",
    )
    parser.add_argument(
        "--warmup-changes",
        type=int,
        default=WARMUP_CHANGES,
        help=f"changes landed before measuring (default {WARMUP_CHANGES})",
    )
    parser.add_argument(
        "--trigger-seconds",
        type=float,
        default=0.5,
        help="the stream's trigger (default 0.5, as bench/spark_landing.py's latency phase)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=0.05,
        help="how often the lake is listed (default 0.05)",
    )
    parser.add_argument(
        "--sample-seconds", type=float, default=0.5, help="RSS sampling interval (default 0.5)"
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=600,
        help="seconds the snapshot and the stream's first batch may take (default 600)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=600,
        help="seconds a phase's changes may take to reach the lake after its writer (default 600)",
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of the volume")
    add_run_arguments(parser, keep_help="keep the scratch folder (databases, topics, lake)")
    args = parser.parse_args(argv)
    if args.changes is None:
        args.changes = QUICK_CHANGES if args.quick else FULL_CHANGES
    if args.latency_seconds is None:
        args.latency_seconds = QUICK_LATENCY_SECONDS if args.quick else FULL_LATENCY_SECONDS
    positive = (
        args.changes,
        args.burst_changes_per_commit,
        args.rate,
        args.latency_seconds,
        args.changes_per_commit,
        args.warmup_changes,
        args.poll_seconds,
        args.sample_seconds,
    )
    if min(positive) <= 0:
        parser.error("volumes, rates, sizes and intervals must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("orangescrum").setLevel(logging.WARNING)
    if not args.json:
        load_runs(args.results)  # fail now, not after the run, if the history is unreadable
    run = new_run(quick=args.quick)
    exit_on_sigterm()
    with scratch_and_logs(args, "cdc") as (scratch, logs):
        outcome = run_bench(args, scratch, logs)
    print_report(args, outcome)
    figures = figures_of(args, outcome)
    notes = [f"cdc: {failure}" for failure in outcome.failures]
    if args.json:
        write_script_run(args.json, run, figures, notes)
        log.info("run written to %s", args.json)
    else:
        run["figures"], run["notes"] = figures, notes
        count = append_run(args.results, finish_run(run))
        log.info("run %d recorded in %s (python bench/report.py charts it)", count, args.results)
    log.info("logs and samples: %s", logs)
    landed = (
        outcome.throughput is not None
        and not outcome.throughput.missing
        and outcome.latency is not None
        and not outcome.latency.missing
    )
    return 0 if landed and not outcome.failures else 1


if __name__ == "__main__":
    sys.exit(main())
