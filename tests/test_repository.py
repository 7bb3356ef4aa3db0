"""The repository explains itself: no file points readers at documents outside it."""

from __future__ import annotations

import re
import subprocess

from orangescrum import REPO_ROOT

# Planning documents that live beside the repository, never in it.
OUTSIDE_DOCUMENTS = re.compile(r"DESIGN(\.md)? ?§|shared/(DESIGN|STYLE)|STYLE\.md")


def test_no_file_cites_a_document_outside_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in tracked:
        path = REPO_ROOT / name
        if name == "tests/test_repository.py" or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        offenders += [f"{name}: {m.group(0)}" for m in OUTSIDE_DOCUMENTS.finditer(text)]
    assert offenders == []
