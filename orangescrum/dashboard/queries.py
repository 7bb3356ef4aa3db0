"""What the dashboard shows, as SQL on the DuckDB marts: connection + filters -> DataFrame.

Only the marts of the `local_activity_dashboard` exposure are read (schema
`orangescrum_dw_marts`), with the columns their contracts promise
(dbt_project/models/marts/_marts__models.yml).

The KPI row (`kpis`) is not written here: it is the semantic layer's metrics, as MetricFlow
compiles them (semantic.py), run on the same connection, so it equals `orangescrum metrics
query` for the same filters. The other panels have their own SQL: additive measures (events,
tasks, hours) come from `agg_daily_metrics`; distinct users and event types need the grain of
`fact_activities`; `dim_dates` gives every day of the range a row, `dim_projects` the project
names.

No Streamlit here: the functions are tested on a tiny DuckDB file (tests/test_dashboard.py),
the KPIs also against `mf query` on a dbt-built warehouse (tests/dbt/test_dashboard_metrics.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from orangescrum.core.errors import OrangeScrumError
from orangescrum.dashboard.semantic import (
    MetricCompiler,
    filter_constraints,
    known_user_constraint,
)

MARTS_SCHEMA = "orangescrum_dw_marts"
REQUIRED_MARTS = ("agg_daily_metrics", "fact_activities", "dim_users", "dim_projects", "dim_dates")
UNKNOWN_USER_ID = -1  # dim_users' unknown member: events without a known actor
BUILD_HINT = "run `make demo` or `orangescrum warehouse build` first"

AGG = f"{MARTS_SCHEMA}.agg_daily_metrics"
FACT = f"{MARTS_SCHEMA}.fact_activities"
DATES = f"{MARTS_SCHEMA}.dim_dates"
PROJECTS = f"{MARTS_SCHEMA}.dim_projects"

# The three filters, as a predicate on any relation with activity_date, company_id, project_id.
FILTERED = """
    activity_date between $start_date and $end_date
    and ($company_id is null or company_id = $company_id)
    and ($project_id is null or project_id = $project_id)
"""
# Every day of the range that the warehouse knows (dim_dates spans the fact's first to last day).
DAYS_OF_RANGE = f"select date_day from {DATES} where date_day between $start_date and $end_date"


class WarehouseNotReadyError(OrangeScrumError):
    """The DuckDB file, or one of the marts the dashboard reads, is not there (or is locked)."""


@dataclass(frozen=True)
class Filters:
    """Dates are inclusive; None means every company / every project."""

    start_date: dt.date
    end_date: dt.date
    company_id: int | None = None
    project_id: int | None = None

    def __post_init__(self) -> None:
        if self.start_date > self.end_date:
            raise ValueError(f"start_date {self.start_date} is after end_date {self.end_date}")

    def params(self) -> dict[str, object]:
        return {
            "start_date": self.start_date,
            "end_date": self.end_date,
            "company_id": self.company_id,
            "project_id": self.project_id,
        }


# --- connection ---------------------------------------------------------------------------------
def missing_marts(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """The required marts absent from the warehouse, in REQUIRED_MARTS order."""
    present = {
        name
        for (name,) in connection.execute(
            "select table_name from information_schema.tables where table_schema = ?",
            [MARTS_SCHEMA],
        ).fetchall()
    }
    return [name for name in REQUIRED_MARTS if name not in present]


@contextmanager
def open_warehouse(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse, once its marts are known to be there."""
    if not path.is_file():
        raise WarehouseNotReadyError(f"No DuckDB warehouse at {path}: {BUILD_HINT}.")
    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as error:
        # A build holds DuckDB's write lock on the file until it finishes.
        raise WarehouseNotReadyError(
            f"Cannot open the warehouse {path} ({error}); if a build is writing it, "
            "retry when the build has finished."
        ) from None
    try:
        missing = missing_marts(connection)
        if missing:
            raise WarehouseNotReadyError(
                f"The warehouse {path} lacks {', '.join(missing)} in schema {MARTS_SCHEMA}: "
                f"{BUILD_HINT}."
            )
        yield connection
    finally:
        connection.close()


def require_warehouse(path: Path) -> None:
    """Raise WarehouseNotReadyError unless the warehouse file and all its marts exist."""
    with open_warehouse(path):
        pass


