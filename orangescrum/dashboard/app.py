"""The local activity dashboard: a Streamlit script on the DuckDB marts.

Two pages (st.navigation): "Activity", the marts (this module), and "Pipeline health"
(health_page.py: consumer lag, micro-batches, dead letters, freshness, the last dbt run).
Served by `orangescrum dashboard` (`streamlit run` of this file); the warehouse is
`load_settings().duckdb_file` (ORANGESCRUM_DUCKDB_PATH or <ORANGESCRUM_DATA_DIR>/warehouse.duckdb).
Query results are cached per warehouse version (the file's modification time), so the page
shows fresh data on the next interaction or reload after a rebuild.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import load_settings
from orangescrum.dashboard import queries

PANELS: dict[str, Callable[..., pd.DataFrame]] = {
    "kpis": queries.kpis,
    "daily_activity": queries.daily_activity,
    "task_throughput": queries.task_throughput,
    "hours_by_project": queries.hours_by_project,
    "cycle_time_by_project": queries.cycle_time_by_project,
    "top_event_types": queries.top_event_types,
    "daily_metrics": queries.daily_metrics,
}
ALL = None  # the "every company / every project" choice of the selectboxes
HEALTH_PAGE = Path(__file__).with_name("health_page.py")
LABEL_LIMIT_PX = 220  # project names and event types in full


def warehouse_version(path: Path) -> int:
    """Latest modification time (ns) of the DuckDB file and its WAL: changes on every rebuild."""
    stamps = [
        candidate.stat().st_mtime_ns
        for candidate in (path, path.with_name(path.name + ".wal"))
        if candidate.exists()
    ]
    return max(stamps, default=0)


# `path` and `version` are the cache key: a rebuilt warehouse has a new version.
@st.cache_data(show_spinner=False, max_entries=16)
def load_choices(path: str, version: int) -> tuple[tuple[dt.date, dt.date] | None, pd.DataFrame]:
    with queries.open_warehouse(Path(path)) as connection:
        return queries.date_bounds(connection), queries.project_choices(connection)


@st.cache_data(show_spinner="Querying the warehouse...", max_entries=128)
def load_panels(path: str, version: int, filters: queries.Filters) -> dict[str, pd.DataFrame]:
    with queries.open_warehouse(Path(path)) as connection:
        return {name: query(connection, filters) for name, query in PANELS.items()}


def company_label(company_id: int | None) -> str:
    return "All companies" if company_id is ALL else f"Company {company_id}"


def project_label(row: tuple, *, with_company: bool) -> str:
    # Across companies the same name may exist twice; "No project" exists once per company.
    if not with_company or row.project_id == -1:
        return str(row.project_name)
    return f"{row.project_name} (company {row.company_id})"


def date_range(picked: object, bounds: tuple[dt.date, dt.date]) -> tuple[dt.date, dt.date]:
    """The date_input value as (start, end): mid-selection it holds only the first day."""
    days = [day for day in (picked if isinstance(picked, tuple) else (picked,)) if day]
    if not days:
        return bounds
    return days[0], days[-1]


def sidebar_filters(bounds: tuple[dt.date, dt.date], choices: pd.DataFrame) -> queries.Filters:
    sidebar = st.sidebar
    sidebar.header("Filters")
    first, last = bounds
    kept = st.session_state.get("dates")
    if kept and not all(first <= day <= last for day in kept):
        del st.session_state["dates"]  # a rebuild moved the bounds: start from the full range
    picked = sidebar.date_input(
        "Dates", value=(first, last), min_value=first, max_value=last, key="dates"
    )
    start, end = date_range(picked, bounds)

    companies = [ALL, *sorted(choices["company_id"].unique().tolist())]
    company_id = sidebar.selectbox("Company", companies, format_func=company_label, key="company")
    in_company = choices if company_id is ALL else choices[choices["company_id"] == company_id]
    names = {
        int(row.project_id): project_label(row, with_company=company_id is ALL)
        for row in in_company.itertuples()
    }
    project_id = sidebar.selectbox(
        "Project",
        [ALL, *sorted(names, key=lambda project: names[project])],
        format_func=lambda project: "All projects" if project is ALL else names[project],
        key="project",
    )
    return queries.Filters(start, end, company_id, project_id)


def kpi_row(kpis: pd.DataFrame) -> None:
    # Records keep each column's type (a row Series would turn the counts into floats).
    row = kpis.to_dict("records")[0]
    columns = st.columns(6)
    columns[0].metric("Events", f"{row['event_count']:,}")
    columns[1].metric(
        "Active users", f"{row['active_user_count']:,}", help="Distinct users over the range."
    )
    columns[2].metric("Tasks created", f"{row['tasks_created_count']:,}")
    columns[3].metric(
        "Tasks closed",
        f"{row['tasks_closed_count']:,}",
        help="Closing transitions: a task reopened and closed again counts twice.",
    )
    columns[4].metric("Billable hours", f"{row['billable_hours']:,.1f}")
    columns[5].metric("Non-billable hours", f"{row['non_billable_hours']:,.1f}")


def horizontal_bars(
    frame: pd.DataFrame,
    *,
    empty_notice: str,
    category: str,
    value: str,
    value_title: str,
    color: str | None = None,
    tooltip: list[str] | None = None,
) -> bool:
    """Bars per category, in the frame's row order, with labels long enough for project names;
    `empty_notice` instead when the frame has no row. Returns whether bars were drawn.

    st.bar_chart cuts axis labels at 100 px ("Quartz Customer ..."): Altair sets its own limit.
    """
    if frame.empty:
        st.info(empty_notice)
        return False
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(f"{value}:Q", title=value_title),
            y=alt.Y(
                f"{category}:N",
                title=None,
                sort=list(dict.fromkeys(frame[category])),
                axis=alt.Axis(labelLimit=LABEL_LIMIT_PX),
            ),
            tooltip=tooltip or [category, value],
        )
    )
    if color:
        chart = chart.encode(color=alt.Color(f"{color}:N", title=None).legend(orient="bottom"))
    st.altair_chart(chart, width="stretch")
    return True


def activity_charts(panels: dict[str, pd.DataFrame]) -> None:
    activity = panels["daily_activity"]
    left, right = st.columns(2)
    with left:
        st.subheader("Events per day")
        st.line_chart(activity, x="activity_date", y="event_count", x_label="Day", y_label="Events")
    with right:
        st.subheader("Active users per day")
        st.line_chart(
            activity, x="activity_date", y="active_user_count", x_label="Day", y_label="Users"
        )


def task_charts(panels: dict[str, pd.DataFrame]) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Task throughput")
        throughput = panels["task_throughput"]
        st.bar_chart(
            # Days as text, in data order: grouped bars need a discrete axis (on a time axis
            # they overlap).
            throughput.assign(day=throughput["activity_date"].dt.strftime("%b %d")).rename(
                columns={"tasks_created_count": "Created", "tasks_closed_count": "Closed"}
            ),
            x="day",
            y=["Created", "Closed"],
            x_label="Day",
            y_label="Tasks",
            stack=False,
            sort=False,
        )
    with right:
        st.subheader("Median cycle time by project")
        if horizontal_bars(
            panels["cycle_time_by_project"],
            empty_notice="No task with an observed creation was closed in this selection.",
            category="project_name",
            value="median_cycle_time_hours",
            value_title="Hours from creation to first close",
            tooltip=["project_name", "median_cycle_time_hours", "days_with_cycle_time"],
        ):
            st.caption(
                "Median of the daily medians of agg_daily_metrics (tasks first closed that "
                "day): exact for one day, an approximation across days."
            )


def hours_and_event_charts(panels: dict[str, pd.DataFrame]) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Hours logged by project")
        horizontal_bars(
            panels["hours_by_project"]
            .rename(columns={"billable_hours": "Billable", "non_billable_hours": "Non-billable"})
            .melt(
                id_vars=["project_name"],
                value_vars=["Billable", "Non-billable"],
                var_name="kind",
                value_name="hours",
            ),
            empty_notice="No hours logged in this selection.",
            category="project_name",
            value="hours",
            value_title="Hours",
            color="kind",
            tooltip=["project_name", "kind", alt.Tooltip("hours:Q", format=",.1f")],
        )
    with right:
        st.subheader("Top event types")
        horizontal_bars(
            panels["top_event_types"],
            empty_notice="No events in this selection.",
            category="event_type",
            value="event_count",
            value_title="Events",
            color="event_category",
        )


def main() -> None:
    st.title("OrangeScrum activity")
    try:
        path = load_settings().duckdb_file
    except OrangeScrumError as error:
        st.error(str(error))
        st.stop()
    version = warehouse_version(path)
    try:
        bounds, choices = load_choices(str(path), version)
        if bounds is None:
            st.warning(f"The marts in {path} are empty: {queries.BUILD_HINT}.")
            st.stop()
        filters = sidebar_filters(bounds, choices)
        panels = load_panels(str(path), version, filters)
    except queries.WarehouseNotReadyError as error:
        st.error(str(error))
        st.stop()
    built = dt.datetime.fromtimestamp(version / 1e9).strftime("%Y-%m-%d %H:%M:%S")
    st.caption(
        f"{filters.start_date:%Y-%m-%d} to {filters.end_date:%Y-%m-%d} · warehouse {path} "
        f"(built {built}) · marts: {queries.MARTS_SCHEMA}"
    )
    kpi_row(panels["kpis"])
    activity_charts(panels)
    task_charts(panels)
    hours_and_event_charts(panels)
    st.subheader("Daily metrics")
    st.dataframe(
        panels["daily_metrics"],
        hide_index=True,
        column_config={
            "activity_date": st.column_config.DateColumn("Day", format="YYYY-MM-DD"),
            "company_id": "Company",
            "project_id": "Project id",
            "project_name": "Project",
            "event_count": "Events",
            "active_user_count": "Active users",
            "tasks_created_count": "Tasks created",
            "tasks_closed_count": "Tasks closed",
            "comment_count": "Comments",
            "billable_hours_logged": st.column_config.NumberColumn("Billable hours", format="%.2f"),
            "non_billable_hours_logged": st.column_config.NumberColumn(
                "Non-billable hours", format="%.2f"
            ),
            "median_task_cycle_time_hours": st.column_config.NumberColumn(
                "Median cycle time (h)", format="%.1f"
            ),
        },
    )


def navigation() -> None:
    """The activity page first (the default), then the pipeline's health."""
    st.set_page_config(page_title="OrangeScrum", page_icon="📊", layout="wide")
    page = st.navigation(
        [
            st.Page(main, title="Activity", icon="📊", url_path="activity", default=True),
            st.Page(HEALTH_PAGE, title="Pipeline health", icon="🩺", url_path="health"),
        ]
    )
    page.run()


if __name__ == "__main__":
    navigation()
