"""The local activity dashboard: a Streamlit script on the DuckDB marts.

Two pages (st.navigation): "Activity", the marts (this module), and "Pipeline health"
(health_page.py: consumer lag, micro-batches, dead letters, freshness, the last dbt run).
Served by `orangescrum dashboard` (`streamlit run` of this file); the warehouse is
`load_settings().duckdb_file` (ORANGESCRUM_DUCKDB_PATH or <ORANGESCRUM_DATA_DIR>/warehouse.duckdb).
The KPIs are the semantic layer's metrics, compiled by MetricFlow from the semantic manifest
(semantic.py; `orangescrum dashboard` writes a fresh one and names it in
ORANGESCRUM_DASHBOARD_SEMANTIC_MANIFEST). Query results are cached per warehouse and manifest
version (the files' modification times), so the page shows fresh data on the next interaction
or reload after a rebuild.
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
from orangescrum.dashboard import queries, semantic

# The panels computed with their own SQL on the marts (the KPIs come from the semantic layer).
PANELS: dict[str, Callable[..., pd.DataFrame]] = {
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

# Daily charts. A day is a date, so its axis says "Nov 28" (never "12 PM", which a time axis
# shows between two days), one tick per day at most.
DAY_FORMAT = "%b %d"
DAY_TICKS = {"interval": "day", "step": 1}
HALF_DAY = dt.timedelta(hours=12)  # padding either side, so a one-day range has a visible day
PARTIAL_DAY_NOTE = "today (partial)"
PARTIAL_OPACITY = 0.45
WEEKEND_SHADE = {"color": "#888888", "opacity": 0.12}


def _count(label: str, width: int, help_text: str) -> st.column_config.NumberColumn:
    return st.column_config.NumberColumn(label, help=help_text, width=width, format="%d")


def _hours(label: str, width: int, help_text: str) -> st.column_config.NumberColumn:
    return st.column_config.NumberColumn(label, help=help_text, width=width, format="%.1f")


# Column -> its header in the daily metrics table, in display order. Widths (px) fit each short
# header in full and add up to 812 px: the page's main column beside the sidebar is about
# 820 px wide in a 1280 px window, so no column hides behind a horizontal scroll bar.
DAILY_METRICS_COLUMNS = {
    # The year is in the page's caption; "Nov 28" leaves the room to the project's name.
    "activity_date": st.column_config.DateColumn("Day", format="MMM DD", width=64),
    "company_id": st.column_config.NumberColumn("Co.", help="Company", width=44, format="%d"),
    "project_name": st.column_config.TextColumn("Project", width=164),
    "event_count": _count("Events", 60, "Events that day."),
    "active_user_count": _count("Users", 56, "Distinct active users that day."),
    "tasks_created_count": _count("Created", 68, "Tasks created."),
    "tasks_closed_count": _count(
        "Closed", 62, "Closing transitions (a task reopened and closed again counts twice)."
    ),
    "comment_count": _count("Comments", 80, "Comments posted."),
    "billable_hours_logged": _hours("Bill. h", 62, "Billable hours logged."),
    "non_billable_hours_logged": _hours("Non-bill. h", 86, "Non-billable hours logged."),
    "median_task_cycle_time_hours": _hours(
        "Cycle h",
        66,
        "Median hours from creation to first close, of the tasks first closed that day.",
    ),
}


def file_version(path: Path) -> int:
    """Modification time (ns) of a file, 0 when it is missing."""
    return path.stat().st_mtime_ns if path.exists() else 0


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


# One MetricFlow engine per manifest version, shared by every session: building one takes a
# while, and a new manifest (a changed metric) gets its own.
@st.cache_resource(show_spinner="Loading the semantic layer...", max_entries=4)
def load_metric_compiler(manifest: str, manifest_version: int) -> semantic.MetricCompiler:
    return semantic.MetricCompiler.from_file(Path(manifest))


# `_metrics` is not hashed: `manifest` and `manifest_version` stand for it in the cache key.
@st.cache_data(show_spinner="Querying the warehouse...", max_entries=128)
def load_panels(
    path: str,
    version: int,
    filters: queries.Filters,
    manifest: str,
    manifest_version: int,
    _metrics: semantic.MetricCompiler,
) -> dict[str, pd.DataFrame]:
    with queries.open_warehouse(Path(path)) as connection:
        return {"kpis": queries.kpis(connection, filters, _metrics)} | {
            name: query(connection, filters) for name, query in PANELS.items()
        }


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


def today_utc() -> dt.date:
    """The day still filling: activity_date is the UTC date of the event (dbt docs)."""
    return dt.datetime.now(dt.UTC).date()


def by_day(frame: pd.DataFrame, today: dt.date) -> pd.DataFrame:
    """A daily frame (activity_date) plus what the charts draw each day with.

    day: the date as ISO text; Vega reads a bare date as UTC midnight and the axis scale is
    UTC, so every browser shows the same day whatever its time zone. day_label (tooltips,
    weekday included: weekends explain the weekly dips) and tick (the bars' axis): text.
    is_partial: the day is today, still filling, so its low count is no collapse; is_tail:
    today and the day before, the dashed last segment. is_weekend, shade_start, shade_end:
    the weekend band, a day wide around the day's point.
    """
    dates = [pd.Timestamp(value).date() for value in frame["activity_date"]]
    midnights = [dt.datetime.combine(day, dt.time()) for day in dates]
    today_in_range = today in dates
    return frame.assign(
        day=[day.isoformat() for day in dates],
        day_label=[
            f"{day:%a %b %d}" + (f", {PARTIAL_DAY_NOTE}" if day == today else "") for day in dates
        ],
        tick=[f"{day:{DAY_FORMAT}}" for day in dates],
        is_partial=[day == today for day in dates],
        is_tail=[today_in_range and 0 <= (today - day).days <= 1 for day in dates],
        is_weekend=[day.weekday() >= 5 for day in dates],
        shade_start=[f"{moment - HALF_DAY:%Y-%m-%dT%H:%M:%SZ}" for moment in midnights],
        shade_end=[f"{moment + HALF_DAY:%Y-%m-%dT%H:%M:%SZ}" for moment in midnights],
    )


def _utc(moment: dt.datetime) -> alt.DateTime:
    return alt.DateTime(
        year=moment.year, month=moment.month, date=moment.day, hours=moment.hour, utc=True
    )


def day_x(days: pd.DataFrame, field: str = "day") -> alt.X:
    """A temporal x over the frame's days in UTC, half a day of room either side (so a
    one-day range is a day wide), labelled with dates only, at most one tick a day."""
    first = dt.datetime.fromisoformat(days["day"].min()) - HALF_DAY
    last = dt.datetime.fromisoformat(days["day"].max()) + HALF_DAY
    return alt.X(
        f"{field}:T",
        title=None,
        scale=alt.Scale(type="utc", domain=[_utc(first), _utc(last)]),
        axis=alt.Axis(format=DAY_FORMAT, tickCount=DAY_TICKS, labelOverlap=True, grid=False),
    )


def daily_line_chart(
    frame: pd.DataFrame, value: str, value_title: str, today: dt.date
) -> alt.LayerChart:
    """One value per day: a line with a point on every day (a one-day range still shows its
    point), weekends shaded, and today, if in range, set apart: a dashed last segment, a
    hollow point and the note "today (partial)"."""
    days = by_day(frame, today)
    tooltip = [
        alt.Tooltip("day_label:N", title="Day"),
        alt.Tooltip(f"{value}:Q", title=value_title, format=","),
    ]
    base = alt.Chart(days).encode(
        x=day_x(days), y=alt.Y(f"{value}:Q", title=value_title), tooltip=tooltip
    )
    layers: list[alt.Chart] = []
    if days["is_weekend"].any():
        layers.append(
            alt.Chart(days)
            .mark_rect(**WEEKEND_SHADE)
            .encode(x=day_x(days, "shade_start"), x2="shade_end:T")
            .transform_filter("datum.is_weekend")
        )
    complete = "!datum.is_partial"
    layers += [
        base.mark_line().transform_filter(complete),
        base.mark_point(filled=True, size=40, opacity=1).transform_filter(complete),
    ]
    if days["is_partial"].any():
        partial = "datum.is_partial"
        layers += [
            base.mark_line(strokeDash=[4, 3], opacity=PARTIAL_OPACITY).transform_filter(
                "datum.is_tail"
            ),
            base.mark_point(filled=False, size=60).transform_filter(partial),
            # Today is the last day of any range holding it (no mart has a later day): the
            # note ends at its point, inside the chart.
            base.mark_text(align="right", dx=-6, dy=-10)
            .encode(text=alt.value(PARTIAL_DAY_NOTE))
            .transform_filter(partial),
        ]
    return alt.layer(*layers)


def throughput_chart(frame: pd.DataFrame, today: dt.date) -> alt.Chart:
    """Tasks created and closed per day, side by side; today's bars pale (still filling).

    Grouped bars need a discrete axis (on a time axis they overlap), so the days are the
    labels "Nov 28" in date order.
    """
    days = by_day(frame, today).rename(
        columns={"tasks_created_count": "Created", "tasks_closed_count": "Closed"}
    )
    bars = days.melt(
        id_vars=["tick", "day_label", "is_partial"],
        value_vars=["Created", "Closed"],
        var_name="kind",
        value_name="tasks",
    )
    return (
        alt.Chart(bars)
        .mark_bar()
        .encode(
            x=alt.X(
                "tick:O",
                title=None,
                sort=days["tick"].tolist(),
                axis=alt.Axis(labelAngle=0, labelOverlap=True),
            ),
            xOffset=alt.XOffset("kind:N", sort=["Created", "Closed"]),
            y=alt.Y("tasks:Q", title="Tasks"),
            color=alt.Color("kind:N", title=None, sort=["Created", "Closed"]).legend(
                orient="bottom"
            ),
            opacity=alt.condition("datum.is_partial", alt.value(PARTIAL_OPACITY), alt.value(1.0)),
            tooltip=[
                alt.Tooltip("day_label:N", title="Day"),
                alt.Tooltip("kind:N", title="Tasks"),
                alt.Tooltip("tasks:Q", title="Count"),
            ],
        )
    )


def activity_charts(panels: dict[str, pd.DataFrame], today: dt.date) -> None:
    activity = panels["daily_activity"]
    if activity.empty:  # a range the marts' calendar (dim_dates) does not reach
        st.info("No day of this range is in the warehouse.")
        return
    left, right = st.columns(2)
    with left:
        st.subheader("Events per day")
        st.altair_chart(daily_line_chart(activity, "event_count", "Events", today), width="stretch")
    with right:
        st.subheader("Active users per day")
        st.altair_chart(
            daily_line_chart(activity, "active_user_count", "Users", today), width="stretch"
        )
    if by_day(activity, today)["is_partial"].any():
        st.caption(
            f"Today ({today:%b %d}, UTC) is still in progress: its line is dashed, its point "
            "hollow and its bars pale. Shaded: weekends."
        )
    else:
        st.caption("Shaded: weekends.")


def task_charts(panels: dict[str, pd.DataFrame], today: dt.date) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Task throughput")
        if panels["task_throughput"].empty:
            st.info("No day of this range is in the warehouse.")
        else:
            st.altair_chart(throughput_chart(panels["task_throughput"], today), width="stretch")
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


def daily_metrics_columns(filters: queries.Filters) -> list[str]:
    """The table's columns: the company only while every company is shown (the project name
    says it otherwise), never the project id."""
    columns = list(DAILY_METRICS_COLUMNS)
    if filters.company_id is not ALL:
        columns.remove("company_id")
    return columns


def daily_metrics_table(frame: pd.DataFrame, filters: queries.Filters) -> None:
    st.subheader("Daily metrics")
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_order=daily_metrics_columns(filters),
        column_config=DAILY_METRICS_COLUMNS,
    )


def main() -> None:
    st.title("OrangeScrum activity")
    try:
        settings = load_settings()
    except OrangeScrumError as error:
        st.error(str(error))
        st.stop()
    path = settings.duckdb_file
    manifest = semantic.manifest_file(settings)
    version = warehouse_version(path)
    try:
        bounds, choices = load_choices(str(path), version)
        if bounds is None:
            st.warning(f"The marts in {path} are empty: {queries.BUILD_HINT}.")
            st.stop()
        filters = sidebar_filters(bounds, choices)
        manifest_version = file_version(manifest)
        metrics = load_metric_compiler(str(manifest), manifest_version)
        panels = load_panels(str(path), version, filters, str(manifest), manifest_version, metrics)
    except (queries.WarehouseNotReadyError, semantic.SemanticLayerNotReadyError) as error:
        st.error(str(error))
        st.stop()
    built = dt.datetime.fromtimestamp(version / 1e9).strftime("%Y-%m-%d %H:%M:%S")
    st.caption(
        f"{filters.start_date:%Y-%m-%d} to {filters.end_date:%Y-%m-%d} · warehouse {path} "
        f"(built {built}) · marts: {queries.MARTS_SCHEMA} · KPIs: the semantic layer's metrics"
    )
    kpi_row(panels["kpis"])
    today = today_utc()
    activity_charts(panels, today)
    task_charts(panels, today)
    hours_and_event_charts(panels)
    daily_metrics_table(panels["daily_metrics"], filters)


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
