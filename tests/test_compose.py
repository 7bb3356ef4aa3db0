"""docker-compose.yml cannot start here (no Docker engine); check what can be checked."""

from __future__ import annotations

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


def test_published_host_ports_do_not_collide() -> None:
    host_ports = [
        str(port).split(":")[0]
        for service in COMPOSE["services"].values()
        for port in service.get("ports", [])
    ]
    assert len(host_ports) == len(set(host_ports))


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
