"""`orangescrum docs serve`: the dbt catalog of a built warehouse, read in Chromium.

The model page of fact_activities must show the description dbt wrote into the manifest, and
its lineage graph must draw the model's whole lineage (`+fact_activities+`) as the manifest
records it: the graph is a cytoscape canvas, so its nodes are read from the live cytoscape
instance the docs site renders into (node ids are dbt unique ids).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ScreenshotOptions, Server
from tests.dbt.conftest import Warehouse

pytestmark = pytest.mark.slow

FACT = "model.orangescrum.fact_activities"
# What the docs site draws by default: tests other than singular and unit tests are hidden,
# so the assertion keeps to the resource types it always shows.
DRAWN_TYPES = ("model.", "source.", "exposure.")
RENDER_TIMEOUT_MS = 60_000

# Ids of the nodes cytoscape has laid out and shows (the instance hangs off its container).
VISIBLE_GRAPH_NODES = """() => {
    const registry = document.getElementById('cy')?._cyreg;
    return registry ? registry.cy.nodes(':visible').map((node) => node.id()) : [];
}"""


@pytest.fixture(scope="module")
def docs_site(built_warehouse: Warehouse, server_logs: Path) -> Iterator[Server]:
    server = Server(
        "orangescrum docs serve",
        ["docs", "serve", "--target-path", str(built_warehouse.target_path)],
        {"ORANGESCRUM_DATA_DIR": str(built_warehouse.settings.data_dir)},
        server_logs / "docs.log",
    )
    try:
        server.wait_for_http("/catalog.json")
        yield server
    finally:
        server.stop()


def lineage(manifest: dict[str, Any], unique_id: str, edges: str) -> set[str]:
    """Every ancestor (edges="parent_map") or descendant ("child_map") of a node."""
    found: set[str] = set()
    pending = [unique_id]
    while pending:
        for neighbour in manifest[edges].get(pending.pop(), []):
            if neighbour not in found:
                found.add(neighbour)
                pending.append(neighbour)
    return found


def plain_text(markdown: str) -> str:
    """A markdown paragraph as the browser shows it: no code ticks or emphasis, one space."""
    return " ".join(re.sub(r"[`*]", "", markdown).split())


def test_fact_activities_page_shows_its_description_and_lineage(
    page: Page,
    docs_site: Server,
    built_warehouse: Warehouse,
    screenshot_options: ScreenshotOptions,
) -> None:
    # The test ends on the full-window lineage graph: the window as it is shows it best.
    screenshot_options.grow_to_content = False
    manifest = json.loads((built_warehouse.target_path / "manifest.json").read_text())
    description = manifest["nodes"][FACT]["description"]
    first_paragraph = plain_text(description.split("\n\n")[0])
    assert first_paragraph.startswith("One row per OrangeScrum event")  # the doc block rendered

    page.goto(f"{docs_site.url}/#!/model/{FACT}")
    expect(page.locator("h1").first).to_contain_text("fact_activities", timeout=RENDER_TIMEOUT_MS)
    expect(page.locator(".model-markdown").first).to_contain_text(first_paragraph)

    page.get_by_title("View Lineage Graph").click()
    page.locator("a[title='View Fullscreen']:visible").click()
    expect(page).to_have_url(re.compile(r"g_v=1"))  # the graph view is open
    # The selection the graph draws, in dbt's own syntax: the model, its ancestors, its
    # descendants.
    expect(page.locator("input[ng-model='selectorService.selection.dirty.include']")).to_have_value(
        "+fact_activities+"
    )
    expect(page.locator("#cy canvas[data-id='layer2-node']")).to_be_visible()
    expected = {
        node
        for node in lineage(manifest, FACT, "parent_map") | lineage(manifest, FACT, "child_map")
        if node.startswith(DRAWN_TYPES)
    } | {FACT}
    assert "model.orangescrum.stg_orangescrum__events" in expected
    assert "source.orangescrum.orangescrum.raw_events" in expected
    # Cytoscape lays the graph out after the click: wait until it shows every expected node.
    page.wait_for_function(
        f"(ids) => {{ const shown = ({VISIBLE_GRAPH_NODES})(); "
        "return ids.every((id) => shown.includes(id)); }",
        arg=sorted(expected),
        timeout=RENDER_TIMEOUT_MS,
    )
    drawn = set(page.evaluate(VISIBLE_GRAPH_NODES))
    page.mouse.move(0, 0)  # no "View Fullscreen" tooltip over the screenshot
    assert {node for node in drawn if node.startswith(DRAWN_TYPES)} == expected
