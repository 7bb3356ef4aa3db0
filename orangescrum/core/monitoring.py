"""What the pipeline records about itself, read without Spark, Kafka or dbt.

- the streams' metrics: one row per micro-batch in `{lake}/raw/metrics/` (METRICS_SCHEMA,
  written by spark/stream.py for the event stream and spark/cdc_stream.py for the change
  stream; a file per landing id and batch id, so the landing id tells the streams apart);
- source freshness: the newest event and ingestion times in the lake (from the Parquet
  footers' statistics, so no data page is read) and in the warehouse's `fact_activities`
  (DuckDB, read-only);
- the last dbt invocation: `run_results.json` in dbt's target folder.

`orangescrum status` (orangescrum/health.py) and the dashboard's health page both read through
here, so the command and the page show the same numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from orangescrum.core.lake import LakeLayout, list_files

METRICS_SCHEMA = pa.schema(
    [
        ("landing_id", pa.string()),
        ("batch_id", pa.int64()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("duration_seconds", pa.float64()),
        ("rows_in", pa.int64()),
        ("rows_landed", pa.int64()),
        ("rows_dead_lettered", pa.int64()),
        ("dead_letter_reasons", pa.string()),
        ("end_offsets", pa.string()),
        ("lag_total", pa.int64()),
    ]
)

# The dev target's marts (profiles/profiles.yml schema orangescrum_dw + custom schema marts).
WAREHOUSE_MARTS_SCHEMA = "orangescrum_dw_marts"
FRESHNESS_RELATION = f"{WAREHOUSE_MARTS_SCHEMA}.fact_activities"
# dbt statuses of a node that did what it should: models/seeds/snapshots "success", tests and
# freshness "pass", exposures and other nodes with nothing to run "no-op".
DBT_OK_STATUSES = frozenset({"success", "pass", "no-op"})
RUN_RESULTS_NAME = "run_results.json"


# --- micro-batch metrics ------------------------------------------------------------------------
def read_metrics(
    filesystem: pafs.FileSystem, lake: LakeLayout, newest_files: int | None = None
) -> pa.Table:
    """The metrics rows (METRICS_SCHEMA, columns an older file lacks are null), by finished_at.

    `newest_files`: only the last files written (by modification time), so a status check
    reads a handful of files however many months of batches the lake keeps.
    """
    selector = pafs.FileSelector(lake.metrics, recursive=False, allow_not_found=True)
    infos = [
        info
        for info in filesystem.get_file_info(selector)
        if info.type == pafs.FileType.File
        and info.base_name.endswith(".parquet")
        and not info.base_name.startswith((".", "_"))
    ]
    infos.sort(key=lambda info: (info.mtime_ns or 0, info.path))
    if newest_files is not None:
        infos = infos[-newest_files:] if newest_files > 0 else []
    tables = [
        _conform(pq.read_table(info.path, filesystem=filesystem), METRICS_SCHEMA) for info in infos
    ]
    table = pa.concat_tables(tables) if tables else METRICS_SCHEMA.empty_table()
    return table.sort_by([("finished_at", "ascending"), ("batch_id", "ascending")])


def metrics_file_count(filesystem: pafs.FileSystem, lake: LakeLayout) -> int:
    return len(list_files(filesystem, lake.metrics))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly `schema`'s columns: missing ones null, others cast."""
    columns = [
        table[name].cast(schema.field(name).type)
        if name in table.column_names
        else pa.nulls(table.num_rows, schema.field(name).type)
        for name in schema.names
    ]
    return pa.Table.from_arrays(columns, schema=schema)


# --- source freshness ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LakeFreshness:
    """Newest event and ingestion times over the lake's event zones (raw and processed)."""

    files: int
    newest_event_timestamp: datetime | None
    newest_ingested_at: datetime | None


FRESHNESS_COLUMNS = ("event_timestamp", "ingested_at")


def lake_freshness(filesystem: pafs.FileSystem, lake: LakeLayout) -> LakeFreshness:
    """The maxima of event_timestamp and ingested_at over raw/events and processed/events.

    Read from each file's footer statistics (the writers, pyarrow and Spark, record them);
    a file without them has its two columns read instead.
    """
    files = list_files(filesystem, lake.raw_events) + list_files(filesystem, lake.processed_events)
    newest: dict[str, datetime | None] = dict.fromkeys(FRESHNESS_COLUMNS)
    for path in files:
        for column, value in _file_maxima(filesystem, path).items():
            current = newest[column]
            if value is not None and (current is None or value > current):
                newest[column] = value
    return LakeFreshness(len(files), newest["event_timestamp"], newest["ingested_at"])


