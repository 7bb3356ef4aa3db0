"""The dbt exposures tell the truth: real addresses or low maturity, real marts, real guides.

Reads the YAML only (no dbt run), so it stays fast: exposures are plain YAML with no config
inheritance, unlike model groups (tests/dbt/test_model_owners.py reads dbt's manifest).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from orangescrum import REPO_ROOT
from orangescrum.dashboard.queries import REQUIRED_MARTS

MARTS_DIR = REPO_ROOT / "dbt_project" / "models" / "marts"
EXPOSURES_FILE = MARTS_DIR / "_marts__exposures.yml"
REF = re.compile(r"""^ref\(\s*['"](?P<name>\w+)['"]\s*\)$""")
# A repository file named in a description, e.g. docs/looker_studio.md.
REPO_PATH = re.compile(r"\b(?:docs|dbt_project|orangescrum)/[\w./-]+\.\w+")
PLACEHOLDER_WORDS = ("example.com", "example.org", "example.net", "todo", "tbd", "changeme")
LOOKER_STUDIO_HOSTS = ("lookerstudio.google.com", "datastudio.google.com")
# Looker Studio report addresses: /reporting/<report id, a UUID>[/page/<page id>].
LOOKER_STUDIO_REPORT = re.compile(
    r"^https://[^/]+/(?:u/\d+/)?reporting/(?P<id>[0-9a-fA-F-]{36})(?:/|$)"
)


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def exposures() -> list[dict[str, Any]]:
    return load_yaml(EXPOSURES_FILE)["exposures"]


def exposure(name: str) -> dict[str, Any]:
    return next(item for item in exposures() if item["name"] == name)


def referenced_models(item: dict[str, Any]) -> list[str]:
    names = []
    for dependency in item.get("depends_on", []):
        match = REF.match(dependency.strip())
        assert match, f"{item['name']}: {dependency!r} is not a ref('model')"
        names.append(match["name"])
    return names


def is_placeholder_url(url: str | None) -> bool:
    """True for an address that cannot be a real report: empty, example domains, TODO, or a
    Looker Studio address without a well-formed, non-dummy report id."""
    if not url or not url.strip():
        return True
    lowered = url.lower()
    if any(word in lowered for word in PLACEHOLDER_WORDS) or "..." in url:
        return True
    if any(host in lowered for host in LOOKER_STUDIO_HOSTS):
        match = LOOKER_STUDIO_REPORT.match(url)
        if match is None:
            return True
        try:
            report_id = uuid.UUID(match["id"])
        except ValueError:
            return True
        # 00000000-0000-..., 11111111-1111-..., aaaaaaaa-...: typed by hand, not issued.
        return len(set(report_id.hex)) == 1
    return False


@pytest.mark.parametrize(
    ("url", "placeholder"),
    [
        ("https://lookerstudio.google.com/", True),  # what the exposure used to claim
        ("https://lookerstudio.google.com/reporting/", True),
        ("https://lookerstudio.google.com/reporting/...", True),
        ("https://lookerstudio.google.com/reporting/your-report-id", True),
        ("https://lookerstudio.google.com/reporting/00000000-0000-0000-0000-000000000000", True),
        ("https://dashboards.example.com/activity", True),
        ("https://intranet.orangescrum.com/TODO", True),
        ("", True),
        (None, True),
        ("https://lookerstudio.google.com/reporting/3f1c9a52-7b0e-4d2a-9c61-5e8f0b7d2a14", False),
        (
            "https://lookerstudio.google.com/u/0/reporting/"
            "3f1c9a52-7b0e-4d2a-9c61-5e8f0b7d2a14/page/p_x1y2z3",
            False,
        ),
        ("http://127.0.0.1:8501", False),
    ],
)
def test_placeholder_urls_are_recognised(url: str | None, placeholder: bool) -> None:
    assert is_placeholder_url(url) is placeholder


def test_every_exposure_has_a_real_url_or_low_maturity() -> None:
    for item in exposures():
        if is_placeholder_url(item.get("url")):
            assert item["maturity"] == "low", (
                f"{item['name']} claims maturity {item['maturity']!r} without a real url "
                f"({item.get('url')!r})"
            )


def test_every_exposure_depends_only_on_existing_marts() -> None:
    marts = {path.stem for path in MARTS_DIR.glob("*.sql")}
    assert set(REQUIRED_MARTS) <= marts  # the glob found the mart models
    for item in exposures():
        models = referenced_models(item)
        assert models, f"{item['name']} depends on nothing"
        assert set(models) <= marts, f"{item['name']}: not marts: {set(models) - marts}"
        assert len(models) == len(set(models)), f"{item['name']} lists a mart twice"


def test_local_dashboard_exposure_lists_the_marts_the_dashboard_requires() -> None:
    local = exposure("local_activity_dashboard")
    assert set(referenced_models(local)) == set(REQUIRED_MARTS)
    assert not is_placeholder_url(local["url"])


def test_the_looker_studio_exposure_is_planned_and_points_at_its_guide() -> None:
    looker = exposure("looker_studio_activity_dashboard")
    assert looker["maturity"] == "low"
    assert "no live report" in " ".join(looker["description"].split()).lower()
    assert "docs/looker_studio.md" in looker["description"]


def test_files_named_in_exposure_descriptions_exist() -> None:
    named = [
        path for item in exposures() for path in REPO_PATH.findall(item.get("description", ""))
    ]
    assert "docs/looker_studio.md" in named
    for path in named:
        assert (REPO_ROOT / path).exists(), f"an exposure names {path}, which does not exist"


def test_the_looker_studio_exposure_reads_no_mart_with_pii() -> None:
    # The guide leaves dim_users out of Looker Studio: its names and e-mails are PII.
    models = load_yaml(MARTS_DIR / "_marts__models.yml")["models"]
    with_pii = {
        model["name"]
        for model in models
        for column in model.get("columns", [])
        if (column.get("config", {}).get("meta", {}) | column.get("meta", {})).get("contains_pii")
    }
    assert "dim_users" in with_pii  # the flag this test relies on is still there
    looker = exposure("looker_studio_activity_dashboard")
    assert not set(referenced_models(looker)) & with_pii
