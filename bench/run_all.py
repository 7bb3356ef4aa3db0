"""Run every benchmark in turn, record the figures and regenerate docs/BENCHMARKS.md.

    python bench/run_all.py            # `make bench`: full volumes, about 50 minutes on 2 cores
    python bench/run_all.py --quick    # a tenth of the volume, about 3 minutes (CI smoke test)
    python bench/run_all.py --soak     # and then the hour-long soak (bench/soak.py)
    python bench/run_all.py --bootstrap kafka-1:9092   # the Kafka steps on an existing broker

Steps, each a fresh interpreter running one script with --json (and --quick when given):
producer.py (Avro producer vs raw produce and vs confluent-kafka's AvroSerializer),
spark_landing.py (Spark landing vs a bare consumer, event -> lake latency at 2,000 events/s,
peak RSS of the whole stack), dbt_scale.py (full and one-new-day `dbt build` at 1M, 10M and
100M events, each size within a time limit), dag_parse.py (Cosmos DAG parse), cdc.py (the
app-database path, MariaDB -> Debezium -> the change stream -> the lake: changes/s, commit ->
lake latency at 500 changes/s, peak RSS; full runs only: its start-up alone overruns the quick
run's budget); with --soak, soak.py last (the live pipeline for an hour: RSS drift per
process, lag, losses). Their figures become one run appended to --results (which keeps every
earlier run), then bench/report.py rewrites --docs and its charts. A step that fails or
overruns is named in the run's notes, the other steps still run, and the exit code is 1 (a step
that wrote its figures before failing, like a soak whose verdict is FAIL, keeps them in the
run). Each step's output goes to a log file in --logs (a new temporary folder unless given),
named in the progress lines.

Brokers: in a full run, producer.py and spark_landing.py each start a local Apache Kafka
broker of their own, so each measures against a fresh broker and spark_landing's peak RSS
counts it. A --quick run starts one local broker for both (its figures only show that every
step works; a broker start costs seconds of CPU). `--bootstrap HOST:PORT` runs both on an
existing broker instead, any run (spark_landing's peak RSS then leaves the broker out);
cdc.py and soak.py always start their own, whose memory they measure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report
from bench.results import (
    REPO_ROOT,
    RESULTS_FILE,
    Figure,
    append_run,
    exit_on_sigterm,
    finish_run,
    format_met,
    format_number,
    load_runs,
    new_run,
    run_problems,
)
from orangescrum.core.errors import OrangeScrumError

log = logging.getLogger("bench")

BENCH_DIR = REPO_ROOT / "bench"
DBT_FULL_SIZES = (1_000_000, 10_000_000, 100_000_000)
DBT_SIZE_LIMIT_MINUTES = 30.0
TERMINATE_GRACE_SECONDS = 60


@dataclass(frozen=True)
class Step:
    """One bench script, its arguments for a full run, and how long it may take."""

    name: str
    script: str
    measures: str
    full_args: tuple[str, ...]
    full_minutes: float
    quick_minutes: float
    in_quick: bool = True  # False: a step whose start-up alone is beyond the CI smoke budget
    takes_bootstrap: bool = False  # True: it runs on `--bootstrap HOST:PORT` when given one

    def command(self, *, quick: bool, json_path: Path, extra: tuple[str, ...] = ()) -> list[str]:
        volume = ("--quick",) if quick else self.full_args
        script = str(BENCH_DIR / self.script)
        return [sys.executable, script, *volume, *extra, "--json", str(json_path)]

    def timeout_seconds(self, *, quick: bool) -> float:
        return 60 * (self.quick_minutes if quick else self.full_minutes)


STEPS = (
    Step(
        "producer",
        "producer.py",
        "Avro producer vs raw produce and vs confluent-kafka's AvroSerializer",
        ("--events", "200000", "--repeats", "3"),
        full_minutes=20,
        quick_minutes=5,
        takes_bootstrap=True,
    ),
    Step(
        "spark_landing",
        "spark_landing.py",
        "Spark landing vs a bare consumer, latency at 2,000 events/s, peak RSS",
        ("--events", "200000", "--live-seconds", "30", "--rate", "2000"),
        full_minutes=20,
        quick_minutes=8,
        takes_bootstrap=True,
    ),
    Step(
        "dbt_scale",
        "dbt_scale.py",
        "dbt full and one-new-day builds",
        (),  # sizes and the time limit come from --dbt-events / --dbt-size-limit-minutes
        full_minutes=150,
        quick_minutes=8,
    ),
    Step(
        "dag_parse",
        "dag_parse.py",
        "Cosmos DAG parse, manifest vs dbt ls",
        ("--repeats", "5"),
        full_minutes=15,
        quick_minutes=5,
    ),
    Step(
        "cdc",
        "cdc.py",
        "app database -> Debezium -> change stream -> lake: changes/s, latency, peak RSS",
        (),  # its defaults: 60,000 changes, then 120 s at 500 changes/s
        full_minutes=30,
        quick_minutes=10,
        # Broker, MariaDB, Connect's snapshot and the stream take 1-2 minutes to start on 2
        # cores before anything is measured: not in the ~60 s a quick step may take.
        in_quick=False,
    ),
)
# Only with --soak (an hour and more): the live pipeline's memory, lag and losses.
SOAK = Step(
    "soak",
    "soak.py",
    "the live pipeline at 2,000 events/s for 60 min, dbt every 15: RSS drift, lag, losses",
    (),  # its defaults are the full soak
    full_minutes=100,  # 60 producing + the stream's start, the drain and the read-back
    quick_minutes=25,
)


# --- running one step ---------------------------------------------------------------------------
def _copy_lines(source: IO[str], sink: IO[str], echo: bool) -> None:
    for line in source:
        sink.write(line)
        sink.flush()
        if echo:
            sys.stderr.write(line)


def _stop_group(process: subprocess.Popen[str]) -> None:
    """SIGTERM the step's process group (it was started in a session of its own), then
    SIGKILL what is left after a grace period: the scripts clean up their scratch folders on
    SIGTERM."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(TERMINATE_GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_logged(command: list[str], log_path: Path, timeout: float, echo: bool) -> int | None:
    """Run `command` with its output in log_path; its exit code, or None if it timed out."""
    with log_path.open("w") as sink:
        sink.write(" ".join(command) + "\n\n")
        sink.flush()
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
        assert process.stdout is not None
        copier = threading.Thread(target=_copy_lines, args=(process.stdout, sink, echo))
        copier.start()
        try:
            returncode: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            if process.poll() is None:  # timed out, or this process was interrupted
                _stop_group(process)
            copier.join()
    return returncode