def _file_maxima(filesystem: pafs.FileSystem, path: str) -> dict[str, datetime | None]:
    metadata = pq.read_metadata(path, filesystem=filesystem)
    names = metadata.schema.names
    maxima: dict[str, datetime | None] = {}
    unknown = []
    for column in FRESHNESS_COLUMNS:
        if column not in names:
            maxima[column] = None
            continue
        index = names.index(column)
        values = []
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            stats = row_group.column(index).statistics
            all_null = stats is not None and stats.has_null_count
            if row_group.num_rows == 0 or (all_null and stats.null_count == row_group.num_rows):
                continue  # no value in this row group
            if stats is None or not stats.has_min_max:
                unknown.append(column)
                break
            values.append(stats.max)
        else:
            maxima[column] = _utc(max(values)) if values else None
    if unknown:
        table = pq.read_table(path, filesystem=filesystem, columns=unknown)
        for column in unknown:
            value = pc.max(table[column]).as_py()
            maxima[column] = _utc(value) if value is not None else None
    return maxima


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class WarehouseFreshness:
    """Newest rows of fact_activities in the DuckDB warehouse, or why they could not be read.

    state: "ok", "missing" (no file), "locked" (another process holds DuckDB's write lock),
    "not built" (no fact_activities yet) or "unreadable".
    """

    path: str
    state: str
    detail: str = ""
    rows: int | None = None
    newest_event_timestamp: datetime | None = None
    newest_ingested_at: datetime | None = None
    newest_loaded_at: datetime | None = None


def warehouse_freshness(path: Path) -> WarehouseFreshness:
    """Read-only: never takes the write lock a dbt build needs."""
    import duckdb

    if not path.is_file():
        return WarehouseFreshness(str(path), "missing", "no DuckDB file: nothing was built yet")
    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as error:
        message = str(error).splitlines()[0]
        state = "locked" if "lock" in message.lower() else "unreadable"
        return WarehouseFreshness(str(path), state, message)
    try:
        schema, table = FRESHNESS_RELATION.split(".")
        present = connection.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()
        if not present or not present[0]:
            return WarehouseFreshness(
                str(path),
                "not built",
                f"no {FRESHNESS_RELATION}: run `orangescrum warehouse build`",
            )
        rows, event_ts, ingested, loaded = connection.execute(
            "select count(*), max(event_timestamp), max(ingested_at), max(loaded_at) "
            f"from {FRESHNESS_RELATION}"
        ).fetchone()
    except duckdb.Error as error:
        return WarehouseFreshness(str(path), "unreadable", str(error).splitlines()[0])
    finally:
        connection.close()
    # The marts keep UTC wall-clock times in timestamp (without time zone) columns.
    return WarehouseFreshness(
        str(path),
        "ok",
        rows=int(rows),
        newest_event_timestamp=_utc(event_ts) if event_ts else None,
        newest_ingested_at=_utc(ingested) if ingested else None,
        newest_loaded_at=_utc(loaded) if loaded else None,
    )


# --- the last dbt run ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DbtNodeResult:
    unique_id: str
    status: str
    message: str | None
    failures: int | None  # failing rows of a test


@dataclass(frozen=True)
class DbtRun:
    """One dbt invocation as its run_results.json records it."""

    path: str
    command: str  # build, run, test, source freshness, ...
    invocation: str  # the command line, e.g. "dbt build --select ..."
    started_at: datetime | None
    generated_at: datetime | None  # when dbt wrote the file: the end of the run
    elapsed_seconds: float | None
    status_counts: dict[str, int]
    failures: tuple[DbtNodeResult, ...]  # every node whose status is not in DBT_OK_STATUSES

    @property
    def nodes(self) -> int:
        return sum(self.status_counts.values())

    @property
    def succeeded(self) -> bool:
        return not self.failures


class RunResultsError(ValueError):
    """run_results.json exists but is not dbt's run results."""


def dbt_run_results_path(manifest_file: Path) -> Path:
    """dbt writes run_results.json beside manifest.json in its target folder."""
    return manifest_file.parent / RUN_RESULTS_NAME


def read_dbt_run(path: Path) -> DbtRun | None:
    """The last dbt invocation written to `path`; None when there is none."""
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
        metadata: dict[str, Any] = document.get("metadata") or {}
        args: dict[str, Any] = document.get("args") or {}
        results: list[dict[str, Any]] = document["results"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise RunResultsError(f"{path} is not a dbt run_results.json ({error})") from None
    counts: dict[str, int] = {}
    failures = []
    for result in results:
        status = str(result.get("status", "unknown")).lower()
        counts[status] = counts.get(status, 0) + 1
        if status not in DBT_OK_STATUSES:
            failures.append(
                DbtNodeResult(
                    unique_id=str(result.get("unique_id", "?")),
                    status=status,
                    message=result.get("message"),
                    failures=result.get("failures"),
                )
            )
    elapsed = document.get("elapsed_time")
    return DbtRun(
        path=str(path),
        command=str(args.get("which") or "unknown"),
        invocation=str(args.get("invocation_command") or ""),
        started_at=_timestamp(metadata.get("invocation_started_at")),
        generated_at=_timestamp(metadata.get("generated_at")),
        elapsed_seconds=float(elapsed) if elapsed is not None else None,
        status_counts=dict(sorted(counts.items())),
        failures=tuple(sorted(failures, key=lambda node: node.unique_id)),
    )


def _timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None
