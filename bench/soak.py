"""Soak: the live pipeline for an hour at 2,000 events/s, each process's memory and the lag watched.

    python bench/soak.py                                   # 60 min, 2,000 events/s, dbt every 15
    python bench/soak.py --minutes 4 --rate 500 --dbt-every-minutes 2 --warmup-fraction 0.25 \\
        --results /tmp/soak-results.json                   # a short trial, recorded elsewhere

Starts a local Apache Kafka broker, `orangescrum stream --continuous` (Spark Structured
Streaming, its own process) and, once the stream has committed its first micro-batch,
`orangescrum simulate live --rate R --duration MINUTES` (its own process); every
--dbt-every-minutes after the producer started, a dbt run (`warehouse load` + `warehouse build`:
a fresh interpreter each time, one at a time, with a dbt target folder of its own). Every
--sample-seconds: the RSS of the broker JVM, the stream's JVM, its Python driver and its Python
workers (pyspark.daemon and its forks), and the producer; the stream's lag
(topic end offsets - the offsets its checkpoint committed, as `orangescrum status` reads it);
one progress line. Each dbt run's peak RSS is sampled every 0.5 s.

When the producer is done the stream drains (lag 0), the last dbt run finishes and the stream
is stopped; then the whole topic is read back (every message decoded) and the lake with pyarrow:
every produced message must be in the lake exactly once ((partition, offset) landed once, with
the event_id that was sent), none lost.

Verdict (`judge`): after the warm-up (the first --warmup-fraction of the run), each process's RSS
stays flat, max within 10% of the median (dbt: each run's peak against the median peak), the
lag stays under --max-lag-seconds of production, nothing lost or landed twice, no process died,
no dbt run failed.
Exit code 0 on PASS, 1 on FAIL; the figures are recorded either way: appended to --results
(bench/results.json by default) through bench/results.py, or, with --json PATH (how
bench/run_all.py --soak runs it), written to PATH as one run and appended nowhere.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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

log = logging.getLogger("soak")

DEFAULT_MINUTES = 60.0
DEFAULT_RATE = 2_000.0
DEFAULT_DBT_EVERY_MINUTES = 15.0
DEFAULT_WARMUP_FRACTION = 0.1
DEFAULT_SAMPLE_SECONDS = 10.0
DEFAULT_MAX_LAG_SECONDS = 30.0
DEFAULT_DBT_MEMORY_LIMIT = "1GB"
MAX_DRIFT_PERCENT = 10.0
# --quick: a tenth of the length; a longer share of it is warm-up (JVM heaps still growing).
QUICK_MINUTES, QUICK_DBT_EVERY_MINUTES, QUICK_WARMUP_FRACTION = 6.0, 2.0, 0.25
MIN_RATE_SHARE = 0.9  # the producer must reach this share of --rate, or the soak proves less
DBT_SAMPLE_SECONDS = 0.5
STOP_GRACE_SECONDS = 120

# Process roles: sampled every --sample-seconds, and dbt (each run's peak); all reported, the
# pipeline's judged. The producer is the load, not the pipeline: `simulate live` models the
# app, whose data only grows (every task and time entry it created stays, as in the app's
# database: about 20 bytes an event, 2-3 MiB a minute at 2,000 events/s).
BROKER = "broker"
STREAM_JVM = "stream_jvm"
STREAM_DRIVER = "stream_driver"
STREAM_WORKERS = "stream_workers"
PRODUCER = "producer"
DBT = "dbt"
SAMPLED_ROLES = (BROKER, STREAM_JVM, STREAM_DRIVER, STREAM_WORKERS, PRODUCER)
REPORTED_ROLES = (*SAMPLED_ROLES, DBT)
LOAD_ROLES = (PRODUCER,)
ROLE_LABELS = {
    BROKER: "broker JVM",
    STREAM_JVM: "stream JVM",
    STREAM_DRIVER: "stream Python driver",
    STREAM_WORKERS: "stream Python workers",
    PRODUCER: "producer (simulate live)",
    DBT: "dbt runs (peak of each)",
}
SHORT_LABELS = {
    BROKER: "broker",
    STREAM_JVM: "jvm",
    STREAM_DRIVER: "driver",
    STREAM_WORKERS: "workers",
    PRODUCER: "producer",
    DBT: "dbt",
}


# --- the verdict (pure: tests/test_bench.py feeds it synthetic samples) -------------------------
@dataclass(frozen=True)
class Sample:
    """One look at the pipeline, `elapsed` seconds after the producer started."""

    elapsed: float
    rss: Mapping[str, int | None]  # role -> bytes; None: the process is not running
    lag: int | None = None  # messages in the topic the stream has not committed; None: unknown
    produced: int | None = None  # messages in the topic
    phase: str = "producing"


@dataclass(frozen=True)
class DbtRun:
    number: int
    started: float  # seconds after the producer started
    seconds: float
    peak_rss: int
    returncode: int | None  # None: stopped before it finished
    log_path: str = ""
    failed_nodes: tuple[str, ...] = ()  # what dbt reported as FAIL or ERROR

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class Integrity:
    """The topic read back against the lake, message by message."""

    produced: int  # messages in the topic
    landed: int  # rows in raw/events
    dead_lettered: int  # rows in raw/_dead_letter
    lost: int  # produced messages at no (partition, offset) of the lake
    duplicated: int  # extra copies of a (partition, offset) in the lake
    mismatched: int  # landed at the right offset with another event_id than was sent
    unexpected: int  # lake rows at offsets the topic does not hold
    distinct_event_ids: int  # produced (the live feed redelivers ~1%: Kafka holds them twice)
    event_ids_missing: int  # produced event_ids absent from raw/events

    @property
    def problems(self) -> list[str]:
        counts = (
            (self.lost, "produced messages never landed (lost)"),
            (self.duplicated, "extra copies of produced messages in the lake"),
            (self.mismatched, "messages landed with another event_id than the one sent"),
            (self.unexpected, "lake rows at offsets the topic does not hold"),
            (self.event_ids_missing, "produced event_ids absent from the lake"),
        )
        return [f"{count:,} {what}" for count, what in counts if count]


@dataclass(frozen=True)
class Drift:
    """RSS of one process role after the warm-up: max against median."""

    role: str
    count: int  # samples (dbt: runs) after the warm-up
    median: float  # bytes
    maximum: float  # bytes

    @property
    def percent(self) -> float:
        return (self.maximum - self.median) / self.median * 100 if self.median else 0.0


@dataclass(frozen=True)
class Limits:
    warmup_seconds: float  # samples (and dbt runs started) before this are not judged
    max_lag: int  # messages
    max_drift_percent: float = MAX_DRIFT_PERCENT


@dataclass
class Verdict:
    drifts: dict[str, Drift]
    max_lag: int | None
    integrity: Integrity | None
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def drift_of(role: str, values: Iterable[float | None]) -> Drift | None:
    measured = [value for value in values if value is not None]
    if not measured:
        return None
    return Drift(role, len(measured), statistics.median(measured), max(measured))


def judge(
    samples: Sequence[Sample],
    dbt_runs: Sequence[DbtRun],
    integrity: Integrity | None,
    limits: Limits,
    failures: Sequence[str] = (),
) -> Verdict:
    """PASS when, after the warm-up, every judged process's RSS stays within the drift limit
    (max vs median), the lag within its bound, and the lake holds every produced message
    exactly once; `failures` (a process that died, a drain that timed out) fail it too."""
    after = [s for s in samples if s.elapsed >= limits.warmup_seconds]
    drifts: dict[str, Drift] = {}
    problems: list[str] = list(failures)
    for role in SAMPLED_ROLES:
        drift = drift_of(role, (s.rss.get(role) for s in after))
        if drift is not None:
            drifts[role] = drift
        else:
            problems.append(f"{ROLE_LABELS[role]}: no RSS sample after the warm-up")
    runs_after = [run for run in dbt_runs if run.started >= limits.warmup_seconds]
    # A run that finished with a failing test built every model: its peak counts.
    finished = (run.peak_rss for run in runs_after if run.returncode is not None)
    dbt_drift = drift_of(DBT, finished)
    if dbt_drift is not None:
        drifts[DBT] = dbt_drift
    problems += [
        f"dbt run {run.number} failed (exit code {run.returncode}"
        + (f": {', '.join(run.failed_nodes)}" if run.failed_nodes else "")
        + f"; {run.log_path})"
        for run in dbt_runs
        if not run.ok
    ]
    for role, drift in drifts.items():
        if role not in LOAD_ROLES and drift.percent > limits.max_drift_percent:
            problems.append(
                f"{ROLE_LABELS[role]}: RSS grew {drift.percent:.1f}% after the warm-up (max "
                f"{drift.maximum / 1024**2:,.0f} MiB vs median {drift.median / 1024**2:,.0f} "
                f"MiB), over the {limits.max_drift_percent:g}% limit"
            )
    lags = [s.lag for s in after if s.lag is not None]
    max_lag = max(lags) if lags else None
    if max_lag is None:
        problems.append("lag: never measured after the warm-up")
    elif max_lag > limits.max_lag:
        problems.append(f"lag: reached {max_lag:,} messages, over the bound of {limits.max_lag:,}")
    if integrity is None:
        problems.append("the lake was not checked against the topic")
    else:
        problems += integrity.problems
    return Verdict(drifts, max_lag, integrity, problems)


def figures_of(
    verdict: Verdict,
    limits: Limits,
    *,
    minutes: float | None,
    planned_minutes: float,
    summary: str,
) -> list[Figure]:
    """The soak's figures in bench/results.json's shape; a figure it could not measure keeps
    its place with value None."""
    drift_target = Target(limits.max_drift_percent, at_most=True, unit="%")
    figures = []
    for role in REPORTED_ROLES:
        drift = verdict.drifts.get(role)
        what = "run peak" if role == DBT else "sample"
        note = (
            f"{ROLE_LABELS[role]}: max {drift.maximum / 1024**2:,.0f} MiB vs median "
            f"{drift.median / 1024**2:,.0f} MiB over {drift.count} {what}"
            f"{'' if drift.count == 1 else 's'} after the warm-up"
            if drift
            else f"{ROLE_LABELS[role]}: not sampled after the warm-up"
        )
        load = role in LOAD_ROLES
        if load:
            note += " (the load generator, not judged: the simulated app's data grows)"
        figures.append(
            make_figure(
                f"soak.rss_drift.{role}",
                drift.percent if drift else None,
                "%",
                target=None if load else drift_target,
                note=note,
            )
        )
    figures.append(
        make_figure(
            "soak.max_lag",
            verdict.max_lag,
            "messages",
            target=Target(limits.max_lag, at_most=True, unit="messages"),
            note="largest stream lag (topic end - checkpoint committed offsets) after the warm-up",
        )
    )
    integrity = verdict.integrity
    checked = (
        f"{integrity.produced:,} messages produced ({integrity.distinct_event_ids:,} distinct "
        f"event_ids), {integrity.landed:,} landed, {integrity.dead_lettered:,} dead-lettered"
        if integrity
        else "the lake was not checked"
    )
    zero = Target(0, at_most=True, unit="messages")
    figures += [
        make_figure(
            "soak.events_lost",
            integrity.lost if integrity else None,
            "messages",
            target=zero,
            note=checked,
        ),
        make_figure(
            "soak.events_duplicated",
            integrity.duplicated if integrity else None,
            "messages",
            target=zero,
            note="extra copies of a produced (partition, offset) in the lake",
        ),
        make_figure(
            "soak.duration",
            minutes,
            "min",
            target=Target(planned_minutes, at_most=False, unit="min"),
            note=summary,
        ),
    ]
    return figures


# --- processes ----------------------------------------------------------------------------------
def launch(command: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """A child in a session of its own (so it and its JVM stop together), output to log_path."""
    with log_path.open("ab") as output:
        output.write((" ".join(command) + "\n\n").encode())
        output.flush()
        return subprocess.Popen(
            command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_SECONDS) -> int | None:
    """SIGTERM the child's process group (the CLI stops cleanly on it), SIGKILL what is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return process.wait()


def tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _rss(process: Any) -> int:
    import psutil

    with contextlib.suppress(psutil.Error):
        if process.status() != psutil.STATUS_ZOMBIE:
            return process.memory_info().rss
    return 0


def _process(pid: int) -> Any | None:
    import psutil

    try:
        process = psutil.Process(pid)
        return None if process.status() == psutil.STATUS_ZOMBIE else process
    except psutil.Error:
        return None


def tree_rss(pid: int) -> int | None:
    """RSS of a process and its descendants; None once it has exited."""
    import psutil

    root = _process(pid)
    if root is None:
        return None
    with contextlib.suppress(psutil.Error):
        return _rss(root) + sum(_rss(child) for child in root.children(recursive=True))
    return None


def stream_rss(pid: int) -> dict[str, int | None]:
    """The stream's Python driver; its JVM (java descendants); its Python workers (the other
    descendants: pyspark.daemon and its forks)."""
    import psutil

    driver = _process(pid)
    if driver is None:
        return dict.fromkeys((STREAM_DRIVER, STREAM_JVM, STREAM_WORKERS))
    jvm = workers = 0
    with contextlib.suppress(psutil.Error):
        for child in driver.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.name() == "java":
                    jvm += _rss(child)
                elif child.name().startswith("python"):
                    workers += _rss(child)
    return {STREAM_DRIVER: _rss(driver), STREAM_JVM: jvm or None, STREAM_WORKERS: workers}


