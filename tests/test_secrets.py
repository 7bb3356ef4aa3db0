"""No secret in the repository: detect-secrets against the committed baseline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orangescrum import REPO_ROOT

BASELINE = REPO_ROOT / ".secrets.baseline"
HOOK = Path(sys.executable).parent / "detect-secrets-hook"

pytestmark = pytest.mark.timeout(120)


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return [name for name in listed.stdout.splitlines() if (REPO_ROOT / name).is_file()]


def scan(files: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HOOK), "--baseline", str(BASELINE), *files],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.slow
def test_no_tracked_file_holds_a_secret() -> None:
    result = scan(tracked_files())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_a_planted_secret_fails_the_scan(tmp_path: Path) -> None:
    planted = tmp_path / "settings_override.py"
    # assembled at run time so this file itself holds no secret-shaped literal
    key = "AKIA" + "Z7Q4" * 4
    planted.write_text(f'aws_access_key_id = "{key}"\ndb_password = "{"Tr0ub4dor" * 2}&3"\n')
    result = scan([str(planted)])
    assert result.returncode == 1
    assert str(planted) in result.stdout
    assert "AWS Access Key" in result.stdout
