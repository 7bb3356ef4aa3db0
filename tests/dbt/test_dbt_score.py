"""dbt-score: the project's model metadata meets the thresholds in pyproject.toml."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orangescrum import REPO_ROOT
from tests.dbt.conftest import new_warehouse

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_every_model_scores_above_the_configured_thresholds(tmp_path: Path) -> None:
    warehouse = new_warehouse(tmp_path)
    warehouse.dbt("parse")
    dbt_score = Path(sys.executable).parent / "dbt-score"
    result = subprocess.run(
        [
            str(dbt_score),
            "lint",
            "--manifest",
            str(warehouse.target_path / "manifest.json"),
            "--format",
            "json",
        ],
        cwd=REPO_ROOT,  # where [tool.dbt-score] (thresholds, disabled rules) is read from
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)
    models = {
        name: evaluable
        for name, evaluable in report["evaluables"].items()
        if evaluable["type"] == "model"
    }
    assert "model.orangescrum.fact_activities" in models
    assert report["project"]["score"] >= 9.5
    failing = {
        name: [rule for rule, outcome in evaluable["results"].items() if outcome["result"] != "OK"]
        for name, evaluable in models.items()
        if evaluable["score"] < 9.0
    }
    assert failing == {}
