"""`orangescrum dashboard` in Chromium: the KPIs it shows, and its "Pipeline health" page.

The KPIs are read off the page for two filter choices made with the page's own widgets (all
data; then company 1, project Website and two days picked in the calendar) and compared with
the same figures computed here by SQL on the marts (DuckDB, read-only), formatted as the page
promises (thousands separators, hours to one decimal). The health page is compared with the
known run of tests/test_health.py, whose every file is written by hand.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from playwright.sync_api import Locator, Page, expect

from orangescrum.core.settings import Settings
from tests.browser.conftest import Server
from tests.dbt.conftest import Warehouse
from tests.test_health import (
    DBT_FAILURES,
    DEAD_LETTERS,
    METRICS,
    KnownRun,
    known_settings,
    write_known_run,
)

pytestmark = pytest.mark.slow

MARTS = "orangescrum_dw_marts"
UNKNOWN_USER_ID = -1  # dim_users' unknown member: an event without a known actor, no user
# A narrower choice inside tests/dbt/lake.py's week (Mon 2024-03-04 to Fri 03-08): Tuesday and
# Wednesday of project 100 "Website" of company 1.
COMPANY_ID = 1
PROJECT = "Website"
START, END = dt.date(2024, 3, 5), dt.date(2024, 3, 6)
PAGE_TIMEOUT_MS = 60_000  # a Streamlit rerun on two busy cores


@pytest.fixture(scope="module")
def known_run(tmp_path_factory: pytest.TempPathFactory) -> KnownRun:
    """The known run of tests/test_health.py: lake, dead letters, metrics, dbt run results."""
    root = tmp_path_factory.mktemp("known-run")
    return write_known_run(known_settings(Settings(data_dir=root / "state", _env_file=None), root))


@pytest.fixture(scope="module")
def dashboard(
    built_warehouse: Warehouse, known_run: KnownRun, server_logs: Path
) -> Iterator[Server]:
    """`orangescrum dashboard`: its Activity page on the dbt-built marts, its Pipeline health
    page on the known run.

    One server for both pages (a Streamlit start costs seconds here): the data dir is the known
    run's (lake, dead letters, metrics; run results next to its manifest path) and
    ORANGESCRUM_DUCKDB_PATH the built marts. The known run's own warehouse holds only
    fact_activities, which `orangescrum dashboard` rightly refuses to serve.
    """
    server = Server(
        "orangescrum dashboard",
        ["dashboard"],
        {
            "ORANGESCRUM_DATA_DIR": str(known_run.settings.data_dir),
            "ORANGESCRUM_DBT_MANIFEST_PATH": known_run.settings.dbt_manifest_path,
            "ORANGESCRUM_DUCKDB_PATH": str(built_warehouse.settings.duckdb_file),
        },
        server_logs / "dashboard.log",
    )
    try:
        server.wait_for_http("/_stcore/health")  # Streamlit's own: up once it takes sessions
        yield server
    finally:
        server.stop()


# --- the figures, by SQL ------------------------------------------------------------------------
def kpis_by_sql(
    warehouse: Path,
    *,
    dates: tuple[dt.date, dt.date] | None = None,
    company_id: int | None = None,
    project_name: str | None = None,
) -> dict[str, str]:
    """The six KPIs straight from the marts, as the page formats them."""
    conditions, params = ["true"], []
    if dates:
        conditions.append("activity_date between ? and ?")
        params += list(dates)
    if company_id is not None:
        conditions.append("company_id = ?")
        params.append(company_id)
    if project_name is not None:
        conditions.append(
            f"project_id in (select project_id from {MARTS}.dim_projects where project_name = ?)"
        )
        params.append(project_name)
    where = " and ".join(conditions)
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        events, created, closed, billable, non_billable = connection.execute(
            "select coalesce(sum(event_count), 0), coalesce(sum(tasks_created_count), 0), "
            "coalesce(sum(tasks_closed_count), 0), coalesce(sum(billable_hours_logged), 0), "
            "coalesce(sum(non_billable_hours_logged), 0) "
            f"from {MARTS}.agg_daily_metrics where {where}",
            params,
        ).fetchone()
        (users,) = connection.execute(
            f"select count(distinct user_id) from {MARTS}.fact_activities "
            f"where {where} and user_id <> {UNKNOWN_USER_ID}",
            params,
        ).fetchone()
    return {
        "Events": f"{events:,}",
        "Active users": f"{users:,}",
        "Tasks created": f"{created:,}",
        "Tasks closed": f"{closed:,}",
        "Billable hours": f"{billable:,.1f}",
        "Non-billable hours": f"{non_billable:,.1f}",
    }


# --- the page -----------------------------------------------------------------------------------
def metric_value(page: Page, label: str) -> Locator:
    label_element = page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
    return page.get_by_test_id("stMetric").filter(has=label_element).get_by_test_id("stMetricValue")


def shown_metrics(page: Page) -> dict[str, str]:
    return {
        metric.get_by_test_id("stMetricLabel").inner_text(): metric.get_by_test_id(
            "stMetricValue"
        ).inner_text()
        for metric in page.get_by_test_id("stMetric").all()
    }


def expect_metrics(page: Page, expected: dict[str, str]) -> None:
    """Wait until the page shows `expected` and has finished its rerun, then read it whole.

    Streamlit keeps the previous run's elements on screen (marked stale) while it reruns:
    the waits retry until each value is the expected one, the final read proves every metric
    of the finished run is.
    """
    for label, value in expected.items():
        expect(metric_value(page, label)).to_have_text(value, timeout=PAGE_TIMEOUT_MS)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=PAGE_TIMEOUT_MS)
    expect(page.locator("[data-stale='true']")).to_have_count(0, timeout=PAGE_TIMEOUT_MS)
    assert shown_metrics(page) == expected


def choose(page: Page, selectbox_label: str, option: str) -> None:
    label = page.get_by_test_id("stWidgetLabel").get_by_text(selectbox_label, exact=True)
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def pick_dates(page: Page, start: dt.date, end: dt.date) -> None:
    """Both ends of the range in the date input's calendar, as a person picks them."""
    page.get_by_test_id("stSidebar").get_by_role("button", name="Choose date range").click()
    calendar = page.get_by_role("grid")
    for day in (start, end):
        # Day buttons are named like "Tuesday, March 5, 2024 selected".
        name = re.compile(rf"\b{day:%B} {day.day}, {day.year}\b")
        calendar.get_by_role("button", name=name).click()


