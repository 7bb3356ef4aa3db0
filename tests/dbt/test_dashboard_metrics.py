"""The dashboard's KPI row is the semantic layer's: on the dbt-built fixture warehouse, the KPIs
the page computes (MetricFlow-compiled SQL, run on the page's DuckDB connection) equal both the
direct SQL on the marts the page used before and `orangescrum metrics query` (`mf query`) with
the same filters, for several filter choices.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import duckdb
import pytest

from orangescrum.dashboard import queries, semantic
from orangescrum.dashboard.queries import Filters
from orangescrum.warehouse.metrics import query_metrics
from tests.dbt.conftest import Warehouse

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MARTS = queries.MARTS_SCHEMA
# tests/dbt/lake.py's week, Monday 2024-03-04 to Friday 03-08: company 1, projects 100 Website
# and 200 Support, -1 for activity outside any project.
CHOICES = [
    pytest.param(Filters(dt.date(2024, 3, 4), dt.date(2024, 3, 8)), id="whole-week"),
    pytest.param(
        Filters(dt.date(2024, 3, 4), dt.date(2024, 3, 8), company_id=1, project_id=200),
        id="company-1-support",
    ),
    pytest.param(
        Filters(dt.date(2024, 3, 5), dt.date(2024, 3, 6), company_id=1, project_id=100),
        id="website-tuesday-wednesday",
    ),
    pytest.param(Filters(dt.date(2024, 3, 4), dt.date(2024, 3, 8), project_id=-1), id="no-project"),
]
HOURS = ("billable_hours", "non_billable_hours")

# The KPIs as queries.kpis computed them before the semantic layer: sums of agg_daily_metrics,
# distinct known users of fact_activities.
DIRECT_SQL = f"""
    with metrics as (
        select
            coalesce(sum(event_count), 0) as event_count,
            coalesce(sum(tasks_created_count), 0) as tasks_created_count,
            coalesce(sum(tasks_closed_count), 0) as tasks_closed_count,
            coalesce(sum(billable_hours_logged), 0) as billable_hours,
            coalesce(sum(non_billable_hours_logged), 0) as non_billable_hours
        from {MARTS}.agg_daily_metrics
        where {queries.FILTERED}
    ),

    users as (
        select count(distinct user_id) as active_user_count
        from {MARTS}.fact_activities
        where {queries.FILTERED} and user_id <> {queries.UNKNOWN_USER_ID}
    )

    select
        cast(metrics.event_count as bigint) as event_count,
        users.active_user_count,
        cast(metrics.tasks_created_count as bigint) as tasks_created_count,
        cast(metrics.tasks_closed_count as bigint) as tasks_closed_count,
        cast(metrics.billable_hours as double) as billable_hours,
        cast(metrics.non_billable_hours as double) as non_billable_hours
    from metrics
    cross join users
"""


@pytest.fixture(scope="module")
def metric_compiler(built_warehouse: Warehouse) -> semantic.MetricCompiler:
    """The compiler of the manifest the fixture warehouse's own `dbt build` wrote."""
    return semantic.MetricCompiler.from_file(built_warehouse.target_path / semantic.MANIFEST_NAME)


@contextmanager
def connect(warehouse: Warehouse) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection closed before `mf` runs: DuckDB lets one process at a time hold the file.

    Not read-only: dbt-duckdb may hold the database in this process with its default
    configuration, and DuckDB refuses a second handle configured otherwise.
    """
    with duckdb.connect(str(warehouse.settings.duckdb_file)) as connection:
        yield connection


def from_metricflow(warehouse: Warehouse, filters: Filters) -> dict[str, Decimal]:
    """The KPI row by `orangescrum metrics query` (mf), filters as the page sets them."""
    where = semantic.filter_constraints(
        filters.start_date, filters.end_date, filters.company_id, filters.project_id
    )
    [counts] = query_metrics(warehouse.settings, list(queries.KPI_METRICS.values()), where=where)
    [users] = query_metrics(
        warehouse.settings,
        [queries.USER_KPI[1]],
        where=[*where, semantic.known_user_constraint(queries.UNKNOWN_USER_ID)],
    )
    metrics = {**queries.KPI_METRICS, queries.USER_KPI[0]: queries.USER_KPI[1]}
    values = counts | users
    # MetricFlow leaves a metric empty when no row is selected; the page shows 0.
    return {column: Decimal(values[metric] or "0") for column, metric in metrics.items()}


@pytest.mark.parametrize("filters", CHOICES)
def test_kpis_equal_the_direct_sql_and_metricflow(
    built_warehouse: Warehouse, metric_compiler: semantic.MetricCompiler, filters: Filters
) -> None:
    with connect(built_warehouse) as connection:
        [shown] = queries.kpis(connection, filters, metric_compiler).to_dict("records")
        [direct] = connection.execute(DIRECT_SQL, filters.params()).df().to_dict("records")
    assert list(shown) == list(queries.KPI_COLUMNS)

    for column in queries.KPI_COLUMNS:
        if column in HOURS:
            # non-billable hours are hours_logged - billable_hours_logged in the metric, a sum
            # of non-billable entries in the mart: the same hours, added in another order.
            assert shown[column] == pytest.approx(direct[column], rel=1e-12, abs=1e-12), column
        else:
            assert shown[column] == direct[column], column
    assert shown["event_count"] > 0  # every choice selects activity

    metricflow = from_metricflow(built_warehouse, filters)
    for column in queries.KPI_COLUMNS:
        # MetricFlow's CSV writes the values DuckDB computed; Decimal(str()) compares them
        # as written.
        assert Decimal(str(shown[column])) == metricflow[column], column


def test_the_choices_select_different_activity(
    built_warehouse: Warehouse, metric_compiler: semantic.MetricCompiler
) -> None:
    # Otherwise the filters could be ignored and the comparisons above still pass.
    with connect(built_warehouse) as connection:
        events = {
            queries.kpis(connection, choice.values[0], metric_compiler)["event_count"].item()
            for choice in CHOICES
        }
    assert len(events) == len(CHOICES)
