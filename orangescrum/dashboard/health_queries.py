"""What the "Pipeline health" page shows: the lake's own records, as DataFrames.

The stream writes one metrics row per micro-batch (`raw/metrics/`) and every dead letter
(`raw/_dead_letter/event_date=D/`); dbt writes `run_results.json` in its target folder; the
warehouse keeps `fact_activities`. These functions read them directly through the lake's
filesystem (a folder or gs://) and the readers of `orangescrum.core.monitoring`, which
`orangescrum status` uses too, so the page and the command agree.

No Streamlit here: tests/test_dashboard_health.py checks them on a lake of known files.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from pyarrow import fs as pafs

from orangescrum.core.lake import PARTITION_KEY, LakeLayout, list_files
from orangescrum.core.monitoring import (
    DbtRun,
    lake_freshness,
    read_dbt_run,
    read_metrics,
    warehouse_freshness,
)

BATCH_COLUMNS = [
    "finished_at",
    "landing_id",
    "batch_id",
    "rows_in",
    "rows_landed",
    "rows_dead_lettered",
    "duration_seconds",
    "lag_total",
]


def batch_history(filesystem: pafs.FileSystem, lake: LakeLayout) -> pd.DataFrame:
    """One row per micro-batch, oldest first: BATCH_COLUMNS.

    lag_total is what was left in the topic after the batch (null when the broker could not
    be asked); consumer lag over time is this column against finished_at.
    """
    return read_metrics(filesystem, lake).select(BATCH_COLUMNS).to_pandas()


def dead_letters_by_day(filesystem: pafs.FileSystem, lake: LakeLayout) -> pd.DataFrame:
    """event_date, reason, dead_letters: one row per day and reason, oldest day first.

    Only files under an event_date= folder count (what the stream lands), as in
    `orangescrum maintenance dlq-report`.
    """
    columns = {"event_date": [], "reason": [], "dead_letters": []}
    files = list_files(filesystem, lake.dead_letters)
    if not files:
        return pd.DataFrame(columns).astype({"dead_letters": "int64"})
    dataset = ds.dataset(
        files,
        filesystem=filesystem,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([(PARTITION_KEY, pa.date32())]), flavor="hive"),
        partition_base_dir=lake.dead_letters,
    )
    table = dataset.to_table(columns=[PARTITION_KEY, "reason"])
    counts = (
        table.filter(ds.field(PARTITION_KEY).is_valid())
        .group_by([PARTITION_KEY, "reason"])
        .aggregate([([], "count_all")])
        .select([PARTITION_KEY, "reason", "count_all"])
        .rename_columns(["event_date", "reason", "dead_letters"])
        .sort_by([("event_date", "ascending"), ("reason", "ascending")])
    )
    return counts.to_pandas()


def dead_letters_by_reason(by_day: pd.DataFrame) -> pd.DataFrame:
    """reason, dead_letters: totals of `dead_letters_by_day`, most first, ties by name."""
    totals = by_day.groupby("reason", as_index=False)["dead_letters"].sum()
    return totals.sort_values(
        ["dead_letters", "reason"], ascending=[False, True], ignore_index=True
    )


FRESHNESS_COLUMNS = [
    "source",
    "state",
    "newest_event_timestamp",
    "newest_ingested_at",
    "age_seconds",
    "detail",
]


def source_freshness(
    filesystem: pafs.FileSystem, lake: LakeLayout, warehouse: Path | None, now: datetime
) -> pd.DataFrame:
    """FRESHNESS_COLUMNS for the lake and (unless None: not DuckDB) the warehouse.

    age_seconds: from the newest ingested_at to `now`, the time since data last arrived.
    """
    in_lake = lake_freshness(filesystem, lake)
    rows = [
        {
            "source": "lake",
            "state": "ok" if in_lake.files else "empty",
            "newest_event_timestamp": in_lake.newest_event_timestamp,
            "newest_ingested_at": in_lake.newest_ingested_at,
            "detail": f"{in_lake.files} Parquet file(s) in raw/ and processed/",
        }
    ]
    if warehouse is not None:
        marts = warehouse_freshness(warehouse)
        rows.append(
            {
                "source": "warehouse",
                "state": marts.state,
                "newest_event_timestamp": marts.newest_event_timestamp,
                "newest_ingested_at": marts.newest_ingested_at,
                "detail": marts.detail or f"{marts.rows} row(s) in fact_activities",
            }
        )
    for row in rows:
        newest = row["newest_ingested_at"]
        row["age_seconds"] = None if newest is None else (now - newest).total_seconds()
    frame = pd.DataFrame(rows, columns=FRESHNESS_COLUMNS)
    for column in ("newest_event_timestamp", "newest_ingested_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.astype({"age_seconds": "float64"})


def last_dbt_run(run_results: Path) -> DbtRun | None:
    """The last dbt invocation (None: dbt never wrote run results there)."""
    return read_dbt_run(run_results)


def dbt_failures(run: DbtRun) -> pd.DataFrame:
    """unique_id, status, message, failures of every node that did not pass."""
    return pd.DataFrame(
        [(n.unique_id, n.status, n.message, n.failures) for n in run.failures],
        columns=["unique_id", "status", "message", "failures"],
    )
