"""The Dagster UI as users use it: the asset graph shows the groups; materializing from the UI works."""

import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ARTIFACTS, graphql

pytestmark = pytest.mark.e2e

RUNS = """{ runsOrError(limit: 5) { ... on Runs { results { runId status assetSelection { path } } } } }"""


GROUPS = """{ assetNodes { groupName assetKey { path } } }"""
FAMILIES = {"kernel_commits", "patch_features", "acceptance", "generation", "mixins", "healing", "telemetry"}


def test_asset_graph_shows_groups(dagster_ui: str, page) -> None:  # noqa: ANN001
    nodes = graphql(dagster_ui, GROUPS)["data"]["assetNodes"]
    assert {n["groupName"] for n in nodes} >= FAMILIES
    page.goto(f"{dagster_ui}/asset-groups")
    page.wait_for_selector("text=kernel_commits")
    assert page.locator("text=kernel_commits").count() >= 1
    page.goto(f"{dagster_ui}/assets")
    for name in ("commit_chains", "commit_tags", "author_expertise"):
        page.get_by_text(name, exact=True).first.wait_for()
    page.goto(f"{dagster_ui}/assets/training_exports")
    page.get_by_text("JSONL training-data exports", exact=False).first.wait_for()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "asset_catalog.png"))


def test_materialize_from_the_ui(dagster_ui: str, page, e2e_home: Path) -> None:  # noqa: ANN001
    page.goto(f"{dagster_ui}/assets/commit_tags")
    page.locator("button:has-text('Materialize')").first.click()
    # upstream `imported_commits` (real-data import) was never materialized: the UI asks to confirm
    confirm = page.locator("button:has-text('Confirm')")
    try:
        confirm.wait_for(timeout=5000)
        confirm.click()
    except Exception:  # noqa: BLE001 - no dialog: the run was launched directly
        pass
    # the launch toast links to the run; wait until the run finishes
    deadline = time.monotonic() + 180
    status = None
    while time.monotonic() < deadline:
        runs = graphql(dagster_ui, RUNS)["data"]["runsOrError"]["results"]
        tagged = [r for r in runs if r["assetSelection"] and ["commit_tags"] in [a["path"] for a in r["assetSelection"]]]
        if tagged:
            status = tagged[0]["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                break
        time.sleep(2)
    assert status == "SUCCESS", f"run status {status}; see {e2e_home}/dagster-dev.log"
    page.goto(f"{dagster_ui}/assets/commit_tags")
    page.wait_for_selector("text=commits_per_tag")
    page.screenshot(path=str(ARTIFACTS / "commit_tags_materialized.png"))
