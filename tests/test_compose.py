"""docker-compose.yml cannot start here (no Docker engine); check what can be checked."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from orangescrum import REPO_ROOT
from orangescrum.core.settings import Settings

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_the_production_like_services_are_all_there() -> None:
    assert set(COMPOSE["services"]) == {
        "kafka",
        "schema-registry",
        "kafka-ui",
        "spark-master",
        "spark-worker-1",
        "spark-worker-2",
        "postgres",
        "airflow",
        "jupyter",
    }


PUBLISH_HOST = "${ORANGESCRUM_PUBLISH_HOST:-127.0.0.1}"


def published_ports() -> list[tuple[str, str, str]]:
    """(service, host address, host port) of every published port."""
    published = []
    for name, service in COMPOSE["services"].items():
        for port in service.get("ports", []):
            address, host_port, _container_port = str(port).rsplit(":", 2)
            published.append((name, address, host_port))
    return published


def test_published_host_ports_do_not_collide() -> None:
    host_ports = [host_port for _, _, host_port in published_ports()]
    assert len(host_ports) == len(set(host_ports))


def test_every_published_port_binds_loopback_unless_overridden() -> None:
    assert published_ports()
    assert {address for _, address, _ in published_ports()} == {PUBLISH_HOST}


def test_every_service_has_a_healthcheck() -> None:
    missing = [
        name for name, service in COMPOSE["services"].items() if "healthcheck" not in service
    ]
    assert missing == []


def test_every_image_is_a_fixed_version() -> None:
    for name, service in COMPOSE["services"].items():
        _, _, tag = service["image"].rpartition(":")
        # a full version (4.4.0, 16.4, v0.7.2, spark-4.2.0), never latest or a bare major
        assert re.search(r"\d+\.\d+", tag), f"{name}: {service['image']}"


def test_no_password_or_token_is_written_in_the_file() -> None:
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    for name, service in COMPOSE["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|TOKEN|SECRET", variable):
                assert str(value).startswith("${") and ":?" in str(value), f"{name}: {variable}"
    # credentials inside URLs come from .env too
    for user_info in re.findall(r"://([^/@\s]+)@", text):
        assert ":${" in user_info, user_info


def test_every_orangescrum_variable_is_a_real_setting() -> None:
    fields = {f"ORANGESCRUM_{name.upper()}" for name in Settings.model_fields}
    for service in COMPOSE["services"].values():
        for name in service.get("environment", {}) or {}:
            if name.startswith("ORANGESCRUM_"):
                assert name in fields, f"{name} is not a setting"


def test_depends_on_names_existing_services() -> None:
    for service in COMPOSE["services"].values():
        assert set(service.get("depends_on", [])) <= set(COMPOSE["services"])


def test_mounted_paths_exist_in_the_repo() -> None:
    airflow = COMPOSE["services"]["airflow"]["environment"]
    dags = Path(
        airflow["AIRFLOW__CORE__DAGS_FOLDER"].replace("/opt/orangescrum/app", str(REPO_ROOT))
    )
    assert dags.is_dir()


def test_images_run_the_versions_the_project_pins() -> None:
    from orangescrum.core.jars import KAFKA_VERSION, spark_version

    services = COMPOSE["services"]
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    for name in ("spark-master", "spark-worker-1", "spark-worker-2"):
        assert services[name]["image"] == f"apache/spark:{spark_version()}-python3"
    assert services["jupyter"]["image"].endswith(f"spark-{spark_version()}")
