"""`orangescrum airflow manifest | standalone` through the typer sub-app."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from typer.testing import CliRunner

from orangescrum.cli.airflow import HOST, airflow_app, standalone_env
from orangescrum.core.settings import Settings


def test_manifest_command_wrote_a_manifest_of_the_project(manifest: Path) -> None:
    # The session `manifest` fixture ran `orangescrum airflow manifest`.
    document = json.loads(manifest.read_text())
    assert document["metadata"]["project_name"] == "orangescrum"
    models = {n["name"] for n in document["nodes"].values() if n["resource_type"] == "model"}
    assert {"stg_orangescrum__events", "fact_activities", "dim_users"} <= models


def test_standalone_without_manifest_says_how_to_build_it(monkeypatch, tmp_path) -> None:
    missing = tmp_path / "manifest.json"
    monkeypatch.setenv("ORANGESCRUM_DBT_MANIFEST_PATH", str(missing))
    monkeypatch.setenv("ORANGESCRUM_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(airflow_app, ["standalone"])
    assert result.exit_code != 0
    assert "orangescrum airflow manifest" in str(result.exception)
    assert not (tmp_path / "airflow").exists()


def test_standalone_refuses_a_busy_port(monkeypatch, tmp_path, manifest) -> None:
    monkeypatch.setenv("ORANGESCRUM_DBT_MANIFEST_PATH", str(manifest))
    monkeypatch.setenv("ORANGESCRUM_DATA_DIR", str(tmp_path))
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(airflow_app, ["standalone", "--port", str(port)])
    assert result.exit_code != 0
    assert f"Port {port} on {HOST} is already in use" in str(result.exception)


def test_standalone_environment_is_local_private_and_offline(tmp_path) -> None:
    env = standalone_env(Settings(data_dir=tmp_path, _env_file=None), 8081)
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert Path(env["AIRFLOW__CORE__DAGS_FOLDER"]).name == "dags"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] == "False"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8081/execution/"
    assert env["ORANGESCRUM_DATA_DIR"] == str(tmp_path)
