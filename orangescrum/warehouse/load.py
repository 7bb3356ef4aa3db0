"""The warehouse side of the lake: (re)create the raw tables over it, build the marts, count rows.

Shared by the CLI, the demo and the Airflow DAGs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from dbt.cli.main import dbtRunnerResult

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.lake import list_files
from orangescrum.core.settings import Settings, WarehouseTarget
from orangescrum.warehouse.dbt import error_messages, raise_for_failure, run_dbt, status_counts


def load_raw_events(
    settings: Settings, target_path: Path | None = None, *, quiet: bool = False
) -> None:
    """(Re)create raw_events, raw_dead_letters and raw_pipeline_metrics over the lake.

    Tells the operation whether processed/events holds files: BigQuery cannot list GCS from
    SQL, and an external table over a folder without files fails every query.
    """
    require_lake_folder(settings)
    read_processed = processed_zone_has_files(settings)
    args = [
        "run-operation",
        "create_raw_events",
        "--args",
        f"{{read_processed: {str(read_processed).lower()}}}",
    ]
    run_dbt_over_lake(settings, args, target_path, quiet)


def require_lake_folder(settings: Settings) -> None:
    """A lake root that is a file would read as an empty lake: empty tables, no error."""
    filesystem, lake = settings.lake.open()
    if filesystem.get_file_info(lake.root).type == pafs.FileType.File:
        raise OrangeScrumError(
            f"The lake root {settings.lake_root} is not a folder: point ORANGESCRUM_LAKE_URI "
            "(or ORANGESCRUM_DATA_DIR) at the lake folder."
        )


def processed_zone_has_files(settings: Settings) -> bool:
    filesystem, lake = settings.lake.open()
    return bool(list_files(filesystem, lake.processed_events))


def build_marts(
    settings: Settings, target_path: Path | None = None, *, quiet: bool = False
) -> dict[str, int]:
    """`dbt build` (models, data tests, unit tests); returns node counts by status."""
    return status_counts(run_dbt_over_lake(settings, ["build"], target_path, quiet))


def run_dbt_over_lake(
    settings: Settings, args: list[str], target_path: Path | None, quiet: bool
) -> dbtRunnerResult:
    """run_dbt, and when DuckDB could not read the lake, one sentence naming the file.

    DuckDB reads every Parquet file the raw relations glob: one torn or foreign file fails
    the whole load or build (never a silently smaller count), but its message does not
    always name the file, and dbt buries it among the failing nodes.
    """
    result = run_dbt(settings, args, target_path=target_path, quiet=quiet, check=False)
    if not result.success and settings.dbt_target is WarehouseTarget.DEV:
        messages = error_messages(result)
        if messages:
            unreadable = unreadable_lake_files(settings, messages)
            if unreadable:
                raise OrangeScrumError(unreadable_files_sentence(unreadable))
    raise_for_failure(settings, args, result)
    return result


# How DuckDB names the file it could not read: `file '/lake/x.parquet'`, `File '...'`.
_NAMED_FILE = re.compile(r"[Ff]ile ['\"]([^'\"]+\.parquet)['\"]")


def unreadable_lake_files(settings: Settings, messages: list[str]) -> dict[str, str]:
    """Lake files the warehouse reads that are not readable Parquet: path -> why.

    The files DuckDB's errors name, else every file of the zones it reads, footer by footer
    (only on a failed run, so a healthy load pays nothing).
    """
    named = {
        match.group(1): _reason(line, match.group(0))
        for message in messages
        for line in message.splitlines()
        for match in _NAMED_FILE.finditer(line)
    }
    if named:
        return named
    filesystem, lake = settings.lake.open()
    unreadable: dict[str, str] = {}
    for zone in (lake.raw_events, lake.processed_events, lake.dead_letters, lake.metrics):
        for path in list_files(filesystem, zone):
            try:
                with filesystem.open_input_file(path) as source:
                    pq.read_metadata(source)
            except (pa.ArrowException, OSError) as error:
                unreadable[lake.uri(path)] = _first_line(str(error))
    return unreadable


def unreadable_files_sentence(unreadable: dict[str, str]) -> str:
    shown = list(unreadable.items())[:5]
    if len(unreadable) == 1:
        ((path, why),) = shown
        return (
            f"The lake file {path} cannot be read as Parquet ({why}), so the warehouse will "
            "not count without it: move it out of the lake (its rows stay missing until a "
            "good copy is put back), then run this again."
        )
    more = f" and {len(unreadable) - len(shown)} more" if len(unreadable) > len(shown) else ""
    files = "; ".join(f"{path} ({why})" for path, why in shown)
    return (
        f"The lake files {files}{more} cannot be read as Parquet, so the warehouse will not "
        "count without them: move them out of the lake (their rows stay missing until good "
        "copies are put back), then run this again."
    )


def _reason(line: str, quoted_file: str) -> str:
    """DuckDB's error line without its error class and the path the sentence names anyway."""
    reason = re.sub(r"^[\w ]*Error: ", "", line.strip()).replace(quoted_file, "file")
    return reason.replace("file file", "file").strip(" .")


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return (lines[0] if lines else "unknown error").strip(" .")


@dataclass(frozen=True)
class WarehouseCounts:
    raw_rows: int
    raw_distinct_events: int
    dead_letters: int
    fact_activities: int
    fact_distinct_events: int


def warehouse_counts(settings: Settings) -> WarehouseCounts:
    """Row counts of the local DuckDB warehouse, for the demo summary and the tests."""
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as connection:

        def scalar(sql: str) -> int:
            return int(connection.execute(sql).fetchone()[0])

        fact_schema = model_schema(connection, "fact_activities")
        return WarehouseCounts(
            raw_rows=scalar("select count(*) from orangescrum_dw.raw_events"),
            raw_distinct_events=scalar(
                "select count(distinct event_id) from orangescrum_dw.raw_events"
            ),
            dead_letters=scalar("select count(*) from orangescrum_dw.raw_dead_letters"),
            fact_activities=scalar(f"select count(*) from {fact_schema}.fact_activities"),
            fact_distinct_events=scalar(
                f"select count(distinct event_id) from {fact_schema}.fact_activities"
            ),
        )


def model_schema(connection: duckdb.DuckDBPyConnection, table: str) -> str:
    """Schema holding a dbt model (dbt names it after the target and the model's folder)."""
    rows = connection.execute(
        "select table_schema from information_schema.tables where table_name = ?", [table]
    ).fetchall()
    if len(rows) != 1:
        raise OrangeScrumError(
            f"expected one table {table!r} in {connection}, found {len(rows)}: run `dbt build`"
        )
    return rows[0][0]
