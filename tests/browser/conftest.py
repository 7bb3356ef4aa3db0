"""Browser tests: the served sites (dbt docs, the dashboard, Airflow) seen through Chromium.

Playwright's sync API drives Debian's Chromium (/usr/bin/chromium, installed by `make setup`
as root): playwright's own browser download needs hosts this project does not rely on. Every
test leaves a full-page screenshot in test-artifacts/screenshots/<test name>.png, passed or
failed, for a person to look at what the assertions saw.

The servers are started with the `orangescrum` command, as a user would, on free loopback
ports, and shared: each costs seconds to start on two cores (Airflow over a minute). Fixtures
are package-scoped, so the browser, the warehouse and every server are gone once the last
test of this folder has run, not kept through the rest of the suite.

Airflow boots in the background from the first test of the folder on (`airflow_boot`); its
test module, test_orchestration.py, sorts last (pytest runs files in name order), so the boot
overlaps the dashboard and docs tests instead of adding to them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from orangescrum import REPO_ROOT
from orangescrum.core.processes import HOST, free_port
from tests.dbt.conftest import Warehouse, new_warehouse
from tests.dbt.lake import write_lake

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_MISSING = "Chromium is missing: run `make setup` as root or apt-get install chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root in CI containers, where the sandbox cannot start
    "--disable-gpu",
    # Without these Chromium keeps calling home (updates, sync, QUIC probes): on a closed
    # network that is a flood of refused connections, and noise in every network log.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
ORANGESCRUM = Path(sys.executable).with_name("orangescrum")
VIEWPORT = {"width": 1440, "height": 1000}
MAX_HEIGHT = 6000  # px of a screenshot
# Height of the page's content, scrolled containers included.
TALLEST_CONTENT = """() => Math.max(
    document.documentElement.scrollHeight,
    ...[...document.querySelectorAll('*')]
        .filter((e) => ['auto', 'scroll'].includes(getComputedStyle(e).overflowY))
        .map((e) => Math.ceil(e.getBoundingClientRect().top + e.scrollHeight)),
)"""
# Generous: the machine is two cores shared with other test runs.
STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0


# --- the browser --------------------------------------------------------------------------------
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="package", autouse=True)
def chromium() -> Path:
    """Checked first (autouse): without a browser no server is worth starting."""
    if not CHROMIUM.is_file():
        # A failure, not a skip: CI installs Chromium, so its absence is a broken set-up.
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="package")
def browser(playwright: Playwright, chromium: Path) -> Iterator[Browser]:
    launched = playwright.chromium.launch(
        executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


def screenshot_path(test_name: str) -> Path:
    # Parametrized names carry brackets and ids: keep file names portable.
    return SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', test_name).strip('_')}.png"


@dataclass
class ScreenshotOptions:
    """How the test's screenshot is taken; a test changes it through the fixture."""

    # Grow the window to the content first (see save_full_page). Off for a page whose
    # subject is a full-window overlay, which growing would only stretch.
    grow_to_content: bool = True


def save_full_page(page: Page, path: Path, options: ScreenshotOptions) -> None:
    """A screenshot of the whole page, including what an inner scroll container hides.

    Streamlit and the dbt docs scroll a container, not the document, so Playwright's
    full_page alone stops at the viewport: the viewport is first grown to the tallest
    scrolled content (capped, a screenshot is for people).
    """
    height = page.evaluate(TALLEST_CONTENT) if options.grow_to_content else 0
    if height > VIEWPORT["height"]:
        page.set_viewport_size({"width": VIEWPORT["width"], "height": min(height, MAX_HEIGHT)})
        # Let charts re-layout to the new size; this only affects the picture.
        page.wait_for_timeout(500)
    page.screenshot(path=path, full_page=True)


@pytest.fixture
def screenshot_options() -> ScreenshotOptions:
    return ScreenshotOptions()


