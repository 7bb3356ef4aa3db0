"""dbt at scale on DuckDB: a full `dbt build` at 1M and 10M events, then one new day.

    python bench/dbt_scale.py --events 1000000 10000000

For each size: a lake of that many raw events is written (a simulated OrangeScrum history,
replicated into cohorts of companies with every id shifted, so dims and facts keep their
shape), `create_raw_events` + `dbt build` run from scratch (full), then one more day of events
lands and `dbt build` runs again as of that day, three times from the same state, median
reported (incremental: staging and the fact add the lookback window's new events, the daily
intermediates and aggregate rebuild its days, the histories and other per-entity models
update the entities with an event in it, the dims fold the daily intermediates, and data
tests of incremental models check the latest load). Both builds run as the scheduler runs
them: unit tests excluded (they run in CI), the same --vars, in-process (dbtRunner, as the
Airflow DAGs invoke dbt), each in a fresh interpreter after a `create_raw_events` that loads
dbt; interpreter start and imports are not timed.
Targets: 10M full <= 60 s; incremental/full <= 0.1; one new day on 10x the history (100M
against 10M) costs at most 1.2x.

History grows in time, as a real one does, not in daily volume: cohorts come in periods of
`--cohorts-per-period` (16, the 10M size's count), each period the simulated days once more,
right before the next period's. 10M is one period (90 days), 100M ten of them, each day as busy
as a 10M day. The new day is the last simulated day once more for the latest period's cohorts,
so it and the lookback window before it hold the same events on 10M as on 100M: only the
history beneath them differs, which is what the 1.2x target is about. `dbt run` alone (no
tests) is timed too, to separate model cost from test cost (printed, not recorded; not with
--quick). `--slowest N` lists where each build spent its time.

Each size runs in a child process, watched: `--time-limit-minutes` stops a size whose dbt
builds take longer (counted from when its lake is written), `--min-free-disk-gib` one whose
lake and warehouse would fill the disk (and the machine's memory running low stops it too);
the figures it did finish are kept, the others are reported as not measured with the reason.
Each size's files are removed before the next.
Not a test: it prints figures and the machine they were measured on; `--json PATH` also writes
them as a run of bench/results.json's shape (bench/results.py), `--quick` measures 100,000
events (a small history replicated, as the full sizes are) once, without the `dbt run` alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from bench.producer import machine
from bench.results import (
    Figure,
    Target,
    exit_on_sigterm,
    make_figure,
    new_run,
    size_label,
    write_json_atomically,
    write_script_run,
)
from ingestion.simulator import SimulationConfig, simulate_history
from orangescrum.core.contract.schema import event_arrow_schema
from orangescrum.core.settings import Settings

ID_SHIFT = 10_000_000  # per replica; simulated ids stay far below it
TARGET_SIZE = "10M"  # the size the targets are stated for
TARGET_FULL = Target(60, at_most=True, unit="s")
TARGET_NEW_DAY = Target(0.1, at_most=True, on_ratio=True)
TARGET_SCALE = Target(1.2, at_most=True, on_ratio=True)  # one new day on 10x the history
FULL_INCREMENTAL_RUNS = 3
DEFAULT_COHORTS_PER_PERIOD = 16  # as many as a 10M lake has: 10M is one period
# --quick: ~19,000 simulated events replicated 5 times. Simulating all 100,000 (10 companies)
# took 6 s of CPU of the script's ~45 in a quick run; DuckDB writes the replicas in about one.
QUICK_BASE_COMPANIES = 2
MEASURED_FILE = "measured.json"
GIB = 1024**3
# A scheduled build, as Airflow runs it: unit tests check logic on fixed inputs, so they run
# in CI and development, not on every build (dbt's own advice); tests/ runs them.
BUILD = ["build", "--exclude-resource-type", "unit_test"]


def base_history(path: Path, companies: int, days: int) -> tuple[int, str]:
    """Simulated events as landed rows in one Parquet file; returns (rows, last event date)."""
    schema = event_arrow_schema()
    rows = []
    for offset, delivery in enumerate(
        simulate_history(
            SimulationConfig(
                seed=7, companies=companies, days=days, duplicate_rate=0.01, late_rate=0.01
            )
        )
    ):
        rows.append(
            delivery.record
            | {
                "client": delivery.record.get("client"),
                "kafka_topic": "events-raw",
                "kafka_partition": 0,
                "kafka_offset": offset,
                "kafka_timestamp": delivery.delivered_at,
                "schema_id": 2,
                "ingested_at": delivery.delivered_at + timedelta(seconds=2),
            }
        )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    last = max(r["event_timestamp"] for r in rows).date().isoformat()
    return len(rows), last


def shifted_select(replica_expr: str, day_shift_expr: str = "0") -> str:
    """SQL rebuilding every row with ids (top level and inside payloads) moved to a replica."""
    columns = []
    for field in event_arrow_schema():
        name = field.name
        if name == "event_id":
            hashed = f"md5(event_id || '-' || {replica_expr} || '-' || {day_shift_expr})"
            columns.append(
                f"substr({hashed}, 1, 8) || '-' || substr({hashed}, 9, 4) || '-4' || "
                f"substr({hashed}, 14, 3) || '-8' || substr({hashed}, 18, 3) || '-' || "
                f"substr({hashed}, 21, 12) as event_id"
            )
        elif name.endswith("_id") and pa.types.is_int64(field.type):
            columns.append(f"{name} + {replica_expr} * {ID_SHIFT} as {name}")
        elif pa.types.is_struct(field.type):
            parts = []
            for child in field.type:
                value = f"{name}.{child.name}"
                if child.name.endswith("_id") and pa.types.is_int64(child.type):
                    value = f"{value} + {replica_expr} * {ID_SHIFT}"
                elif pa.types.is_timestamp(child.type):
                    value = f"{value} + to_days({day_shift_expr})"
                parts.append(f"{child.name} := {value}")
            columns.append(
                f"case when {name} is null then null else struct_pack({', '.join(parts)}) end "
                f"as {name}"
            )
        elif pa.types.is_timestamp(field.type):
            columns.append(f"{name} + to_days({day_shift_expr}) as {name}")
        else:
            columns.append(name)
    return ", ".join(columns)


def period_count(replicas: int, cohorts_per_period: int) -> int:
    """Periods of simulated days that `replicas` cohorts fill (the earliest may be partial)."""
    return -(-replicas // cohorts_per_period)


def write_replicas(
    base: Path,
    lake: Path,
    replicas: int,
    period: tuple[int, int],
    *,
    only_day: str | None = None,
    new_day_cohorts: int = 0,
) -> None:
    """Land `replicas` cohorts (id-shifted copies of the base history) in the lake's raw/events.

    period = (cohorts per period, base days): the latest cohorts' days are the base's, each
    earlier period's cohorts are moved back by a period. only_day with new_day_cohorts: that
    base day of the latest new_day_cohorts cohorts, moved to the day after the last one, with
    fresh event ids, into files of their own (the next day's landing).
    """
    cohorts_per_period, period_days = period
    (lake / "raw").mkdir(parents=True, exist_ok=True)
    # (first cohort, end cohort, day shift, file name prefix) of each copy. One copy per
    # period: a partitioned copy of all 100M rows (900 days) spilled enough to bring the disk
    # near the free-space guard before it was stopped, one of a period's 10M rows (90 days)
    # about nothing.
    if new_day_cohorts:
        copies = [(replicas - new_day_cohorts, replicas, 1, "newday")]
    else:
        copies = [
            (max(0, replicas - (back + 1) * cohorts_per_period),
             replicas - back * cohorts_per_period, -back * period_days, f"period{back}")
            for back in range(period_count(replicas, cohorts_per_period))
        ]  # fmt: skip
    day_filter = f"where cast(event_timestamp as date) = date '{only_day}'" if only_day else ""
    with duckdb.connect() as connection:
        connection.execute("set TimeZone = 'UTC'")
        connection.execute("set enable_progress_bar = false")
        # The same cap as the builds' (--memory-limit): a partitioned copy of 100M rows
        # otherwise buffers up to 80% of RAM.
        limit = os.environ.get("ORANGESCRUM_DUCKDB_MEMORY_LIMIT")
        if limit:
            connection.execute("set memory_limit = ?", [limit])
        # Spills go beside the lake (an in-memory database spills to ./.tmp by default).
        connection.execute("set temp_directory = ?", [str(lake.parent / "duckdb-spill")])
        for first, end, day_shift, prefix in copies:
            connection.execute(
                f"""
                copy (
                    select *, cast(event_timestamp as date) as event_date from (
                        select {shifted_select("replica", str(day_shift))}
                        from read_parquet('{base}'), range({first}, {end}) as replicas(replica)
                        {day_filter}
                    )
                ) to '{lake}/raw/events' (format parquet, partition_by (event_date),
                                           overwrite_or_ignore true, compression zstd,
                                           filename_pattern '{prefix}_{{i}}')
                """
            )


def timed(
    label: str,
    run_dbt: Callable[..., Any],
    settings: Settings,
    args: list[str],
    target: Path,
    slowest: int = 0,
) -> float:
    started = time.monotonic()
    run_dbt(settings, args, target_path=target, quiet=True)
    elapsed = time.monotonic() - started
    print(f"  {label:<34} {elapsed:7.1f} s", flush=True)
    if slowest:
        print_slowest_nodes(target / "run_results.json", slowest)
    return elapsed


def print_slowest_nodes(run_results: Path, count: int) -> None:
    """The nodes that took longest, from dbt's own timing, to show where a build spends."""
    results = json.loads(run_results.read_text())["results"]
    total = sum(r["execution_time"] for r in results)
    print(f"    {len(results)} nodes, {total:.1f} s summed over threads; slowest:")
    for result in sorted(results, key=lambda r: -r["execution_time"])[:count]:
        name = result["unique_id"].split(".", 2)[-1]
        print(f"    {result['execution_time']:7.1f} s  {name[:90]}")


def dbt_session(
    data_dir: Path, commands: list[tuple[str, list[str], int]], target: Path
) -> list[float]:
    """Run (label, dbt args, slowest) commands one after another in this process; their times."""
    # Imported here, before any timing, in the fresh interpreters that run dbt: importing dbt
    # takes seconds of CPU, and this script's own process and each size's child (spawned, so
    # they import this module again) never run it.
    from orangescrum.warehouse.dbt import run_dbt

    settings = Settings(data_dir=data_dir, _env_file=None)
    return [
        timed(label, run_dbt, settings, args, target, slowest) for label, args, slowest in commands
    ]


def in_fresh_interpreter(
    data_dir: Path, commands: list[tuple[str, list[str], int]], target: Path
) -> list[float]:
    """dbt_session in a new interpreter, so every build starts from the same state (dbt
    imported, create_raw_events run): dbt runs in-process, and run in the interpreter that
    had just run the 10M full build, a one-day build took 0.3-0.5 s longer.
    """
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(dbt_session, (data_dir, commands, target))


def measure(
    events: int,
    base: Path,
    base_rows: int,
    last_day: str,
    work: Path,
    options: Options,
    record: Callable[[str, float], None],
) -> None:
    """Lake of `events`, full build, one new day (median of options.incremental_runs), dbt run
    only (when options.run_only); each figure goes to record() as soon as it is known."""
    replicas = max(1, round(events / base_rows))
    settings = Settings(data_dir=work, _env_file=None)
    lake = Path(settings.lake_root)
    periods = period_count(replicas, options.cohorts_per_period)
    print(
        f"\n{replicas * base_rows:,} events ({replicas} cohorts x {base_rows:,} simulated, "
        f"{periods * options.base_days} days)",
        flush=True,
    )
    record("events", replicas * base_rows)
    started = time.monotonic()
    write_replicas(base, lake, replicas, options.period)
    record("lake_seconds", time.monotonic() - started)
    print(f"  {'lake written':<34} {time.monotonic() - started:7.1f} s", flush=True)
    target = work / "dbt_target"
    # Every command gets the same vars, as a scheduled deployment passes them: a change of
    # --vars would make dbt re-parse the whole project (~1.7 s here) instead of reusing its
    # partial parse. run_date only steers incremental runs, so the full build ignores it.
    next_day = (date.fromisoformat(last_day) + timedelta(days=1)).isoformat()
    dbt_vars = ["--vars", json.dumps({"run_date": next_day})]
    create_raw_events = ("create_raw_events", ["run-operation", "create_raw_events", *dbt_vars], 0)
    slowest = options.slowest
    _, full = in_fresh_interpreter(
        work, [create_raw_events, ("dbt build (full)", [*BUILD, *dbt_vars], slowest)], target
    )
    record("full", full)
    lake_gib, warehouse_gib = folder_gib(lake), settings.duckdb_file.stat().st_size / GIB
    print(f"  on disk: lake {lake_gib:.1f} GiB, warehouse {warehouse_gib:.1f} GiB", flush=True)
    # A copy of the warehouse to restore before each repeat (none for a single run: at 100M
    # events it is another 19 GiB of disk).
    before = work / "before_incremental.duckdb"
    if options.incremental_runs > 1:
        shutil.copy(settings.duckdb_file, before)
    new_day_cohorts = min(replicas, options.cohorts_per_period)
    write_replicas(
        base, lake, replicas, options.period, only_day=last_day, new_day_cohorts=new_day_cohorts
    )
    # The same one-day run from the same warehouse state, several times: one run of a few
    # seconds on 2 shared cores varies by +-0.5 s, so the median is reported.
    incremental_times = []
    for attempt in range(options.incremental_runs):
        if attempt > 0:
            shutil.copy(before, settings.duckdb_file)
        label = f"dbt build (incremental, +1 day) #{attempt + 1}"
        build = (label, [*BUILD, *dbt_vars], slowest if attempt == 0 else 0)
        incremental_times.append(in_fresh_interpreter(work, [create_raw_events, build], target)[1])
    record("incremental", statistics.median(incremental_times))
    if options.run_only:
        run_only = in_fresh_interpreter(
            work, [create_raw_events, ("dbt run only (incremental)", ["run", *dbt_vars], 0)], target
        )[1]
        record("run_only", run_only)
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as connection:
        facts = connection.execute(
            "select count(*) from orangescrum_dw_marts.fact_activities"
        ).fetchone()[0]
    print(f"  fact_activities rows: {facts:,}", flush=True)


# --- one size in a child process, within limits -------------------------------------------------
@dataclass(frozen=True)
class Options:
    slowest: int = 0
    incremental_runs: int = FULL_INCREMENTAL_RUNS
    cohorts_per_period: int = DEFAULT_COHORTS_PER_PERIOD
    base_days: int = 90  # days of the simulated base history: one period
    # `dbt run` alone after the new-day builds: a fresh interpreter, create_raw_events and a
    # run, for a printed split of model and test cost that no recorded figure uses.
    run_only: bool = True
    time_limit_seconds: float = 0.0  # per size, from its lake written; 0 = none
    min_free_disk_gib: float = 10.0
    min_available_memory_gib: float = 1.0

    @property
    def period(self) -> tuple[int, int]:
        """(cohorts per period, days per period), as write_replicas takes it."""
        return self.cohorts_per_period, self.base_days


def measure_in_child(
    events: int, base: Path, base_rows: int, last_day: str, work: Path, options: Options
) -> None:
    """measure() in a child process; what it records lands in work/measured.json at once, so a
    size stopped half-way keeps the figures it finished."""
    measured: dict[str, float] = {}

    def record(key: str, value: float) -> None:
        measured[key] = value
        write_json_atomically(work / MEASURED_FILE, measured)

    measure(events, base, base_rows, last_day, work, options, record)


def read_measured(work: Path) -> dict[str, Any]:
    measured_file = work / MEASURED_FILE
    return json.loads(measured_file.read_text()) if measured_file.exists() else {}


def available_memory_gib() -> float | None:
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return None
    return int(meminfo.read_text().split("MemAvailable:")[1].split()[0]) / 1024**2


def folder_gib(folder: Path) -> float:
    sizes = (entry.stat().st_size for entry in folder.rglob("*") if entry.is_file())
    return sum(sizes) / GIB


def breached_limit(elapsed: float, timed: float, work: Path, options: Options) -> str | None:
    """Why a size must stop now (time, disk or memory), or None. `timed`: seconds since its
    lake was written (the time limit covers the dbt builds, not the data set-up)."""
    if options.time_limit_seconds and timed > options.time_limit_seconds:
        return (
            f"did not finish within the {options.time_limit_seconds / 60:g}-minute limit "
            "(counted from the lake written)"
        )
    free = shutil.disk_usage(work).free / GIB
    if free < options.min_free_disk_gib:
        return (
            f"stopped after {elapsed / 60:.0f} min: free disk space fell to {free:.1f} GiB "
            f"(limit {options.min_free_disk_gib:g} GiB) with {folder_gib(work):.0f} GiB of lake "
            "and warehouse written"
        )
    available = available_memory_gib()
    if available is not None and available < options.min_available_memory_gib:
        return (
            f"stopped after {elapsed / 60:.0f} min: available memory fell to {available:.1f} GiB "
            f"(limit {options.min_available_memory_gib:g} GiB)"
        )
    return None


def kill_tree(process: BaseProcess) -> None:
    """Kill the child and everything it started (dbt's fresh interpreters), by pid."""
    import psutil

    with contextlib.suppress(psutil.Error):
        descendants = psutil.Process(process.pid).children(recursive=True)
        process.kill()
        for descendant in descendants:
            with contextlib.suppress(psutil.Error):
                descendant.kill()
    process.join(30)


def supervise(process: BaseProcess, work: Path, options: Options) -> str | None:
    """Wait for the child, stopping it when a limit is breached; why it stopped, or None."""
    started = time.monotonic()
    lake_written: float | None = None
    try:
        while process.exitcode is None:
            process.join(timeout=1)
            if process.exitcode is not None:
                break
            now = time.monotonic()
            if lake_written is None and "lake_seconds" in read_measured(work):
                lake_written = now
            reason = breached_limit(now - started, now - (lake_written or now), work, options)
            if reason:
                kill_tree(process)
                return reason
    finally:
        if process.exitcode is None:  # interrupted: leave nothing running
            kill_tree(process)
    return None if process.exitcode == 0 else f"failed (exit code {process.exitcode}, see above)"


def measure_size(
    events: int, base: Path, base_rows: int, last_day: str, work: Path, options: Options
) -> dict[str, Any]:
    """One size: what it measured, plus "stopped" (why) when it did not finish. Its lake and
    warehouse are removed afterwards, so the next size has the disk."""
    work.mkdir(parents=True)
    child = multiprocessing.get_context("spawn").Process(
        target=measure_in_child, args=(events, base, base_rows, last_day, work, options)
    )
    child.start()
    try:
        stopped = supervise(child, work, options)
        measured = read_measured(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if stopped:
        stopped += f"; {stage_report(measured)}"
        print(f"  {size_label(events)}: {stopped}", flush=True)
        measured["stopped"] = stopped
    return measured


STAGES = {  # what measure() records, in order, and how to name it
    "lake_seconds": "writing the lake",
    "full": "the full build",
    "incremental": "the new-day builds",
    "run_only": "dbt run only",
}


def stage_report(measured: dict[str, Any]) -> str:
    """Which stage was running when a size stopped, and how long the finished ones took."""
    done = [f"{STAGES[key]} {measured[key]:,.0f} s" for key in STAGES if key in measured]
    running = next((label for key, label in STAGES.items() if key not in measured), "the end")
    return f"stopped during {running}" + (f" (done: {', '.join(done)})" if done else "")


# --- figures ------------------------------------------------------------------------------------
def size_figures(label: str, measured: dict[str, Any]) -> list[Figure]:
    """Full build and one new day at one size (value null, with the reason, if not measured)."""
    missing = measured.get("stopped", "not measured")
    events = measured.get("events")
    counted = f"{events:,} events" if events else None
    full, incremental = measured.get("full"), measured.get("incremental")
    return [
        make_figure(
            f"dbt.full_build.{label}",
            full,
            "s",
            target=TARGET_FULL if label == TARGET_SIZE else None,
            note=counted if full is not None else missing,
        ),
        make_figure(
            f"dbt.new_day_build.{label}",
            incremental,
            "s",
            reference=("full build", full),
            target=TARGET_NEW_DAY if label == TARGET_SIZE else None,
            note=counted if incremental is not None else missing,
        ),
    ]


def scale_figure(sizes: list[int], results: list[dict[str, Any]]) -> Figure:
    """One new day on the largest size against one new day on the next smaller one."""
    by_size = sorted(zip(sizes, results, strict=True), key=lambda pair: pair[0])
    (small, small_result), (large, large_result) = by_size[-2:]
    large_day, small_day = large_result.get("incremental"), small_result.get("incremental")
    missing = large_result.get("stopped") or small_result.get("stopped") or "not measured"
    return make_figure(
        f"dbt.new_day_build.{size_label(large)}_vs_{size_label(small)}",
        large_day,
        "s",
        reference=(f"one new day on {size_label(small)}", small_day),
        target=TARGET_SCALE if large == 10 * small else None,
        note=None if large_day is not None and small_day is not None else missing,
    )


def figures_of(sizes: list[int], results: list[dict[str, Any]]) -> list[Figure]:
    figures = [
        figure
        for size, measured in zip(sizes, results, strict=True)
        for figure in size_figures(size_label(size), measured)
    ]
    if len(sizes) >= 2:
        figures.append(scale_figure(sizes, results))
    return figures


def print_summary(sizes: list[int], results: list[dict[str, Any]], runs: int) -> None:
    print(
        "\nevents        full build  incremental  ratio  (targets: 10M full <= 60 s, ratio <= 0.1;"
        f" incremental = median of {runs})"
    )
    for size, r in zip(sizes, results, strict=True):
        if "stopped" in r:
            print(f"{r.get('events', size):>11,}  {r['stopped']}")
        if "incremental" in r:
            print(
                f"{r['events']:>11,}  {r['full']:9.1f} s  {r['incremental']:9.1f} s  "
                f"{r['incremental'] / r['full']:.2f}"
            )
    if len(sizes) >= 2:
        scale = scale_figure(sizes, results)
        if scale["ratio"] is not None:
            print(
                f"one new day, {scale['name'].rsplit('.', 1)[-1]}: {scale['ratio']:.2f}x "
                f"(target <= {TARGET_SCALE.bound:g}x for 10x the history)"
            )


# --- main ---------------------------------------------------------------------------------------
def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events",
        type=int,
        nargs="+",
        default=None,
        help="sizes to measure (default 1000000 10000000; --quick 100000)",
    )
    parser.add_argument(
        "--base-companies",
        type=int,
        default=None,
        help=f"simulated companies (default 40; --quick {QUICK_BASE_COMPANIES})",
    )
    parser.add_argument(
        "--base-days",
        type=int,
        default=None,
        help="simulated days of history (default 90; --quick 60)",
    )
    parser.add_argument(
        "--cohorts-per-period",
        type=int,
        default=DEFAULT_COHORTS_PER_PERIOD,
        help="copies of the simulated companies active at once; a larger size adds earlier "
        "periods of --base-days, so history grows in time and each day (the new one too) "
        f"holds the same events at every size (default {DEFAULT_COHORTS_PER_PERIOD}: 10M is "
        "one period)",
    )
    parser.add_argument("--threads", default="", help="dbt threads (default: the profile's)")
    parser.add_argument(
        "--memory-limit",
        default="",
        help="DuckDB's memory_limit for the builds, e.g. 8GB: beyond it DuckDB spills to disk "
        "(default: ORANGESCRUM_DUCKDB_MEMORY_LIMIT, 80%% of RAM)",
    )
    parser.add_argument(
        "--slowest", type=int, default=0, help="after each build, list its N slowest nodes"
    )
    parser.add_argument(
        "--incremental-runs",
        type=int,
        default=None,
        help=f"one-new-day builds per size, median reported (default {FULL_INCREMENTAL_RUNS}; "
        "--quick 1)",
    )
    parser.add_argument(
        "--run-only",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time `dbt run` alone after the new-day builds, to split model from test cost "
        "(printed, not recorded; default on, --quick off)",
    )
    parser.add_argument(
        "--time-limit-minutes",
        type=float,
        default=0,
        help="stop a size whose dbt builds have not finished this long after its lake was "
        "written, and say so (default: no limit)",
    )
    parser.add_argument(
        "--min-free-disk-gib",
        type=float,
        default=10.0,
        help="stop a size when free disk space falls below this (default 10: leave other "
        "work on the machine room)",
    )
    parser.add_argument(
        "--min-available-memory-gib",
        type=float,
        default=1.0,
        help="stop a size when the machine's available memory falls below this (default 1: "
        "DuckDB may take 80%% of RAM; 0 turns the guard off)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"100,000 events from a small history ({QUICK_BASE_COMPANIES} companies, 60 days, "
        "replicated), one new-day build, no `dbt run` alone",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    arguments = parser.parse_args(argv)
    quick = arguments.quick
    arguments.events = arguments.events or ([100_000] if quick else [1_000_000, 10_000_000])
    arguments.base_companies = arguments.base_companies or (QUICK_BASE_COMPANIES if quick else 40)
    arguments.base_days = arguments.base_days or (60 if quick else 90)
    arguments.incremental_runs = arguments.incremental_runs or (
        1 if quick else FULL_INCREMENTAL_RUNS
    )
    if arguments.run_only is None:
        arguments.run_only = not quick
    return arguments


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    if arguments.threads:
        os.environ["ORANGESCRUM_DBT_THREADS"] = arguments.threads
    if arguments.memory_limit:
        os.environ["ORANGESCRUM_DUCKDB_MEMORY_LIMIT"] = arguments.memory_limit
    exit_on_sigterm()  # the size's child and the scratch folder (tens of GiB at 100M) go too
    if arguments.cohorts_per_period < 1:
        raise SystemExit(
            f"--cohorts-per-period must be at least 1, got {arguments.cohorts_per_period}"
        )
    options = Options(
        slowest=arguments.slowest,
        incremental_runs=arguments.incremental_runs,
        cohorts_per_period=arguments.cohorts_per_period,
        base_days=arguments.base_days,
        run_only=arguments.run_only,
        time_limit_seconds=arguments.time_limit_minutes * 60,
        min_free_disk_gib=arguments.min_free_disk_gib,
        min_available_memory_gib=arguments.min_available_memory_gib,
    )
    run = new_run(quick=arguments.quick)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="dbt-scale-") as folder:
        base = Path(folder) / "base.parquet"
        started = time.monotonic()
        base_rows, last_day = base_history(base, arguments.base_companies, arguments.base_days)
        print(f"simulated {base_rows:,} events in {time.monotonic() - started:.1f} s")
        results = [
            measure_size(n, base, base_rows, last_day, Path(folder) / f"run-{n}", options)
            for n in arguments.events
        ]
    print_summary(arguments.events, results, arguments.incremental_runs)
    if arguments.json:
        write_script_run(arguments.json, run, figures_of(arguments.events, results))


if __name__ == "__main__":
    main()
