"""`make lint` is part of the contract: ruff, the layer contracts, sqlfluff (dbt templater) and
dbt-score pass on the repo. This is the suite's only sqlfluff run: it lints every model."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orangescrum import REPO_ROOT

pytestmark = pytest.mark.slow


def test_make_lint_passes_from_another_directory(tmp_path: Path) -> None:
    # From elsewhere: the dev profile's warehouse path must not depend on the working directory.
    result = subprocess.run(
        ["make", "-C", str(REPO_ROOT), "lint"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "All Finished" in result.stdout