@pytest.fixture
def page(
    browser: Browser, screenshot_options: ScreenshotOptions, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh browser context per test; its full-page screenshot is saved after the test,
    passed or failed."""
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    try:
        yield opened
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        try:
            save_full_page(opened, screenshot_path(request.node.name), screenshot_options)
        finally:
            context.close()


# --- servers ------------------------------------------------------------------------------------
class Server:
    """An `orangescrum ...` command serving HTTP on a free port.

    In a session of its own: a Ctrl-C in the terminal reaches pytest only, whose teardown
    then stops the server in order, instead of every server dying half-way at once.
    """

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log = log
        with log.open("w") as output:
            self.process = subprocess.Popen(
                [str(ORANGESCRUM), *args, "--port", str(self.port)],
                env=inherited_environment() | env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_until(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.process.poll() is None, f"{self.name} exited:\n{self.output()}"
            assert time.monotonic() < deadline, (
                f"{self.name}: no {what} after {timeout:.0f}s:\n{self.output()}"
            )
            time.sleep(0.5)

    def wait_for_http(self, path: str = "/", timeout: float = STARTUP_TIMEOUT) -> None:
        self.wait_until(f"HTTP 200 on {path}", lambda: http_ok(self.url + path), timeout)

    def stop(self) -> None:
        """SIGTERM the command (each stops its own children: Streamlit, Airflow's
        components), then kill whatever of its process tree, as it was before, is left."""
        try:
            group = [self.process, *psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            group = []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _, alive = psutil.wait_procs([p for p in group if p.pid != self.process.pid], timeout=10)
        for leftover in alive:
            leftover.kill()


def inherited_environment() -> dict[str, str]:
    """This process's environment minus Airflow's settings.

    tests/dags/conftest.py points AIRFLOW_HOME at its own folder when the whole suite runs
    (and a developer may export AIRFLOW__*): a server started here gets only its own.
    """
    return {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture(scope="package")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


# --- data ---------------------------------------------------------------------------------------
@pytest.fixture(scope="package")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """tests/dbt's hand-written lake, its marts built (`dbt run`) and its docs catalog.

    `dbt run`, not `build`: the data tests and unit tests are tests/dbt's business; these
    tests only need the tables and the catalog. dbt runs in this process and releases the
    DuckDB file after each command, so the dashboard's process can open it.
    """
    warehouse = new_warehouse(tmp_path_factory.mktemp("browser-warehouse"))
    write_lake(warehouse.lake_root)
    warehouse.dbt("run-operation", "create_raw_events")
    warehouse.dbt("run")
    warehouse.dbt("docs", "generate")
    return warehouse


# --- Airflow, booting while the other tests run -------------------------------------------------
@dataclass(frozen=True)
class AirflowBoot:
    """`orangescrum airflow standalone`, started; test_orchestration.py waits for it."""

    server: Server
    data_dir: Path

    @property
    def password_file(self) -> Path:
        return self.data_dir / "airflow" / "simple_auth_manager_passwords.json.generated"


@pytest.fixture(scope="package", autouse=True)
def airflow_boot(
    chromium: Path,  # requested so that a missing browser fails before Airflow starts
    request: pytest.FixtureRequest,
    built_warehouse: Warehouse,
    tmp_path_factory: pytest.TempPathFactory,
    server_logs: Path,
) -> Iterator[AirflowBoot | None]:
    """Start Airflow now when a selected test needs it (else nothing); stop it at the end.

    Its own data dir (home, lake, warehouse), this repository's dags/, and the manifest
    `dbt docs generate` wrote for the docs test: the same project parsed, no second parse.
    """
    if not any("airflow_ui" in item.fixturenames for item in request.session.items):
        yield None
        return
    data_dir = tmp_path_factory.mktemp("airflow-state")
    server = Server(
        "orangescrum airflow standalone",
        ["airflow", "standalone"],
        {
            "ORANGESCRUM_DATA_DIR": str(data_dir),
            "ORANGESCRUM_DBT_MANIFEST_PATH": str(built_warehouse.target_path / "manifest.json"),
            # Airflow's log-server ports default to 8793/8794: keep parallel runs apart.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        },
        server_logs / "airflow.log",
    )
    try:
        yield AirflowBoot(server, data_dir)
    finally:
        server.stop()
