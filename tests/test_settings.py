"""Settings: defaults for the local stack, env overrides, derived locations."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from orangescrum import REPO_ROOT
from orangescrum.core.apicurio.server import JVM_OPTIONS as REGISTRY_JVM_OPTIONS
from orangescrum.core.apicurio.server import LocalSchemaRegistry
from orangescrum.core.broker import JVM_OPTIONS as BROKER_JVM_OPTIONS
from orangescrum.core.broker import LocalKafka
from orangescrum.core.connect import JVM_OPTIONS as CONNECT_JVM_OPTIONS
from orangescrum.core.connect import LocalConnect
from orangescrum.core.settings import Settings, env_example
from spark.cluster import LocalSparkCluster
from spark.session import driver_java_options


def test_env_example_lists_every_setting_with_its_default() -> None:
    assert (REPO_ROOT / ".env.example").read_text() == env_example()


def test_local_defaults_derive_from_the_data_dir(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    assert settings.lake.raw_events == f"{tmp_path}/lake/raw/events"
    assert settings.lake.dead_letters == f"{tmp_path}/lake/raw/_dead_letter"
    assert settings.duckdb_file == tmp_path / "warehouse.duckdb"
    assert settings.checkpoint_root == f"{tmp_path}/checkpoints"
    assert settings.lake.is_local


def test_production_values_come_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ORANGESCRUM_LAKE_URI", "gs://acme-lake/orangescrum/")
    monkeypatch.setenv("ORANGESCRUM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ORANGESCRUM_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("ORANGESCRUM_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("ORANGESCRUM_DBT_TARGET", "prod")
    settings = Settings(data_dir=tmp_path, _env_file=None)
    assert settings.lake.raw_events == "gs://acme-lake/orangescrum/raw/events"
    assert not settings.lake.is_local
    assert settings.kafka_client_config()["sasl.password"] == "s3cret"  # pragma: allowlist secret
    assert "s3cret" not in repr(settings)  # secrets never reach logs
    assert settings.dbt_env()["ORANGESCRUM_DBT_TARGET"] == "prod"


def test_dbt_gets_every_lake_zone_from_the_layout(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, lake_uri="gs://acme-lake/os", _env_file=None)
    env = settings.dbt_env()
    assert env["ORANGESCRUM_LAKE_RAW_EVENTS"] == "gs://acme-lake/os/raw/events"
    assert env["ORANGESCRUM_LAKE_PROCESSED_EVENTS"] == "gs://acme-lake/os/processed/events"
    assert env["ORANGESCRUM_LAKE_DEAD_LETTERS"] == "gs://acme-lake/os/raw/_dead_letter"
    assert env["ORANGESCRUM_LAKE_METRICS"] == "gs://acme-lake/os/raw/metrics"
    project = (REPO_ROOT / "dbt_project" / "dbt_project.yml").read_text()
    for name in settings.lake.dbt_vars():  # dbt_project.yml maps each variable to its var
        assert f"{name}: \"{{{{ env_var('ORANGESCRUM_{name.upper()}', '') }}}}\"" in project


def test_invalid_values_are_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="topic_partitions"):
        Settings(data_dir=tmp_path, topic_partitions=0, _env_file=None)


def test_jvm_options_follow_the_built_in_ones_of_every_jvm_started(tmp_path) -> None:
    # The last of a JVM option wins, so the user's come after each launcher's own; a quoted
    # option stays one argument.
    settings = Settings(
        data_dir=tmp_path, jvm_options="-XX:TieredStopAtLevel=1 '-Dnote=a b'", _env_file=None
    )
    extra = ["-XX:TieredStopAtLevel=1", "-Dnote=a b"]
    assert list(settings.jvm_arguments) == extra

    commands = [
        (
            BROKER_JVM_OPTIONS,
            LocalKafka.from_settings(settings, tmp_path / "kafka").command("java", "cp"),
        ),
        (
            REGISTRY_JVM_OPTIONS,
            LocalSchemaRegistry.from_settings(settings).command("java", Path("r.jar")),
        ),
        (CONNECT_JVM_OPTIONS, LocalConnect(settings).command("java", "cp")),
    ]
    for built_in, command in commands:
        assert command[: 1 + len(built_in) + len(extra)] == ["java", *built_in, *extra]
    for long_running in (False, True):
        driver = shlex.split(driver_java_options(long_running=long_running, extra=extra))
        assert driver[-len(extra) :] == extra and len(driver) > len(extra)
    # Spark's launcher splits SPARK_DAEMON_JAVA_OPTS like a shell for the master and workers.
    daemons = LocalSparkCluster.from_settings(settings).environment()["SPARK_DAEMON_JAVA_OPTS"]
    assert shlex.split(daemons)[-len(extra) :] == extra

    with pytest.raises(ValueError, match="jvm_options"):
        Settings(data_dir=tmp_path, jvm_options="-Dnote='unclosed", _env_file=None)


def test_config_show_prints_values_in_effect(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orangescrum", "config", "show"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ORANGESCRUM_DATA_DIR": str(tmp_path)},
    )
    shown = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert shown["ORANGESCRUM_DUCKDB_PATH"] == str(tmp_path / "warehouse.duckdb")
    assert shown["ORANGESCRUM_LAKE_URI"] == str(tmp_path / "lake")
    assert shown["ORANGESCRUM_CHECKPOINT_DIR"] == str(tmp_path / "checkpoints")
    assert shown["ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS"].startswith("(none: ")
    assert shown["ORANGESCRUM_DASHBOARD_PORT"] == "8501"
    # config show and .env.example name the same settings.
    example = [line.split("=")[0] for line in env_example().splitlines() if "=" in line]
    assert list(shown) == [name for name in example if not name.startswith("#")]


def test_every_variable_the_cli_advertises_is_a_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orangescrum", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )
    advertised = set(re.findall(r"ORANGESCRUM_[A-Z_]+", result.stdout))
    assert advertised >= {"ORANGESCRUM_LOG_LEVEL", "ORANGESCRUM_LOG_FORMAT"}
    for variable in advertised:
        assert variable.removeprefix("ORANGESCRUM_").lower() in Settings.model_fields
