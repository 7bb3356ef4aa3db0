"""Settings: defaults for the embedded stack, env overrides, derived locations."""

from __future__ import annotations

import pytest

from orangescrum import REPO_ROOT
from orangescrum.settings import Settings, env_example


def test_env_example_lists_every_setting_with_its_default() -> None:
    assert (REPO_ROOT / ".env.example").read_text() == env_example()


def test_local_defaults_derive_from_the_data_dir(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    assert settings.raw_events_path == f"{tmp_path}/lake/raw/events"
    assert settings.dead_letter_path == f"{tmp_path}/lake/raw/_dead_letter"
    assert settings.duckdb_file == tmp_path / "warehouse.duckdb"
    assert settings.checkpoint_root == f"{tmp_path}/checkpoints"
    assert settings.lake_is_local


def test_production_values_come_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ORANGESCRUM_LAKE_URI", "gs://acme-lake/orangescrum/")
    monkeypatch.setenv("ORANGESCRUM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ORANGESCRUM_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("ORANGESCRUM_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("ORANGESCRUM_DBT_TARGET", "prod")
    settings = Settings(data_dir=tmp_path, _env_file=None)
    assert settings.raw_events_path == "gs://acme-lake/orangescrum/raw/events"
    assert not settings.lake_is_local
    assert settings.kafka_client_config()["sasl.password"] == "s3cret"
    assert "s3cret" not in repr(settings)  # secrets never reach logs
    assert settings.dbt_env()["ORANGESCRUM_DBT_TARGET"] == "prod"


def test_invalid_values_are_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="topic_partitions"):
        Settings(data_dir=tmp_path, topic_partitions=0, _env_file=None)