def test_kpis_equal_the_marts_for_two_filter_choices(
    page: Page, dashboard: Server, built_warehouse: Warehouse
) -> None:
    warehouse = built_warehouse.settings.duckdb_file
    everything = kpis_by_sql(warehouse)
    narrower = kpis_by_sql(
        warehouse, dates=(START, END), company_id=COMPANY_ID, project_name=PROJECT
    )
    # The second choice must show other numbers, or the test could not see the filters work.
    assert narrower["Events"] != everything["Events"]

    page.goto(dashboard.url)
    expect(page.get_by_role("heading", name="OrangeScrum activity")).to_be_visible(
        timeout=PAGE_TIMEOUT_MS
    )
    expect_metrics(page, everything)

    choose(page, "Company", f"Company {COMPANY_ID}")
    choose(page, "Project", PROJECT)
    pick_dates(page, START, END)
    # The caption names the range the run used: this run has the new dates.
    expect(page.get_by_test_id("stCaptionContainer").first).to_contain_text(
        f"{START:%Y-%m-%d} to {END:%Y-%m-%d}", timeout=PAGE_TIMEOUT_MS
    )
    expect_metrics(page, narrower)


def dataframe_rows(frame: Locator) -> list[list[str]]:
    """Body rows of a st.dataframe, from the accessible table behind its canvas grid."""
    return [row.locator("td").all_inner_texts() for row in frame.locator("table tbody tr").all()]


def test_health_page_shows_the_known_run(page: Page, dashboard: Server) -> None:
    reasons: dict[str, int] = {}
    for rows in DEAD_LETTERS.values():
        for row in rows:
            reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
    expected = {
        "Consumer lag": f"{METRICS[-1]['lag_total']:,}",  # after the last micro-batch
        "Micro-batches": f"{len(METRICS):,}",
        "Dead letters": f"{sum(reasons.values()):,}",
        "Last dbt run": f"{len(DBT_FAILURES)} failed",
    }
    assert expected == {
        "Consumer lag": "0",
        "Micro-batches": "3",
        "Dead letters": "4",
        "Last dbt run": "3 failed",
    }

    page.goto(dashboard.url)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Pipeline health").click()
    expect(page).to_have_url(re.compile(r"/health$"), timeout=PAGE_TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Pipeline health")).to_be_visible(
        timeout=PAGE_TIMEOUT_MS
    )
    for label, value in expected.items():
        expect(metric_value(page, label)).to_have_text(value, timeout=PAGE_TIMEOUT_MS)
    expect(page.get_by_test_id("stAlertContentError")).to_have_text(
        f"{len(DBT_FAILURES)} node(s) did not pass."
    )
    # Dead letters by reason: the first table on the page, most frequent reason first.
    by_reason = page.get_by_test_id("stDataFrame").first
    expect(by_reason.locator("table tbody tr")).to_have_count(len(reasons))
    assert dataframe_rows(by_reason) == [
        [reason, str(count)]
        for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    ]