def broker_jvm_pid() -> int:
    """The broker LocalKafka started: this process's only java child at that moment."""
    import psutil

    javas = [c.pid for c in psutil.Process().children() if c.name() == "java"]
    if len(javas) != 1:
        raise RuntimeError(f"expected one broker JVM among this process's children, got {javas}")
    return javas[0]


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
# dbt's result lines: "81 of 158 FAIL 2507 assert_... [FAIL 2507 in 0.91s]", "ERROR creating ..."
DBT_FAILED_NODE = re.compile(r"\d+ of \d+ (FAIL \d+|ERROR)(?: creating .*? model)? (\S+)")


def dbt_failures(log_path: Path) -> tuple[str, ...]:
    """The nodes a dbt run's output names as failed (a test with its row count) or errored."""
    text = ANSI_ESCAPE.sub("", log_path.read_text(errors="replace")) if log_path.exists() else ""
    found = []
    for match in DBT_FAILED_NODE.finditer(text):
        status, node = match.groups()
        found.append(
            f"{node} ({status.split()[1]} rows)" if status != "ERROR" else f"{node} (error)"
        )
    if not found and (errors := [ln for ln in text.splitlines() if "Error" in ln]):
        found.append(errors[-1].strip()[:300])
    return tuple(dict.fromkeys(found))


