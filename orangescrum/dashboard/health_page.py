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
# Micro-batches finish at any moment: the axis shows day and time, in UTC like the rest of the
# page, instead of Vega's mixed labels ("Wed 06", "12 PM") in the browser's time zone.
BATCH_TIME_AXIS_FORMAT = "%b %d %H:%M"
BATCH_TIME_TOOLTIP_FORMAT = "%Y-%m-%d %H:%M:%S UTC"
BATCH_TIME_PADDING_PX = 12
# Dead letters are counted per event date: one label per day, no time of day.
DAY_FORMAT = "%b %d"
DAY_FORMAT_WITH_YEAR = "%b %d, %Y"  # when the days span more than one year
ROW_SERIES = {"rows_in": "Read", "rows_landed": "Landed", "rows_dead_lettered": "Dead-lettered"}


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


# Counts are whole: without these Vega picks steps like 0.2 on a small range (0.2 rows).
def count_axis() -> alt.Axis:
    return alt.Axis(tickMinStep=1, format="d")


def batch_time_x() -> alt.X:
    return alt.X(
        "finished_at:T",
        title="Batch finished (UTC)",
        # A UTC scale formats labels in UTC whatever the browser's time zone; the padding
        # keeps the first and last batches' points whole instead of cut by the chart's edge.
        scale=alt.Scale(type="utc", padding=BATCH_TIME_PADDING_PX),
        axis=alt.Axis(format=BATCH_TIME_AXIS_FORMAT, labelOverlap=True),
    )


def batch_points(batches: pd.DataFrame, column: str) -> pd.DataFrame:
    """finished_at, finished (tooltip text), batch_id and `column`, for batches where it is
    known.

    A null (the lag of a batch run while the broker could not be asked) would break the line
    into pieces too short to draw: with few batches nothing at all would show. Leaving those
    batches out joins the known neighbours instead; the page says how many were left out.
    """
    known = batches.dropna(subset=[column])
    return pd.DataFrame(
        {
            "finished_at": known["finished_at"],
            "finished": known["finished_at"].dt.strftime(BATCH_TIME_TOOLTIP_FORMAT),
            "batch_id": known["batch_id"],
            column: known[column],
        }
    ).reset_index(drop=True)


def lag_chart(batches: pd.DataFrame) -> alt.Chart:
    """Consumer lag after each micro-batch whose lag is known, a point per batch."""
    data = batch_points(batches, "lag_total")
    data["lag_total"] = data["lag_total"].astype("int64")  # nulls gone: whole records again
    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=batch_time_x(),
            y=alt.Y("lag_total:Q", title="Records", axis=count_axis()),
            tooltip=[
                alt.Tooltip("finished:N", title="Finished"),
                alt.Tooltip("batch_id:Q", title="Batch"),
                alt.Tooltip("lag_total:Q", title="Lag", format=","),
            ],
        )
    )


def unknown_lag_note(batches: pd.DataFrame) -> str | None:
    """What the lag chart leaves out, or None when every batch has a lag."""
    unknown = int(batches["lag_total"].isna().sum())
    if not unknown:
        return None
    return (
        f"Lag unknown for {unknown:,} micro-batch(es) (the broker could not be asked): "
        "the line joins the batches around them."
    )


def rows_chart(batches: pd.DataFrame) -> alt.Chart:
    """Rows read, landed and dead-lettered per micro-batch: a line with points per series."""
    long = batches.melt(
        id_vars=["finished_at", "batch_id"],
        value_vars=list(ROW_SERIES),
        var_name="series",
        value_name="rows",
    ).dropna(subset=["rows"])
    long = pd.DataFrame(
        {
            "finished_at": long["finished_at"],
            "finished": long["finished_at"].dt.strftime(BATCH_TIME_TOOLTIP_FORMAT),
            "batch_id": long["batch_id"],
            "series": long["series"].map(ROW_SERIES),
            "rows": long["rows"].astype("int64"),
        }
    ).reset_index(drop=True)
    order = list(ROW_SERIES.values())  # the pipeline's order, not the alphabet's
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=batch_time_x(),
            y=alt.Y("rows:Q", title="Rows", axis=count_axis()),
            color=alt.Color(
                "series:N", title=None, sort=order, scale=alt.Scale(domain=order)
            ).legend(orient="bottom"),
            tooltip=[
                alt.Tooltip("finished:N", title="Finished"),
                alt.Tooltip("batch_id:Q", title="Batch"),
                alt.Tooltip("series:N", title="Rows"),
                alt.Tooltip("rows:Q", title="Count", format=","),
            ],
        )
    )


