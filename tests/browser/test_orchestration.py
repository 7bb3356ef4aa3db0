"""Airflow's UI in Chromium: sign in, and the DAGs page lists dags/ without import errors.

Airflow is `orangescrum airflow standalone` (as the README says, and as
tests/dags/test_scheduler.py starts it): its own home under a fresh data dir, this
repository's dags/, SimpleAuthManager with the admin password it generates on first start.
conftest.airflow_boot starts it with the first test of the folder; this module's name sorts
last so the boot (`airflow db migrate`, then four components importing Airflow: over a minute
on two shared cores) overlaps the other tests.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from orangescrum.airflow_support import DAGS_FOLDER
from tests.browser.conftest import STARTUP_TIMEOUT, AirflowBoot

pytestmark = pytest.mark.slow

DAG_IDS = (
    "orangescrum_dbt",
    "orangescrum_ingest",
    "orangescrum_maintenance",
    "orangescrum_spark_batch",
)
ADMIN = "admin"
# Database migration, then four components each importing Airflow: minutes when the two
# cores are busy with other test runs.
AIRFLOW_STARTUP_TIMEOUT = 4 * STARTUP_TIMEOUT
PAGE_TIMEOUT_MS = 60_000


@dataclass
class AirflowUi:
    url: str
    password: str
    token: str = ""

    def api(self, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            method="GET" if body is None else "POST",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {self.token}"} if self.token else {}),
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def parsed_every_dag_file(self) -> bool:
        """Each file of dags/ became a DAG or an import error: the DAG processor's first pass
        is over, so the page shows its final state (not a half-parsed folder)."""
        dags = self.api("/api/v2/dags?limit=100")["total_entries"]
        errors = self.api("/api/v2/importErrors?limit=100")["total_entries"]
        return dags + errors >= len(list(DAGS_FOLDER.glob("*.py")))


def answered(probe: Any) -> bool:
    """Whether probe() gives a value yet (False while the server is not answering)."""
    try:
        return bool(probe())
    except (urllib.error.URLError, ConnectionError, TimeoutError, FileNotFoundError, KeyError):
        return False


@pytest.fixture(scope="module")
def airflow_ui(airflow_boot: AirflowBoot | None) -> AirflowUi:
    """The booting Airflow once it answers and has parsed dags/ (waits for the rest of it)."""
    assert airflow_boot is not None, "conftest.airflow_boot starts Airflow for this fixture"
    server = airflow_boot.server
    server.wait_until(
        "generated admin password",
        lambda: answered(lambda: json.loads(airflow_boot.password_file.read_text())[ADMIN]),
        AIRFLOW_STARTUP_TIMEOUT,
    )
    ui = AirflowUi(server.url, json.loads(airflow_boot.password_file.read_text())[ADMIN])
    credentials = {"username": ADMIN, "password": ui.password}
    server.wait_until(
        "API token",
        lambda: answered(lambda: ui.api("/auth/token", credentials)),
        AIRFLOW_STARTUP_TIMEOUT,
    )
    ui.token = ui.api("/auth/token", credentials)["access_token"]
    server.wait_until(
        "parse of every DAG file",
        lambda: answered(ui.parsed_every_dag_file),
        AIRFLOW_STARTUP_TIMEOUT,
    )
    return ui


def test_dags_page_lists_the_four_dags_without_import_errors(
    page: Page, airflow_ui: AirflowUi
) -> None:
    page.goto(f"{airflow_ui.url}/dags")
    # SimpleAuthManager: the UI sends a signed-out reader to its login form first.
    expect(page.get_by_text("Sign into Airflow")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(airflow_ui.password)
    # The DAGs page asks the API for import errors and shows a red badge when there are any:
    # catch that answer, so the badge's absence below is checked after the UI knew.
    with page.expect_response(
        lambda response: "/api/v2/importErrors" in response.url and response.ok,
        timeout=PAGE_TIMEOUT_MS,
    ) as import_errors:
        page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dags$"))
    assert import_errors.value.json()["total_entries"] == 0

    # Exactly this repository's DAGs: no example DAGs, none missing.
    expect(page.get_by_role("heading", name=f"{len(DAG_IDS)} Dags", exact=True)).to_be_visible(
        timeout=PAGE_TIMEOUT_MS
    )
    for dag_id in DAG_IDS:
        expect(page.get_by_role("link", name=dag_id, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Dag Import Error"))).to_have_count(0)