class DbtProcess:
    """One dbt run (`warehouse load` + `warehouse build` in a fresh interpreter), its peak RSS
    sampled every 0.5 s in the background."""

    SCRIPT = (
        "import sys\n"
        "from pathlib import Path\n"
        "from orangescrum.core.settings import Settings\n"
        "from orangescrum.warehouse.load import build_marts, load_raw_events\n"
        "settings, target = Settings(_env_file=None), Path(sys.argv[1])\n"
        "load_raw_events(settings, target, quiet=True)\n"
        "print(build_marts(settings, target, quiet=True))\n"
    )

    def __init__(self, number: int, started: float, scratch: Path, logs: Path) -> None:
        self.number, self.started = number, started
        self.log_path = logs / f"dbt-{number}.log"
        # Its own target folder: the repo's dbt_project/target is other runs' (tests, Airflow).
        target = scratch / "dbt-target"
        self.process = launch(
            [sys.executable, "-c", self.SCRIPT, str(target)], self.log_path, scratch
        )
        self.peak = self.current = 0
        self._began = self._ended = time.monotonic()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while self.process.poll() is None:
            self.current = tree_rss(self.process.pid) or 0
            self.peak = max(self.peak, self.current)
            time.sleep(DBT_SAMPLE_SECONDS)
        self._ended, self.current = time.monotonic(), 0

    def done(self) -> bool:
        return self.process.poll() is not None

    def result(self) -> DbtRun:
        self._thread.join()
        returncode = self.process.poll()
        return DbtRun(
            self.number,
            self.started,
            self._ended - self._began,
            self.peak,
            returncode,
            str(self.log_path),
            dbt_failures(self.log_path) if returncode else (),
        )

    def stop(self) -> DbtRun:
        stop(self.process)
        return self.result()


# --- the pipeline's state -----------------------------------------------------------------------
def offsets(settings: Any) -> tuple[int | None, int | None]:
    """(lag, messages in the topic), read as `orangescrum status` reads them; None: unknown."""
    from orangescrum import health

    try:
        stream = health.stream_state(settings)
        kafka = health.kafka_state(settings, stream, timeout=5)
    except Exception as error:  # a sample that could not be read is a gap, not a failure
        log.debug("offsets unreadable: %s", error)
        return None, None
    topic = kafka.topic(health.EVENTS_ROLE)
    if topic is None or not topic.exists:
        return None, None
    return topic.lag_total, topic.messages


def committed_batch(settings: Any, checkpoint: str | None = None) -> int | None:
    """The highest batch the checkpoint (default: the events stream's) has committed."""
    from orangescrum.core.checkpoint import checkpoint_progress

    try:
        return checkpoint_progress(checkpoint or settings.lake.stream_checkpoint).committed_batch_id
    except Exception:  # the checkpoint is being written
        return None


KEYS = ["kafka_partition", "kafka_offset"]


def lake_rows(folder: Path, columns: list[str]) -> Any:
    """The visible Parquet files under folder (hidden = pending), those columns only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"kafka_partition": pa.int32(), "kafka_offset": pa.int64(), "event_id": pa.string()}
    schema = pa.schema([(name, types[name]) for name in columns])
    files = sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith((".", "_")))
    tables = [pq.read_table(path, columns=columns).cast(schema) for path in files]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def topic_rows(settings: Any, idle_timeout: float = 120) -> Any:
    """Every message of the events topic: (partition, offset, event_id decoded with the
    project's deserializer; null for a message that does not decode)."""
    import pyarrow as pa
    from confluent_kafka import Consumer, TopicPartition

    from ingestion.serde import DecodeError, EventDeserializer
    from orangescrum.core.contract.registry import registry_for
    from orangescrum.core.contract.schema import load_schema_text

    registry = registry_for(
        settings.schema_registry_url, settings.schema_registry_basic_auth.get_secret_value()
    )
    deserializer = EventDeserializer(registry, load_schema_text())
    consumer = Consumer(
        settings.kafka_client_config()
        | {"group.id": f"soak-check-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
        | {"log_level": 3}
    )
    topic = settings.topic_events
    batches: list[pa.RecordBatch] = []
    try:
        numbers = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends: dict[int, int] = {}
        assignment = []
        for number in numbers:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, number), timeout=10)
            if high > low:
                ends[number] = high
                assignment.append(TopicPartition(topic, number, low))
        consumer.assign(assignment)
        partitions: list[int] = []
        positions: list[int] = []
        event_ids: list[str | None] = []

        def flush() -> None:
            batches.append(
                pa.record_batch(
                    [
                        pa.array(partitions, pa.int32()),
                        pa.array(positions, pa.int64()),
                        pa.array(event_ids, pa.string()),
                    ],
                    names=[*KEYS, "event_id"],
                )
            )
            partitions.clear()
            positions.clear()
            event_ids.clear()

        last_message = time.monotonic()
        while ends:
            messages = consumer.consume(num_messages=10_000, timeout=1)
            if not messages and time.monotonic() - last_message > idle_timeout:
                raise RuntimeError(f"the topic stopped answering before its end: {ends}")
            for message in messages:
                if message.error() is not None:
                    raise RuntimeError(f"reading {topic} back failed: {message.error()}")
                last_message = time.monotonic()
                number, offset = message.partition(), message.offset()
                if number not in ends or offset >= ends[number]:
                    continue
                try:
                    event_id = deserializer.deserialize(message.value())[1]["event_id"]
                except DecodeError:
                    event_id = None
                partitions.append(number)
                positions.append(offset)
                event_ids.append(event_id)
                if offset == ends[number] - 1:
                    del ends[number]
            if len(positions) >= 100_000:
                flush()
        flush()
    finally:
        consumer.close()
    return pa.Table.from_batches(batches)


