"""The warehouse side of the lake: (re)create the raw tables over it, build the marts, count rows.

Shared by the CLI, the demo and the Airflow DAGs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.fs as pafs

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.lake import list_files
from orangescrum.core.settings import Settings
from orangescrum.warehouse.dbt import run_dbt, status_counts


def load_raw_events(
    settings: Settings, target_path: Path | None = None, *, quiet: bool = False
) -> None:
    """(Re)create raw_events, raw_dead_letters and raw_pipeline_metrics over the lake.

    Tells the operation whether processed/events holds files: BigQuery cannot list GCS from
    SQL, and an external table over a folder without files fails every query.
    """
    require_lake_folder(settings)
    read_processed = processed_zone_has_files(settings)
    run_dbt(
        settings,
        [
            "run-operation",
            "create_raw_events",
            "--args",
            f"{{read_processed: {str(read_processed).lower()}}}",
        ],
        target_path=target_path,
        quiet=quiet,
    )


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
    return status_counts(run_dbt(settings, ["build"], target_path=target_path, quiet=quiet))


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