def step_figures(json_path: Path) -> list[Figure]:
    run = json.loads(json_path.read_text())
    problems = run_problems(run)
    if problems:
        raise ValueError("; ".join(problems))
    return run["figures"]


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_step(
    step: Step, position: str, *, quick: bool, logs: Path, extra: tuple[str, ...], echo: bool
) -> tuple[list[Figure], str | None]:
    """(figures, None), or (the figures it wrote before failing, usually none; why)."""
    json_path, log_path = logs / f"{step.name}.json", logs / f"{step.name}.log"
    json_path.unlink(missing_ok=True)  # a --logs folder reused: never an earlier run's figures
    timeout = step.timeout_seconds(quick=quick)
    log.info("%s %s: %s (output: %s)", position, step.name, step.measures, log_path)
    started = time.monotonic()
    returncode = run_logged(
        step.command(quick=quick, json_path=json_path, extra=extra), log_path, timeout, echo
    )
    minutes = (time.monotonic() - started) / 60
    if returncode is None:
        problem = f"{step.name}: stopped after the {timeout / 60:.0f}-minute limit"
    elif returncode != 0:
        problem = f"{step.name}: failed with exit code {returncode} (see {log_path})"
    elif not json_path.exists():
        problem = f"{step.name}: wrote no {json_path.name}"
    else:
        figures = step_figures(json_path)
        log.info("%s %s: done in %.1f min, %d figures", position, step.name, minutes, len(figures))
        return figures, None
    log.error("%s %s after %.1f min; last lines:\n%s", position, problem, minutes, tail(log_path))
    # A step that measured, then failed its own verdict (the soak), still wrote its figures.
    figures = step_figures(json_path) if returncode is not None and json_path.exists() else []
    return figures, problem


def dbt_arguments(arguments: argparse.Namespace) -> tuple[str, ...]:
    if arguments.quick and not arguments.dbt_events:
        return ()
    sizes = arguments.dbt_events or list(DBT_FULL_SIZES)
    return (
        "--events",
        *map(str, sizes),
        "--time-limit-minutes",
        f"{arguments.dbt_size_limit_minutes:g}",
    )


