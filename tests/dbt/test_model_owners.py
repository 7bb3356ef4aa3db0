"""Every model has an owner: a dbt group whose owner dbt docs shows as the model's "Owner".

Read from the manifest of a real `dbt parse`, not from the YAML: groups are assigned through
config inheritance (dbt_project.yml `+group`), which a model's own config could override.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from orangescrum.core.settings import Settings
from orangescrum.warehouse.dbt import run_dbt

pytestmark = pytest.mark.slow  # one `dbt parse` of the project (about 10 s on 2 cores)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("owners")
    target = root / "target"
    run_dbt(Settings(data_dir=root, _env_file=None), ["parse"], target_path=target, quiet=True)
    return json.loads((target / "manifest.json").read_text())


def models(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]


def test_every_model_belongs_to_a_group_with_an_owner(manifest: dict[str, Any]) -> None:
    found = models(manifest)
    assert len(found) >= 15  # staging, intermediate and marts were all parsed
    without_owner = []
    for node in found:
        group = node.get("group")
        owner = manifest["groups"].get(f"group.{node['package_name']}.{group}", {}).get("owner")
        if not group or not owner or not (owner.get("name") or owner.get("email")):
            without_owner.append(node["name"])
    assert without_owner == []


def test_the_marts_are_owned_by_analytics_engineering(manifest: dict[str, Any]) -> None:
    marts = [node for node in models(manifest) if "marts" in node["fqn"]]
    assert {node["name"] for node in marts} >= {
        "dim_users",
        "dim_projects",
        "dim_dates",
        "fact_activities",
        "agg_daily_metrics",
    }
    assert {node["group"] for node in marts} == {"analytics_engineering"}
    owner = manifest["groups"]["group.orangescrum.analytics_engineering"]["owner"]
    assert owner["name"] == "OrangeScrum Analytics maintainers"
    assert owner["email"]


def test_marts_are_public_and_the_rest_protected(manifest: dict[str, Any]) -> None:
    # The marts are the interface other projects and BI tools may build on (`public`); staging
    # and intermediate models stay `protected`: refs inside the project are allowed, and none
    # became private (which would break the exposures' and marts' refs).
    access = {node["name"]: node["access"] for node in models(manifest)}
    marts = {node["name"] for node in models(manifest) if "marts" in node["fqn"]}
    assert {access[name] for name in marts} == {"public"}
    assert {access[name] for name in access.keys() - marts} == {"protected"}
