"""The dbt docs from inside Airflow: Cosmos' own plugin, configured by `orangescrum airflow
standalone`, links them under Browse and serves them from the local dbt target folder.

astronomer-cosmos registers its plugin as an `airflow.plugins` entry point, so Airflow always
loads it; `[cosmos] dbt_docs_projects` (AIRFLOW__COSMOS__DBT_DOCS_PROJECTS) gives it docs to
serve. The plugin and Airflow's API app are real: they run in a fresh interpreter, because
Airflow caches its plugins per process and Cosmos reads its settings when first imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orangescrum.cli.airflow import standalone_env
from orangescrum.core.settings import Settings

DOCS_PROJECTS_ENV = "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS"
PORT = 8080

# Loads the plugins as the API server does, and asks that server's app what a logged-in UI sees.
# Writes its findings to the file named by argv[1]: Airflow logs to stdout.
PROBE = """
import json, sys
from fastapi.testclient import TestClient
from airflow import plugins_manager
from airflow.api_fastapi.app import create_app

info = plugins_manager.get_plugin_info()
client = TestClient(create_app())
listed = client.get("/api/v2/plugins")
views = [view for plugin in listed.json()["plugins"] for view in plugin["external_views"]]
pages = {}
for view in views:
    href = view["href"]
    folder = href.rsplit("/", 1)[0]
    for path in (href, folder + "/manifest.json", folder + "/catalog.json"):
        response = client.get(path)
        pages[path] = {"status": response.status_code, "text": response.text}
with open(sys.argv[1], "w") as found:
    json.dump(
        {
            "loaded": {plugin["name"]: plugin["external_views"] for plugin in info},
            "import_errors": plugins_manager.get_import_errors(),
            "plugins_status": listed.status_code,
            "views": views,
            "pages": pages,
        },
        found,
    )
"""


def standalone_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "state", _env_file=None)


def docs_projects(env: dict[str, str]) -> dict[str, Any]:
    # .get, not `in env`: a failed `in` would print the whole environment into the report.
    value = env.get(DOCS_PROJECTS_ENV)
    assert value is not None, f"{DOCS_PROJECTS_ENV} is not set for Airflow"
    return json.loads(value)


def test_standalone_airflow_gives_cosmos_the_project_docs(tmp_path: Path) -> None:
    settings = standalone_settings(tmp_path)
    projects = docs_projects(standalone_env(settings, PORT))
    # Where `orangescrum dbt docs generate` writes, and what `orangescrum docs serve` reads.
    assert projects == {
        "orangescrum": {"dir": str(settings.dbt_project_dir / "target"), "name": "dbt docs"}
    }


@pytest.mark.slow  # a fresh interpreter imports Airflow and builds its API app (~10 s)
def test_airflow_links_and_serves_the_dbt_docs(tmp_path: Path) -> None:
    from dbt.task.docs import DOCS_INDEX_FILE_PATH

    # A generated docs target: dbt's index.html next to the manifest and the catalog.
    target = tmp_path / "target"
    target.mkdir()
    shutil.copyfile(DOCS_INDEX_FILE_PATH, target / "index.html")
    (target / "manifest.json").write_text('{"nodes": {"model.orangescrum.fact_activities": {}}}')
    (target / "catalog.json").write_text('{"nodes": {"model.orangescrum.dim_dates": {}}}')

    airflow_env = standalone_env(standalone_settings(tmp_path), PORT)
    projects = docs_projects(airflow_env)
    projects["orangescrum"]["dir"] = str(target)  # the repo's own target is not the test's
    env = os.environ | {  # the test session's AIRFLOW_HOME, with its migrated database
        DOCS_PROJECTS_ENV: json.dumps(projects),
        "AIRFLOW__API__BASE_URL": airflow_env["AIRFLOW__API__BASE_URL"],
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": airflow_env["AIRFLOW__COSMOS__ENABLE_TELEMETRY"],
        # /api/v2/plugins wants a logged-in user: every request is the admin here.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    }
    report = tmp_path / "found.json"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(report)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    found = json.loads(report.read_text())

    link = {
        "name": "dbt docs",
        "href": "/cosmos/orangescrum/dbt_docs_index.html",
        "category": "Browse",
    }
    assert found["import_errors"] == {}
    assert found["loaded"]["cosmos"] == [link]  # what plugins_manager loaded
    assert found["plugins_status"] == 200
    assert len(found["views"]) == 1
    view = found["views"][0]
    assert {key: view[key] for key in link} == link  # what the UI's nav is given
    assert view["destination"] == "nav"

    pages = found["pages"]
    index = pages["/cosmos/orangescrum/dbt_docs_index.html"]
    assert index["status"] == 200
    assert "<title>dbt Docs</title>" in index["text"]
    assert pages["/cosmos/orangescrum/manifest.json"]["status"] == 200
    assert "model.orangescrum.fact_activities" in pages["/cosmos/orangescrum/manifest.json"]["text"]
    assert pages["/cosmos/orangescrum/catalog.json"]["status"] == 200
    assert "model.orangescrum.dim_dates" in pages["/cosmos/orangescrum/catalog.json"]["text"]
