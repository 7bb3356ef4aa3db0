"""The CLI as a person meets it: help, and one clear sentence when something is wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from orangescrum import REPO_ROOT
from orangescrum.core.broker import LocalKafka
from orangescrum.core.errors import OrangeScrumError


def orangescrum(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orangescrum", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def settings_env(settings) -> dict[str, str]:
    """The environment that points a CLI subprocess at a test's data dir, broker and topics."""
    return os.environ | {
        "ORANGESCRUM_DATA_DIR": str(settings.data_dir),
        "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "ORANGESCRUM_TOPIC_EVENTS": settings.topic_events,
        "ORANGESCRUM_TOPIC_DEAD_LETTER": settings.topic_dead_letter,
        "ORANGESCRUM_DBT_MANIFEST_PATH": settings.dbt_manifest_path,
    }


def json_of(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_help_lists_every_stage() -> None:
    result = orangescrum("--help")
    assert result.returncode == 0
    for command in ("demo", "simulate", "stream", "warehouse", "broker", "topics", "dbt"):
        assert command in result.stdout


def test_unreachable_broker_is_one_clear_error(tmp_path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ORANGESCRUM_DATA_DIR": str(tmp_path),
        "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "ORANGESCRUM_KAFKA_CONNECT_TIMEOUT_SECONDS": "2",
    }
    result = orangescrum("topics", "create", env=env)
    assert result.returncode == 1
    assert "No Kafka broker answered at 127.0.0.1:1 within 2s" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_broker_setting_says_how_to_get_one(tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ORANGESCRUM_DATA_DIR": str(tmp_path)}
    result = orangescrum("stream", env=env)
    assert result.returncode == 1
    assert "orangescrum broker start" in result.stderr


def test_busy_port_is_refused_before_starting(tmp_path, broker: LocalKafka) -> None:
    with pytest.raises(OrangeScrumError, match=f"Port {broker.port} is already in use"):
        LocalKafka(tmp_path / "kafka", broker.jar_cache_dir, port=broker.port)


def test_invalid_setting_names_the_variable(tmp_path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ORANGESCRUM_TOPIC_PARTITIONS": "many",
    }
    result = orangescrum("config", "show", env=env)
    assert result.returncode == 1
    assert "topic_partitions" in result.stderr


def test_missing_java_is_named_with_the_fix(monkeypatch) -> None:
    from orangescrum.core.jars import java

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(OrangeScrumError, match="openjdk-17-jre-headless"):
        java()


def test_make_refuses_a_python_that_is_not_3_11(tmp_path) -> None:
    fake_python = tmp_path / "python3"
    fake_python.write_text("#!/bin/sh\nexec /usr/bin/env python3 -c 'import sys; sys.exit(1)'\n")
    fake_python.chmod(0o755)
    result = subprocess.run(
        ["make", "setup", f"PYTHON={fake_python}", f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert result.returncode != 0
    assert "needs Python 3.11" in result.stdout + result.stderr
    assert not (tmp_path / "venv").exists()  # nothing half-made left behind


BROKEN_SCHEMA = '{"type": "record", "name": "Broken", "fields": [{"name": "no_type"}]}'


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["simulate", "history", "--days", "-1"], "'--days'"),
        (["simulate", "live", "--rate", "abc"], "'--rate'"),
        (["simulate", "history", "--late-rate", "2.0"], "'--late-rate'"),
        (["simulate", "history", "--start-date", "29/11/2026"], "'--start-date'"),
        (["broker", "start", "--port", "70000"], "'--port'"),
        (["schema", "check", "--mode", "sideways"], "'--mode'"),
        (["no-such-command"], "'no-such-command'"),
        (["schema", "check", "--candidate", "{broken}"], "broken.avsc"),
    ],
)
def test_bad_input_is_one_sentence_without_a_traceback(
    tmp_path, args: list[str], named: str
) -> None:
    broken = tmp_path / "broken.avsc"
    broken.write_text(BROKEN_SCHEMA)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ORANGESCRUM_DATA_DIR": str(tmp_path)}
    result = orangescrum(*[arg.format(broken=broken) for arg in args], env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert named in last_line


def test_a_lake_path_that_is_a_file_is_refused_by_warehouse_load(tmp_path) -> None:
    lake_file = tmp_path / "lake.parquet"
    lake_file.write_text("not a folder\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ORANGESCRUM_DATA_DIR": str(tmp_path),
        "ORANGESCRUM_LAKE_URI": str(lake_file),
    }
    result = orangescrum("warehouse", "load", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"The lake root {lake_file} is not a folder" in result.stderr.strip().splitlines()[-1]


def test_a_warehouse_held_by_another_process_is_named(tmp_path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('open', flush=True); time.sleep(60)",
            str(tmp_path / "warehouse.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "ORANGESCRUM_DATA_DIR": str(tmp_path),
        }
        result = orangescrum("warehouse", "build", env=env)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert f"(PID {holder.pid})" in last_line and "one writer" in last_line