class SharedBroker:
    """The local Apache Kafka broker a quick run's Kafka steps share: started for the first of
    them, stopped by `stop` (after the last, so the steps after it have the cores and memory
    to themselves). JVM options come from ORANGESCRUM_JVM_OPTIONS, as for the steps' own."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.bootstrap = ""

    def start(self) -> str:
        """Its address, starting it on the first call; raises OrangeScrumError if it fails."""
        if not self.bootstrap:
            from orangescrum.core.broker import LocalKafka
            from orangescrum.core.settings import Settings

            scratch = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-kafka-"))
            broker = LocalKafka.from_settings(Settings(_env_file=None), Path(scratch) / "kafka")
            try:
                self.bootstrap = self._stack.enter_context(broker).bootstrap
            except BaseException:
                self._stack.close()  # the scratch folder
                raise
            log.info("one local Kafka broker for the Kafka steps on %s", self.bootstrap)
        return self.bootstrap

    def stop(self) -> None:
        self._stack.close()
        self.bootstrap = ""


def bootstrap_arguments(
    arguments: argparse.Namespace, step: Step, shared: SharedBroker
) -> tuple[tuple[str, ...], str | None]:
    """(`--bootstrap` for the step, or nothing: it starts its own broker; a problem to note)."""
    if not step.takes_bootstrap:
        return (), None
    if arguments.bootstrap:
        return ("--bootstrap", arguments.bootstrap), None
    if not arguments.quick:
        return (), None  # a broker of the step's own, as every full run measured it
    try:
        return ("--bootstrap", shared.start()), None
    except OrangeScrumError as error:
        return (), f"{step.name}: the shared broker did not start ({error}); it started its own"


# --- the run ------------------------------------------------------------------------------------
def steps_for(*, quick: bool, soak: bool) -> tuple[Step, ...]:
    chosen = tuple(step for step in STEPS if step.in_quick or not quick)
    return (*chosen, SOAK) if soak else chosen


def run_steps(arguments: argparse.Namespace, logs: Path) -> dict[str, Any]:
    run = new_run(quick=arguments.quick)
    volume = "quick (a tenth of the volume)" if arguments.quick else "full"
    steps = steps_for(quick=arguments.quick, soak=arguments.soak)
    log.info("%s run of %d benchmarks; logs in %s", volume, len(steps), logs)
    last_kafka_step = max((n for n, s in enumerate(steps, start=1) if s.takes_bootstrap), default=0)
    shared = SharedBroker()
    try:
        for number, step in enumerate(steps, start=1):
            extra = dbt_arguments(arguments) if step.name == "dbt_scale" else ()
            bootstrap, broker_problem = bootstrap_arguments(arguments, step, shared)
            if broker_problem:
                log.error("%s", broker_problem)
                run["notes"].append(broker_problem)
            figures, problem = run_step(
                step,
                f"[{number}/{len(steps)}]",
                quick=arguments.quick,
                logs=logs,
                extra=(*extra, *bootstrap),
                echo=arguments.verbose,
            )
            run["figures"] += figures
            if problem:
                run["notes"].append(problem)
            if number == last_kafka_step:
                shared.stop()
    finally:
        shared.stop()
    return finish_run(run)


def print_table(run: dict[str, Any]) -> None:
    """The run's figures as a plain-text table on stdout."""
    header = ("figure", "value", "reference", "ratio", "target", "met")
    rows = [header] + [
        (
            figure["name"],
            format_number(figure["value"], figure["unit"]),
            format_number(figure["reference_value"], figure["unit"]),
            format_number(figure["ratio"]),
            figure["target"] or "-",
            format_met(figure["met"]),
        )
        for figure in run["figures"]
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    for figure in run["figures"]:
        if figure["value"] is None:
            print(f"{figure['name']}: not measured: {figure['note']}")
    for note in run["notes"]:
        print(f"note: {note}")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="a tenth of the volume of each benchmark"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS_FILE,
        help="JSON history the run is appended to (default bench/results.json)",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=report.DOCS_FILE,
        help="markdown report to rewrite; charts go to benchmarks/ beside it "
        "(default docs/BENCHMARKS.md)",
    )
    parser.add_argument(
        "--logs", type=Path, help="folder for each step's output (default: a new temp folder)"
    )
    parser.add_argument(
        "--dbt-events",
        type=int,
        nargs="+",
        metavar="N",
        help="dbt sizes (default 1000000 10000000 100000000; --quick 100000)",
    )
    parser.add_argument(
        "--dbt-size-limit-minutes",
        type=float,
        default=DBT_SIZE_LIMIT_MINUTES,
        help="stop a dbt size whose builds have not finished this long after its lake was "
        f"written, and record that instead (default {DBT_SIZE_LIMIT_MINUTES:g})",
    )
    parser.add_argument(
        "--soak",
        action="store_true",
        help="also run bench/soak.py last: 2,000 events/s for 60 minutes (--quick: 6), "
        "RSS drift per process, lag and losses (not in the default run)",
    )
    parser.add_argument(
        "--bootstrap",
        default="",
        metavar="HOST:PORT",
        help="run producer.py and spark_landing.py on this existing broker (default: a local "
        "broker of each one's own; --quick: one local broker they share)",
    )
    parser.add_argument("--verbose", action="store_true", help="echo each step's output too")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    exit_on_sigterm()  # a step running and the shared broker are stopped on the way out
    load_runs(arguments.results)  # fail now, not after an hour, if the history is unreadable
    logs = arguments.logs or Path(tempfile.mkdtemp(prefix="orangescrum-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    run = run_steps(arguments, logs)
    count = append_run(arguments.results, run)
    log.info("run %d recorded in %s", count, arguments.results)
    written = report.generate(arguments.results, arguments.docs)
    log.info("report: %s and %d charts", arguments.docs, len(written) - 1)
    log.info("all steps took %.1f min", (time.monotonic() - started) / 60)
    print_table(run)
    return 1 if run["notes"] else 0


if __name__ == "__main__":
    sys.exit(main())
