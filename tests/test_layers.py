"""Dependencies point one way (entry points -> stages -> base), as pyproject.toml declares."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from orangescrum import REPO_ROOT


def importlinter_config() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def layered_modules() -> set[str]:
    (layers,) = [c for c in importlinter_config()["contracts"] if c["type"] == "layers"]
    return {module.strip() for layer in layers["layers"] for module in layer.split("|")}


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_every_package_of_the_project_sits_in_a_layer() -> None:
    # A new module outside every layer would escape the contract without anyone noticing.
    package = REPO_ROOT / "orangescrum"
    children = {
        f"orangescrum.{path.stem}"
        for path in package.iterdir()
        if (path.suffix == ".py" and path.stem not in {"__init__", "__main__"})
        or (path / "__init__.py").is_file()
    }
    assert children - layered_modules() == set()
    assert {"ingestion", "spark"} <= layered_modules()


def test_the_base_imports_nothing_heavy() -> None:
    # What the forbidden contract promises, observed: settings + lake layout load without
    # pyspark, Airflow or dbt (the maintenance CLI and DAG start in a second).
    probe = (
        "import sys, orangescrum.core.settings, orangescrum.core.lake, orangescrum.maintenance, "
        "orangescrum.warehouse.load; "
        "print(sorted(m for m in ('pyspark', 'airflow', 'cosmos') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