def duration_chart(batches: pd.DataFrame) -> alt.Chart:
    """Seconds each micro-batch took (fractional: no integer axis here)."""
    return (
        alt.Chart(batch_points(batches, "duration_seconds"))
        .mark_line(point=True)
        .encode(
            x=batch_time_x(),
            y=alt.Y("duration_seconds:Q", title="Seconds"),
            tooltip=[
                alt.Tooltip("finished:N", title="Finished"),
                alt.Tooltip("batch_id:Q", title="Batch"),
                alt.Tooltip("duration_seconds:Q", title="Seconds", format=".2f"),
            ],
        )
    )


def day_labels(days: list[dt.date]) -> dict[dt.date, str]:
    """A label per distinct day: "Mar 05", with the year when the days span several."""
    day_format = DAY_FORMAT if len({day.year for day in days}) <= 1 else DAY_FORMAT_WITH_YEAR
    return {day: day.strftime(day_format) for day in days}


def dead_letters_chart(by_day: pd.DataFrame) -> alt.Chart:
    """Dead letters per event date, stacked by reason: one band per day, oldest first.

    The days are labels on an ordinal axis, not times on a time axis: a time axis puts a
    tick wherever it likes (the same date twice, times of day) and stretches each bar from
    its day to the next tick; a band is centred on its label.
    """
    days = sorted(set(by_day["event_date"]))
    labels = day_labels(days)
    data = pd.DataFrame(
        {
            "day": by_day["event_date"].map(labels),
            "event_date": by_day["event_date"].map(lambda day: day.isoformat()),
            "reason": by_day["reason"],
            "dead_letters": by_day["dead_letters"].astype("int64"),
        }
    )
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X(
                "day:O",
                title="Event date",
                sort=[labels[day] for day in days],  # by date, not by label text
                axis=alt.Axis(labelAngle=0),
            ),
            y=alt.Y("dead_letters:Q", title="Dead letters", axis=count_axis()),
            color=alt.Color("reason:N", title=None).legend(orient="bottom"),
            tooltip=[
                alt.Tooltip("event_date:N", title="Event date"),
                alt.Tooltip("reason:N", title="Reason"),
                alt.Tooltip("dead_letters:Q", title="Dead letters", format=","),
            ],
        )
    )


def batch_charts(batches: pd.DataFrame) -> None:
    st.subheader("Consumer lag over time")
    if batches.empty:
        st.info(NO_BATCH)
        return
    if batches["lag_total"].isna().all():
        st.info("No lag recorded yet: the broker could not be asked after any micro-batch.")
    else:
        st.altair_chart(lag_chart(batches), width="stretch")
        note = unknown_lag_note(batches)
        if note:
            st.caption(note)
    left, right = st.columns(2)
    with left:
        st.subheader("Rows per micro-batch")
        st.altair_chart(rows_chart(batches), width="stretch")
    with right:
        st.subheader("Micro-batch duration")
        st.altair_chart(duration_chart(batches), width="stretch")


def dead_letter_charts(by_day: pd.DataFrame) -> None:
    st.subheader("Dead letters by reason and day")
    if by_day.empty:
        st.info("No dead letter in the lake.")
        return
    left, right = st.columns([2, 1])
    with left:
        st.altair_chart(dead_letters_chart(by_day), width="stretch")
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
