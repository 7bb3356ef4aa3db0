"""The dashboard's "Pipeline health" page (a page of `st.navigation` in app.py).

What `orangescrum status` reports, over time: consumer lag per micro-batch, rows and durations
of the micro-batches, dead letters by reason and day, source freshness of the lake and the
warehouse, and the last dbt run with the nodes that did not pass. It reads the lake, the
warehouse (read-only) and dbt's run_results.json through health_queries, so it works before
any mart is built and while a build holds the warehouse. Every load reads the files again:
reloading the page shows the latest batches.
"""

from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
import streamlit as st

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.monitoring import DbtRun, RunResultsError, dbt_run_results_path
from orangescrum.core.settings import Settings, WarehouseTarget, load_settings
from orangescrum.dashboard import health_queries

NO_BATCH = "No micro-batch recorded yet: run `orangescrum stream --available-now`."
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def age_text(seconds: float | None) -> str:
    """How long ago, for people: 45s, 12m, 3h 20m, 2d 4h."""
    if seconds is None or pd.isna(seconds):
        return "no data"
    whole = max(int(seconds), 0)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def dbt_summary(run: DbtRun | None) -> str:
    if run is None:
        return "none"
    return "succeeded" if run.succeeded else f"{len(run.failures)} failed"


def kpi_row(
    batches: pd.DataFrame, dead_letters: pd.DataFrame, freshness: pd.DataFrame, run: DbtRun | None
) -> None:
    lag = batches["lag_total"].iloc[-1] if not batches.empty else None
    columns = st.columns(5)
    columns[0].metric(
        "Consumer lag",
        "n/a" if lag is None or pd.isna(lag) else f"{int(lag):,}",
        help="Records left in the events topic after the last micro-batch.",
    )
    columns[1].metric("Micro-batches", f"{len(batches):,}")
    columns[2].metric("Dead letters", f"{int(dead_letters['dead_letters'].sum()):,}")
    columns[3].metric(
        "Newest ingestion",
        age_text(freshness.loc[0, "age_seconds"]),
        help="Since the newest ingested_at in the lake.",
    )
    columns[4].metric("Last dbt run", dbt_summary(run))


def batch_charts(batches: pd.DataFrame) -> None:
    st.subheader("Consumer lag over time")
    if batches.empty:
        st.info(NO_BATCH)
        return
    st.line_chart(
        batches, x="finished_at", y="lag_total", x_label="Batch finished", y_label="Records"
    )
    left, right = st.columns(2)
    with left:
        st.subheader("Rows per micro-batch")
        st.line_chart(
            batches.rename(
                columns={
                    "rows_in": "Read",
                    "rows_landed": "Landed",
                    "rows_dead_lettered": "Dead-lettered",
                }
            ),
            x="finished_at",
            y=["Read", "Landed", "Dead-lettered"],
            x_label="Batch finished",
            y_label="Rows",
        )
    with right:
        st.subheader("Micro-batch duration")
        st.line_chart(
            batches,
            x="finished_at",
            y="duration_seconds",
            x_label="Batch finished",
            y_label="Seconds",
        )


def dead_letter_charts(by_day: pd.DataFrame) -> None:
    st.subheader("Dead letters by reason and day")
    if by_day.empty:
        st.info("No dead letter in the lake.")
        return
    left, right = st.columns([2, 1])
    with left:
        chart = (
            alt.Chart(by_day)
            .mark_bar()
            .encode(
                x=alt.X("event_date:T", title="Event date", timeUnit="yearmonthdate"),
                y=alt.Y("dead_letters:Q", title="Dead letters"),
                color=alt.Color("reason:N", title=None).legend(orient="bottom"),
                tooltip=["event_date:T", "reason:N", "dead_letters:Q"],
            )
        )
        st.altair_chart(chart, width="stretch")
    with right:
        st.dataframe(
            health_queries.dead_letters_by_reason(by_day),
            hide_index=True,
            column_config={"reason": "Reason", "dead_letters": "Dead letters"},
        )


def freshness_table(freshness: pd.DataFrame) -> None:
    st.subheader("Source freshness")
    st.dataframe(
        freshness.assign(age=freshness["age_seconds"].map(age_text)).drop(columns="age_seconds"),
        hide_index=True,
        column_config={
            "source": "Source",
            "state": "State",
            "newest_event_timestamp": st.column_config.DatetimeColumn(
                "Newest event (UTC)", format="YYYY-MM-DD HH:mm:ss"
            ),
            "newest_ingested_at": st.column_config.DatetimeColumn(
                "Newest ingestion (UTC)", format="YYYY-MM-DD HH:mm:ss"
            ),
            "age": "Since newest ingestion",
            "detail": "Detail",
        },
    )


def dbt_section(run: DbtRun | None, error: str | None, path: str) -> None:
    st.subheader("Last dbt run")
    if error:
        st.error(error)
        return
    if run is None:
        st.info(f"No dbt run recorded at {path}: run `orangescrum warehouse build`.")
        return
    counts = ", ".join(f"{count:,} {status}" for status, count in run.status_counts.items())
    finished = f"{run.generated_at:{TIME_FORMAT}} UTC" if run.generated_at else "unknown time"
    elapsed = f"{run.elapsed_seconds:.1f}s" if run.elapsed_seconds is not None else "?"
    st.caption(f"`dbt {run.command}` finished {finished} in {elapsed}: {counts} ({path})")
    if run.succeeded:
        st.success(f"All {run.nodes:,} nodes passed.")
        return
    st.error(f"{len(run.failures)} node(s) did not pass.")
    st.dataframe(
        health_queries.dbt_failures(run),
        hide_index=True,
        column_config={
            "unique_id": "Node",
            "status": "Status",
            "message": "Message",
            "failures": "Failing rows",
        },
    )


def read_dbt(settings: Settings) -> tuple[DbtRun | None, str | None, str]:
    path = dbt_run_results_path(settings.dbt_manifest_file)
    try:
        return health_queries.last_dbt_run(path), None, str(path)
    except RunResultsError as error:
        return None, str(error), str(path)


def main() -> None:
    st.title("Pipeline health")
    try:
        settings = load_settings()
    except OrangeScrumError as error:
        st.error(str(error))
        st.stop()
    filesystem, lake = settings.lake.open()
    now = dt.datetime.now(dt.UTC)
    batches = health_queries.batch_history(filesystem, lake)
    dead_letters = health_queries.dead_letters_by_day(filesystem, lake)
    warehouse = settings.duckdb_file if settings.dbt_target is WarehouseTarget.DEV else None
    freshness = health_queries.source_freshness(filesystem, lake, warehouse, now)
    run, dbt_error, run_results = read_dbt(settings)
    st.caption(f"lake {settings.lake_root} · read {now:{TIME_FORMAT}} UTC")
    kpi_row(batches, dead_letters, freshness, run)
    batch_charts(batches)
    dead_letter_charts(dead_letters)
    freshness_table(freshness)
    dbt_section(run, dbt_error, run_results)


if __name__ == "__main__":
    main()
