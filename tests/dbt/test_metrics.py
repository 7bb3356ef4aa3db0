"""The semantic layer: MetricFlow's numbers equal direct SQL on the marts of the fixture lake."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest

from orangescrum.warehouse.metrics import query_metrics, run_metricflow
from tests.dbt.conftest import Warehouse

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

FACT = "orangescrum_dw_marts.fact_activities"
# Each `mf query` is a MetricFlow process of about 5 s of CPU, most of it imports: the tests
# that compare metrics of the same grain with the same (no) filters read one query's rows
# (MetricFlow computes each metric of a query on its own, then joins them on the grain).
DAILY_COUNTS = ("events", "tasks_created", "tasks_closed", "comments", "hours_logged")
APPROVAL_HOURS = ("hours_logged", "hours_approved", "hours_rejected", "hours_pending")


def by_period(rows: list[dict[str, str]], period: str, metric: str) -> dict[str, Decimal]:
    """{period start as YYYY-MM-DD: value} from `mf query` rows (MetricFlow writes timestamps)."""
    return {row[period][:10]: Decimal(row[metric] or "0") for row in rows}


@pytest.fixture(scope="module")
def daily_rows(built_warehouse: Warehouse) -> list[dict[str, str]]:
    """`mf query` of the day-grain metrics two tests check, by day."""
    return query_metrics(
        built_warehouse.settings, ["active_users", *DAILY_COUNTS], ["metric_time__day"]
    )


@pytest.fixture(scope="module")
def overall_row(built_warehouse: Warehouse) -> dict[str, str]:
    """`mf query` of the metrics two tests check over the whole history (no grain)."""
    [row] = query_metrics(built_warehouse.settings, ["median_cycle_time_hours", *APPROVAL_HOURS])
    return row


def test_definitions_validate_against_the_warehouse(built_warehouse: Warehouse) -> None:
    result = run_metricflow(built_warehouse.settings, ["validate-configs"], capture=True)
    output = result.stdout + result.stderr
    assert "Successfully validated metrics against data warehouse (ERRORS: 0" in output


def test_active_users_are_distinct_at_every_grain(
    built_warehouse: Warehouse, daily_rows: list[dict[str, str]]
) -> None:
    expected_daily = {
        day.isoformat(): Decimal(users)
        for day, users in built_warehouse.query(
            f"select activity_date, count(distinct user_id) from {FACT} group by 1"
        )
    }
    assert by_period(daily_rows, "metric_time__day", "active_users") == expected_daily

    weekly = query_metrics(
        built_warehouse.settings,
        ["active_users"],
        ["metric_time__week"],
    )
    [(week_start, week_users)] = built_warehouse.query(
        f"select date_trunc('week', activity_date), count(distinct user_id) from {FACT} group by 1"
    )
    assert by_period(weekly, "metric_time__week", "active_users") == {
        str(week_start)[:10]: Decimal(week_users)
    }
    # The trap the metric exists for: the mart's per-project distinct counts summed over the
    # week overcount the week's users.
    [(summed,)] = built_warehouse.query(
        "select sum(active_user_count) from orangescrum_dw_marts.agg_daily_metrics"
    )
    assert summed > week_users


def test_company_day_mart_equals_the_active_users_metric(built_warehouse: Warehouse) -> None:
    # For BI tools without the semantic layer: the mart's company-day distinct users are the
    # metric's, and a day's users are the sum over its companies.
    rows = query_metrics(
        built_warehouse.settings,
        ["active_users"],
        ["metric_time__day", "company"],
        where=["{{ Entity('user') }} <> -1"],
    )
    from_metric = {
        (row["metric_time__day"][:10], int(row["company"])): int(row["active_users"])
        for row in rows
    }
    from_mart = {
        (day.isoformat(), company): users
        for day, company, users in built_warehouse.query(
            "select activity_date, company_id, active_user_count "
            "from orangescrum_dw_marts.agg_daily_company_metrics"
        )
    }
    assert from_mart == from_metric
    assert len(from_mart) > 3
    day_totals = built_warehouse.query(
        f"""
        select activity_date, count(distinct user_id) from {FACT}
        where user_id <> -1 group by 1
        except
        select activity_date, sum(active_user_count)
        from orangescrum_dw_marts.agg_daily_company_metrics group by 1
        """
    )
    assert day_totals == []


def test_counts_hours_and_cycle_time_equal_sql_on_the_marts(
    built_warehouse: Warehouse, daily_rows: list[dict[str, str]], overall_row: dict[str, str]
) -> None:
    got = {metric: by_period(daily_rows, "metric_time__day", metric) for metric in DAILY_COUNTS}
    expected: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for day, events, created, closed, comments, hours in built_warehouse.query(
        """
        select
            activity_date,
            sum(event_count),
            sum(tasks_created_count),
            sum(tasks_closed_count),
            sum(comment_count),
            sum(billable_hours_logged + non_billable_hours_logged)
        from orangescrum_dw_marts.agg_daily_metrics
        group by activity_date
        """
    ):
        values = (events, created, closed, comments, hours)
        for metric, value in zip(DAILY_COUNTS, values, strict=True):
            expected[metric][day.isoformat()] = Decimal(str(value))
    assert got == dict(expected)

    [(median,)] = built_warehouse.query(
        "select median(cycle_time_hours) from orangescrum_dw_intermediate.int_tasks_cycle_times"
    )
    assert Decimal(overall_row["median_cycle_time_hours"]) == Decimal(str(median))


def test_hours_by_approval_equal_sql_on_the_time_entries(
    built_warehouse: Warehouse, overall_row: dict[str, str]
) -> None:
    row = overall_row
    [(approved, rejected, pending)] = built_warehouse.query(
        """
        select
            sum(case when approval_status = 'approved' then logged_hours else 0 end),
            sum(case when approval_status = 'rejected' then logged_hours else 0 end),
            sum(case when approval_status = 'pending' then logged_hours else 0 end)
        from orangescrum_dw_marts.fact_time_entries
        """
    )
    # the fixture: 7001 (2 h) approved, 7000 (1.5 h) and 7002 (0.5 h) pending
    assert (approved, rejected, pending) == (2.0, 0.0, 2.0)
    assert Decimal(row["hours_approved"]) == Decimal("2")
    assert Decimal(row["hours_rejected"] or "0") == Decimal("0")
    assert Decimal(row["hours_pending"]) == Decimal("2")
    # every logged hour is in exactly one approval state
    assert Decimal(row["hours_logged"]) == Decimal(row["hours_approved"]) + Decimal(
        row["hours_pending"]
    )