def check_lake(settings: Any) -> Integrity:
    """The topic against the lake: every message at its (partition, offset) exactly once,
    with the event_id that was sent."""
    import pyarrow as pa
    import pyarrow.compute as pc

    produced = topic_rows(settings)
    lake = settings.lake
    events = lake_rows(Path(lake.raw_events), [*KEYS, "event_id"])
    dead = lake_rows(Path(lake.dead_letters), [*KEYS, "event_id"])
    landed = pa.concat_tables([events, dead])
    copies = landed.group_by(KEYS).aggregate([([], "count_all")])
    extra = pc.subtract(copies["count_all"], 1)
    lake_ids = events.rename_columns([*KEYS, "lake_event_id"])
    same_offset = produced.join(lake_ids, keys=KEYS, join_type="inner")
    differs = pc.fill_null(
        pc.not_equal(same_offset["event_id"], same_offset["lake_event_id"]), True
    )
    produced_ids = produced.filter(pc.is_valid(produced["event_id"])).select(["event_id"])
    distinct_ids = produced_ids.group_by("event_id").aggregate([])
    landed_ids = events.select(["event_id"]).group_by("event_id").aggregate([])
    return Integrity(
        produced=produced.num_rows,
        landed=events.num_rows,
        dead_lettered=dead.num_rows,
        lost=produced.join(copies, keys=KEYS, join_type="left anti").num_rows,
        duplicated=int(pc.sum(extra).as_py() or 0),
        mismatched=int(pc.sum(pc.cast(differs, pa.int64())).as_py() or 0),
        unexpected=copies.join(produced.select(KEYS), keys=KEYS, join_type="left anti").num_rows,
        distinct_event_ids=distinct_ids.num_rows,
        event_ids_missing=distinct_ids.join(
            landed_ids, keys="event_id", join_type="left anti"
        ).num_rows,
    )


# --- the soak -----------------------------------------------------------------------------------
@dataclass
class Outcome:
    samples: list[Sample] = field(default_factory=list)
    dbt_runs: list[DbtRun] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    integrity: Integrity | None = None
    produced_seconds: float | None = None  # the producer's wall time, launch to exit


def mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 1024**2:,.0f}"


def clock(seconds: float) -> str:
    return f"{int(seconds // 60):d}:{int(seconds % 60):02d}"


def progress_line(sample: Sample, planned_seconds: float, dbt: DbtProcess | None, done: int) -> str:
    producing = sample.phase == "producing" and sample.produced and sample.elapsed
    rate = f" ({sample.produced / sample.elapsed:,.0f}/s)" if producing else ""
    rss = ", ".join(f"{SHORT_LABELS[r]} {mib(sample.rss.get(r))}" for r in SAMPLED_ROLES)
    running = f", dbt {mib(dbt.current)} (run {dbt.number})" if dbt else ""
    lag = "-" if sample.lag is None else f"{sample.lag:,}"
    produced = "-" if sample.produced is None else f"{sample.produced:,}"
    return (
        f"[{clock(sample.elapsed)}/{clock(planned_seconds)} {sample.phase}] produced {produced}"
        f"{rate}, lag {lag} | RSS MiB: {rss}{running} | dbt runs done {done}"
    )