def _frame(
    connection: duckdb.DuckDBPyConnection, sql: str, filters: Filters, **extra: object
) -> pd.DataFrame:
    return connection.execute(sql, filters.params() | extra).df()


# --- filter choices -----------------------------------------------------------------------------
def date_bounds(connection: duckdb.DuckDBPyConnection) -> tuple[dt.date, dt.date] | None:
    """First and last activity_date of agg_daily_metrics; None when the mart is empty."""
    row = connection.execute(f"select min(activity_date), max(activity_date) from {AGG}").fetchone()
    return None if row is None or row[0] is None else (row[0], row[1])


def project_choices(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """company_id, project_id, project_name of every (company, project) with daily metrics.

    Project -1 ("No project": activity outside any project) appears once per company.
    """
    return connection.execute(
        f"""
        select distinct
            agg.company_id,
            agg.project_id,
            coalesce(projects.project_name, 'Project ' || agg.project_id) as project_name
        from {AGG} as agg
        left join {PROJECTS} as projects on agg.project_id = projects.project_id
        order by agg.company_id, project_name, agg.project_id
        """
    ).df()


# --- panels -------------------------------------------------------------------------------------
# KPI column -> the semantic layer's metric it shows (dbt_project/models/marts/_marts__metrics.yml).
KPI_METRICS = {
    "event_count": "events",
    "tasks_created_count": "tasks_created",
    "tasks_closed_count": "tasks_closed",
    "billable_hours": "billable_hours_logged",
    "non_billable_hours": "non_billable_hours_logged",
}
USER_KPI = ("active_user_count", "active_users")
KPI_COLUMNS = (
    "event_count",
    "active_user_count",
    "tasks_created_count",
    "tasks_closed_count",
    "billable_hours",
    "non_billable_hours",
)
KPI_HOURS = ("billable_hours", "non_billable_hours")


def kpi_sql(metrics: MetricCompiler, filters: Filters) -> str:
    """The KPI row's SQL: the metrics as MetricFlow compiles them, under the filters.

    Two compiled queries: the unknown member is excluded from active users only (its events
    still count as events). The outer select only names, types and zero-fills their results.
    """
    where = filter_constraints(
        filters.start_date, filters.end_date, filters.company_id, filters.project_id
    )
    counts = metrics.sql(list(KPI_METRICS.values()), where)
    users = metrics.sql([USER_KPI[1]], [*where, known_user_constraint(UNKNOWN_USER_ID)])
    columns = {**KPI_METRICS, USER_KPI[0]: USER_KPI[1]}
    selected = ",\n    ".join(
        f"cast(coalesce({columns[column]}, 0) as "
        f"{'double' if column in KPI_HOURS else 'bigint'}) as {column}"
        for column in KPI_COLUMNS
    )
    # The compiled queries end with line comments: each closes on its own line.
    return (
        f"with kpi_counts as (\n{counts}\n),\n\nkpi_users as (\n{users}\n)\n\n"
        f"select\n    {selected}\nfrom kpi_counts\ncross join kpi_users"
    )


def kpis(
    connection: duckdb.DuckDBPyConnection, filters: Filters, metrics: MetricCompiler
) -> pd.DataFrame:
    """One row over the whole range: event_count, active_user_count, tasks_created_count,
    tasks_closed_count, billable_hours, non_billable_hours.

    The semantic layer's metrics (events, active_users, tasks_created, tasks_closed,
    billable_hours_logged, non_billable_hours_logged), as `orangescrum metrics query` computes
    them with the same filters: active users are distinct over the range (a user active on
    several days or projects counts once; the unknown member not at all), tasks closed are
    closing transitions (a task reopened and closed again counts twice). 0 when none.
    """
    return connection.execute(kpi_sql(metrics, filters)).df()


def daily_activity(connection: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """activity_date, event_count, active_user_count: one row per day of the range, 0 when idle.

    Active users are distinct per day across the selected projects (from fact_activities,
    unknown member excluded), so they are not the sum of the per-project counts.
    """
    return _frame(
        connection,
        f"""
        with days as ({DAYS_OF_RANGE}),

        activity as (
            select
                activity_date,
                count(*) as event_count,
                count(distinct user_id) filter (
                    where user_id <> $unknown_user_id
                ) as active_user_count
            from {FACT}
            where {FILTERED}
            group by activity_date
        )

        select
            days.date_day as activity_date,
            coalesce(activity.event_count, 0) as event_count,
            coalesce(activity.active_user_count, 0) as active_user_count
        from days
        left join activity on days.date_day = activity.activity_date
        order by activity_date
        """,
        filters,
        unknown_user_id=UNKNOWN_USER_ID,
    )


def task_throughput(connection: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """activity_date, tasks_created_count, tasks_closed_count: one row per day, 0 when none."""
    return _frame(
        connection,
        f"""
        with days as ({DAYS_OF_RANGE}),

        throughput as (
            select
                activity_date,
                sum(tasks_created_count) as tasks_created_count,
                sum(tasks_closed_count) as tasks_closed_count
            from {AGG}
            where {FILTERED}
            group by activity_date
        )

        select
            days.date_day as activity_date,
            cast(coalesce(throughput.tasks_created_count, 0) as bigint) as tasks_created_count,
            cast(coalesce(throughput.tasks_closed_count, 0) as bigint) as tasks_closed_count
        from days
        left join throughput on days.date_day = throughput.activity_date
        order by activity_date
        """,
        filters,
    )


def hours_by_project(connection: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """project_id, project_name, billable_hours, non_billable_hours, total_hours.

    Projects with hours logged in the range only, most hours first.
    """
    return _frame(
        connection,
        f"""
        with hours as (
            select
                project_id,
                sum(billable_hours_logged) as billable_hours,
                sum(non_billable_hours_logged) as non_billable_hours
            from {AGG}
            where {FILTERED}
            group by project_id
        )

        select
            hours.project_id,
            coalesce(projects.project_name, 'Project ' || hours.project_id) as project_name,
            cast(hours.billable_hours as double) as billable_hours,
            cast(hours.non_billable_hours as double) as non_billable_hours,
            cast(hours.billable_hours + hours.non_billable_hours as double) as total_hours
        from hours
        left join {PROJECTS} as projects on hours.project_id = projects.project_id
        where hours.billable_hours + hours.non_billable_hours > 0
        order by total_hours desc, project_name
        """,
        filters,
    )


def cycle_time_by_project(connection: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """project_id, project_name, median_cycle_time_hours, days_with_cycle_time.

    The mart keeps one median per day and project (tasks first closed that day), not the
    tasks' own cycle times, so the value per project is the (interpolated) median of those
    daily medians over the range: exact for a single day, an approximation across days.
    Projects without any closed task of known creation are left out; slowest first.
    """
    return _frame(
        connection,
        f"""
        with medians as (
            select
                project_id,
                quantile_cont(median_task_cycle_time_hours, 0.5) as median_cycle_time_hours,
                count(distinct activity_date) as days_with_cycle_time
            from {AGG}
            where {FILTERED} and median_task_cycle_time_hours is not null
            group by project_id
        )

        select
            medians.project_id,
            coalesce(projects.project_name, 'Project ' || medians.project_id) as project_name,
            cast(medians.median_cycle_time_hours as double) as median_cycle_time_hours,
            medians.days_with_cycle_time
        from medians
        left join {PROJECTS} as projects on medians.project_id = projects.project_id
        order by median_cycle_time_hours desc, project_name
        """,
        filters,
    )


def top_event_types(
    connection: duckdb.DuckDBPyConnection, filters: Filters, limit: int = 10
) -> pd.DataFrame:
    """event_type, event_category, event_count: the `limit` most frequent types, ties by name."""
    return _frame(
        connection,
        f"""
        select
            event_type,
            any_value(event_category) as event_category,
            count(*) as event_count
        from {FACT}
        where {FILTERED}
        group by event_type
        order by event_count desc, event_type
        limit $limit
        """,
        filters,
        limit=limit,
    )


def daily_metrics(connection: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """The agg_daily_metrics rows of the range with the project name: newest day first."""
    return _frame(
        connection,
        f"""
        with rows as (
            select * from {AGG} where {FILTERED}
        )

        select
            rows.activity_date,
            rows.company_id,
            rows.project_id,
            coalesce(projects.project_name, 'Project ' || rows.project_id) as project_name,
            rows.event_count,
            rows.active_user_count,
            rows.tasks_created_count,
            rows.tasks_closed_count,
            rows.comment_count,
            rows.billable_hours_logged,
            rows.non_billable_hours_logged,
            rows.median_task_cycle_time_hours
        from rows
        left join {PROJECTS} as projects on rows.project_id = projects.project_id
        order by rows.activity_date desc, rows.company_id, project_name
        """,
        filters,
    )