def prepare_environment(
    data_dir: Path,
    bootstrap: str,
    trigger_seconds: float | None,
    dbt_memory_limit: str = DEFAULT_DBT_MEMORY_LIMIT,
) -> None:
    """This process's ORANGESCRUM_* settings, which every child inherits: a scratch data dir
    (lake, checkpoint, warehouse, logs), the soak's broker and DuckDB's memory cap; any other
    setting from the caller's environment (a lake URI, a warehouse path) is dropped so nothing
    leaks out."""
    for name in [n for n in os.environ if n.startswith("ORANGESCRUM_")]:
        if name != "ORANGESCRUM_JAR_CACHE_DIR":
            del os.environ[name]
    os.environ |= {
        "ORANGESCRUM_DATA_DIR": str(data_dir),
        "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "ORANGESCRUM_DUCKDB_MEMORY_LIMIT": dbt_memory_limit,
        "PYTHONUNBUFFERED": "1",
    }
    if trigger_seconds is not None:
        os.environ["ORANGESCRUM_TRIGGER_SECONDS"] = f"{trigger_seconds:g}"


def wait_for_stream(
    settings: Any, stream: subprocess.Popen[bytes], timeout: float, checkpoint: str | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while committed_batch(settings, checkpoint) is None:
        if stream.poll() is not None:
            raise RuntimeError(f"the stream exited with code {stream.returncode} while starting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the stream committed no micro-batch within {timeout:.0f}s")
        time.sleep(1)


def soak(args: argparse.Namespace, scratch: Path, logs: Path) -> Outcome:
    from orangescrum.core.broker import LocalKafka
    from orangescrum.core.settings import Settings
    from orangescrum.core.topics import create_topics

    outcome = Outcome()
    planned = args.minutes * 60
    broker = LocalKafka.from_settings(Settings(_env_file=None), scratch / "kafka").start()
    children: list[subprocess.Popen[bytes]] = []
    dbt: DbtProcess | None = None
    try:
        broker_pid = broker_jvm_pid()
        prepare_environment(
            scratch / "data", broker.bootstrap, args.trigger_seconds, args.dbt_memory_limit
        )
        settings = Settings(_env_file=None)
        create_topics(settings)
        log.info(
            "broker on %s (pid %d); data in %s; logs in %s",
            broker.bootstrap,
            broker_pid,
            scratch,
            logs,
        )
        cli = [sys.executable, "-m", "orangescrum"]
        stream = launch([*cli, "stream", "--continuous"], logs / "stream.log", scratch)
        children.append(stream)
        log.info(
            "stream started (pid %d, trigger %gs); waiting for its first micro-batch",
            stream.pid,
            settings.trigger_seconds,
        )
        try:
            wait_for_stream(settings, stream, args.stream_start_timeout)
        except RuntimeError:
            log.error("the stream did not start; last lines:\n%s", tail(logs / "stream.log"))
            raise
        producer = launch(
            [*cli, "simulate", "live", "--rate", f"{args.rate:g}", "--duration", f"{planned:g}"],
            logs / "producer.log",
            scratch,
        )
        children.append(producer)
        started = time.monotonic()
        log.info(
            "producing %s events/s for %s min (pid %d); %s; a sample every %ss; warm-up %s",
            f"{args.rate:,g}",
            f"{args.minutes:g}",
            producer.pid,
            f"dbt every {args.dbt_every_minutes:g} min" if args.dbt_every_minutes else "no dbt",
            f"{args.sample_seconds:g}",
            clock(planned * args.warmup_fraction),
        )
        every = args.dbt_every_minutes * 60
        dbt_due = [every * k for k in range(1, int(planned // every) + 1)] if every else []
        next_sample, phase, drain_deadline = 0.0, "producing", float("inf")
        with (logs / "samples.jsonl").open("w") as samples_file:
            while True:
                elapsed = time.monotonic() - started
                if dbt is not None and dbt.done():
                    run = dbt.result()
                    outcome.dbt_runs.append(run)
                    log.info(
                        "dbt run %d: %s in %.0fs, peak RSS %s MiB",
                        run.number,
                        "done" if run.ok else f"FAILED ({', '.join(run.failed_nodes)})",
                        run.seconds,
                        mib(run.peak_rss),
                    )
                    dbt = None
                if dbt is None and dbt_due and elapsed >= dbt_due[0]:
                    dbt_due.pop(0)
                    dbt = DbtProcess(len(outcome.dbt_runs) + 1, elapsed, scratch, logs)
                    log.info("dbt run %d started (warehouse load + build)", dbt.number)
                if stream.poll() is not None:
                    log.error("the stream exited; last lines:\n%s", tail(logs / "stream.log"))
                    outcome.failures.append(
                        f"the stream exited with code {stream.returncode} at {clock(elapsed)} "
                        f"({logs / 'stream.log'})"
                    )
                    break
                if broker.exited():
                    outcome.failures.append(
                        f"the broker exited at {clock(elapsed)}: {broker.exited()}"
                    )
                    break
                if phase == "producing" and producer.poll() is not None:
                    outcome.produced_seconds = elapsed
                    if producer.returncode != 0:
                        outcome.failures.append(
                            f"the producer exited with code {producer.returncode} at "
                            f"{clock(elapsed)} ({logs / 'producer.log'})"
                        )
                    phase, drain_deadline = "draining", time.monotonic() + args.drain_timeout
                    log.info("producer done after %s; draining", clock(elapsed))
                if phase == "producing" and elapsed > planned + args.drain_timeout:
                    outcome.failures.append(f"the producer was still running at {clock(elapsed)}")
                    stop(producer)
                    continue
                if elapsed >= next_sample:
                    lag, produced = offsets(settings)
                    rss = {BROKER: tree_rss(broker_pid), PRODUCER: tree_rss(producer.pid)}
                    sample = Sample(elapsed, rss | stream_rss(stream.pid), lag, produced, phase)
                    outcome.samples.append(sample)
                    samples_file.write(json.dumps(asdict(sample)) + "\n")
                    samples_file.flush()
                    log.info("%s", progress_line(sample, planned, dbt, len(outcome.dbt_runs)))
                    next_sample += args.sample_seconds
                    if phase == "draining" and lag == 0 and dbt is None and not dbt_due:
                        break
                if time.monotonic() > drain_deadline:
                    outcome.failures.append(
                        f"not drained within {args.drain_timeout:g}s of the producer's end"
                        + (f" (dbt run {dbt.number} still running)" if dbt else "")
                    )
                    break
                time.sleep(0.25)
        if dbt is not None:
            outcome.dbt_runs.append(dbt.stop())
            dbt = None
        while children:
            stop(children.pop())
        log.info("stream stopped; reading the topic back and the lake")
        try:
            outcome.integrity = check_lake(settings)
        except Exception as error:  # reported in the verdict, not a crash
            log.exception("the lake check failed")
            outcome.failures.append(f"the lake check failed: {error}")
        return outcome
    finally:
        if dbt is not None:
            dbt.stop()
        while children:
            stop(children.pop())
        broker.stop()


# --- report -------------------------------------------------------------------------------------
def summary_text(args: argparse.Namespace, outcome: Outcome) -> str:
    produced = outcome.integrity.produced if outcome.integrity else None
    seconds = outcome.produced_seconds
    rate = f"{produced / seconds:,.0f}" if produced and seconds else "?"
    dbt = (
        f"{len(outcome.dbt_runs)} dbt runs every {args.dbt_every_minutes:g} min"
        if args.dbt_every_minutes
        else "no dbt"
    )
    return (
        f"{produced or 0:,} messages at {rate}/s (asked {args.rate:,g}/s), {dbt}, "
        f"{len(outcome.samples)} samples every {args.sample_seconds:g} s, warm-up the first "
        f"{args.warmup_fraction:.0%}"
    )


def print_report(
    args: argparse.Namespace, outcome: Outcome, verdict: Verdict, limits: Limits
) -> None:
    print()
    print(f"{'process':<26} {'median MiB':>10} {'max MiB':>8} {'drift':>7}  limit")
    for role in REPORTED_ROLES:
        drift = verdict.drifts.get(role)
        limit = "not judged (load)" if role in LOAD_ROLES else f"<= {limits.max_drift_percent:g}%"
        if drift is None:
            print(f"{ROLE_LABELS[role]:<26} {'-':>10} {'-':>8} {'-':>7}  {limit}")
            continue
        print(
            f"{ROLE_LABELS[role]:<26} {mib(drift.median):>10} {mib(drift.maximum):>8} "
            f"{drift.percent:>6.1f}%  {limit}"
        )
    for run in outcome.dbt_runs:
        print(
            f"  dbt run {run.number}: started {clock(run.started)}, {run.seconds:.0f}s, peak "
            f"{mib(run.peak_rss)} MiB, exit {run.returncode}"
        )
    lag = "-" if verdict.max_lag is None else f"{verdict.max_lag:,}"
    print(f"max lag after warm-up: {lag} messages (bound {limits.max_lag:,})")
    integrity = outcome.integrity
    if integrity:
        print(
            f"lake vs topic: {integrity.produced:,} produced ({integrity.distinct_event_ids:,} "
            f"distinct event_ids), {integrity.landed:,} landed, {integrity.dead_lettered:,} "
            f"dead-lettered; lost {integrity.lost:,}, duplicated {integrity.duplicated:,}, "
            f"wrong event_id {integrity.mismatched:,}, unexpected {integrity.unexpected:,}, "
            f"event_ids missing {integrity.event_ids_missing:,}"
        )
    print()
    if verdict.passed:
        print(f"VERDICT: PASS ({summary_text(args, outcome)})")
    else:
        print("VERDICT: FAIL")
        for problem in verdict.problems:
            print(f"  - {problem}")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--minutes",
        type=float,
        help=f"how long to produce (default {DEFAULT_MINUTES:g}; --quick {QUICK_MINUTES:g})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"events per second (default {DEFAULT_RATE:g})",
    )
    parser.add_argument(
        "--dbt-every-minutes",
        type=float,
        help=f"a dbt run (warehouse load + build) this often; 0: none (default "
        f"{DEFAULT_DBT_EVERY_MINUTES:g}; --quick {QUICK_DBT_EVERY_MINUTES:g})",
    )
    parser.add_argument(
        "--warmup-fraction",
        type=float,
        help=f"share of the run not judged (default {DEFAULT_WARMUP_FRACTION:g}; --quick "
        f"{QUICK_WARMUP_FRACTION:g})",
    )
    parser.add_argument(
        "--sample-seconds",
        type=float,
        default=DEFAULT_SAMPLE_SECONDS,
        help=f"RSS and lag sampling interval (default {DEFAULT_SAMPLE_SECONDS:g})",
    )
    parser.add_argument(
        "--dbt-memory-limit",
        default=DEFAULT_DBT_MEMORY_LIMIT,
        help="DuckDB's memory_limit for the dbt runs (default %(default)s). The warehouse grows "
        "all hour, and uncapped DuckDB keeps what it reads cached up to 80%% of RAM (the "
        "first full-length soak: run peaks 1.4 -> 4.2 GiB over four runs), so run peaks can "
        "only be flat under a cap; over it DuckDB spills to disk",
    )
    parser.add_argument(
        "--max-lag-seconds",
        type=float,
        default=DEFAULT_MAX_LAG_SECONDS,
        help="lag bound, in seconds of production: at most rate x this many messages "
        f"(default {DEFAULT_MAX_LAG_SECONDS:g})",
    )
    parser.add_argument(
        "--trigger-seconds",
        type=float,
        help="the stream's trigger (default: the project's, ORANGESCRUM_TRIGGER_SECONDS)",
    )
    parser.add_argument(
        "--stream-start-timeout",
        type=float,
        default=600,
        help="seconds the stream may take to commit its first batch (default 600)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=600,
        help="seconds the stream (and the last dbt run) may take to catch up after the "
        "producer (default 600)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a tenth of the length: {QUICK_MINUTES:g} min, dbt every "
        f"{QUICK_DBT_EVERY_MINUTES:g}, warm-up {QUICK_WARMUP_FRACTION:g}",
    )
    add_run_arguments(parser, keep_help="keep the scratch folder (broker data, lake, warehouse)")
    args = parser.parse_args(argv)
    quick = args.quick
    if args.minutes is None:
        args.minutes = QUICK_MINUTES if quick else DEFAULT_MINUTES
    if args.dbt_every_minutes is None:
        args.dbt_every_minutes = QUICK_DBT_EVERY_MINUTES if quick else DEFAULT_DBT_EVERY_MINUTES
    if args.warmup_fraction is None:
        args.warmup_fraction = QUICK_WARMUP_FRACTION if quick else DEFAULT_WARMUP_FRACTION
    if args.minutes <= 0 or args.rate <= 0 or args.sample_seconds <= 0:
        parser.error("--minutes, --rate and --sample-seconds must be positive")
    if not 0 <= args.warmup_fraction < 1:
        parser.error("--warmup-fraction must be in [0, 1)")
    if args.dbt_every_minutes < 0:
        parser.error("--dbt-every-minutes must be 0 (no dbt) or positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("orangescrum").setLevel(logging.WARNING)
    if not args.json:
        load_runs(args.results)  # fail now, not after an hour, if the history is unreadable
    run = new_run(quick=args.quick)
    exit_on_sigterm()
    with scratch_and_logs(args, "soak") as (scratch, logs):
        outcome = soak(args, scratch, logs)
    limits = Limits(
        warmup_seconds=args.minutes * 60 * args.warmup_fraction,
        max_lag=round(args.rate * args.max_lag_seconds),
    )
    failures = list(outcome.failures)
    produced = outcome.integrity.produced if outcome.integrity else 0
    if (
        outcome.produced_seconds
        and produced < MIN_RATE_SHARE * args.rate * outcome.produced_seconds
    ):
        failures.append(
            f"the producer reached {produced / outcome.produced_seconds:,.0f} events/s, under "
            f"{MIN_RATE_SHARE:.0%} of the {args.rate:,g} asked"
        )
    verdict = judge(outcome.samples, outcome.dbt_runs, outcome.integrity, limits, failures)
    print_report(args, outcome, verdict, limits)
    minutes = outcome.produced_seconds / 60 if outcome.produced_seconds else None
    figures = figures_of(
        verdict,
        limits,
        minutes=minutes,
        planned_minutes=args.minutes,
        summary=f"{'PASS' if verdict.passed else 'FAIL'}: {summary_text(args, outcome)}",
    )
    notes = [f"soak: {problem}" for problem in verdict.problems]
    if args.json:
        write_script_run(args.json, run, figures, notes)
        log.info("run written to %s", args.json)
    else:
        run["figures"], run["notes"] = figures, notes
        count = append_run(args.results, finish_run(run))
        log.info("run %d recorded in %s (python bench/report.py charts it)", count, args.results)
    log.info("logs and samples: %s", logs)
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
