"""The users' path end to end: materialize the acceptance family from the Dagster UI, read its checks
and metadata, turn on the feedback sensor and watch it request a retraining run after feedback
arrives, then compare the two runs in the MLflow UI and find the champion alias."""

import json
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ARTIFACTS, graphql, kforge_cli

pytestmark = pytest.mark.e2e

LOCATION = "jobs.definitions"
RUNS = """query($f: RunsFilter) { runsOrError(filter: $f, limit: 10) { ... on Runs { results {
  runId status jobName tags { key value } } } } }"""


def _wait_run(base: str, filt: dict, timeout: float, seen: set[str] | None = None) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        runs = graphql(base, RUNS, {"f": filt})["data"]["runsOrError"]["results"]
        runs = [r for r in runs if not seen or r["runId"] not in seen]
        if runs:
            last = runs[0]
            if last["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                return last
        time.sleep(3)
    raise AssertionError(f"no finished run for {filt} within {timeout:.0f}s (last: {last})")


def _shot(page, name: str) -> None:  # noqa: ANN001
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def prepared(e2e_home: Path, dagster_ui: str) -> Path:
    kforge_cli(e2e_home, "materialize", "--select", "group:kernel_commits")
    return e2e_home


def test_acceptance_user_path(prepared: Path, dagster_ui: str, mlflow_ui: str, page) -> None:  # noqa: ANN001, PLR0915
    home = prepared
    # 1. materialize the acceptance family from the UI (the job's "Materialize all")
    page.goto(f"{dagster_ui}/locations/{LOCATION}/jobs/retrain_acceptance")
    page.locator("button:has-text('Materialize all')").first.click()
    confirm = page.locator("button:has-text('Confirm')")
    try:
        confirm.wait_for(timeout=5000)
        confirm.click()
    except Exception:  # noqa: BLE001 - no confirmation dialog
        pass
    first = _wait_run(dagster_ui, {"pipelineName": "retrain_acceptance"}, timeout=400)
    assert first["status"] == "SUCCESS", f"see {home}/dagster-dev.log"

    # 2. checks and metadata (metrics table, ROC plot) on the model asset
    for key, probe in (("metrics", "text=test_roc_auc"), ("roc", "img[alt='roc']")):
        page.goto(f"{dagster_ui}/assets/acceptance_commit_model")
        page.get_by_placeholder("Filter metadata keys").fill(key)
        page.get_by_text(key, exact=True).first.wait_for()
        show = page.get_by_text("[Show Markdown]")  # long markdown (the plot) opens in a dialog
        if show.count():
            show.first.click()
        page.locator(probe).first.wait_for()
        _shot(page, f"acceptance_metadata_{key}")
    page.goto(f"{dagster_ui}/assets/acceptance_commit_model?view=checks")
    for check in ("split_holds", "no_future_features", "test_size", "beats_lines_added", "beats_plain_lr",
                  "beats_champion"):
        page.get_by_text(check, exact=True).first.wait_for()
    _shot(page, "acceptance_checks")

    # 3. turn the feedback sensor on in the UI; its first tick skips (no feedback yet)
    page.goto(f"{dagster_ui}/locations/{LOCATION}/sensors/acceptance_feedback_sensor")
    toggle = page.locator("input[type='checkbox']").first
    toggle.locator("xpath=..").click()  # the input is hidden behind Dagster's switch
    page.wait_for_function("() => document.querySelector(\"input[type='checkbox']\").checked", timeout=30_000)
    # 4. feedback arrives: 60 labelled commit outcomes
    shas = kforge_cli(home, "query", "select sha from commits order by committer_ts desc limit 60").stdout.split()[1:]
    rows = [{"target": "commit", "repo": "demo-repo", "item_id": s, "outcome": i % 3 == 0} for i, s in enumerate(shas)]
    fb = home / "feedback.jsonl"
    fb.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    kforge_cli(home, "feedback", "import", "acceptance", str(fb))
    second = _wait_run(dagster_ui, {"pipelineName": "retrain_acceptance", "tags": [
        {"key": "dagster/sensor_name", "value": "acceptance_feedback_sensor"}]}, timeout=300)
    assert second["status"] == "SUCCESS"
    page.goto(f"{dagster_ui}/locations/{LOCATION}/sensors/acceptance_feedback_sensor")
    page.wait_for_timeout(2000)
    _shot(page, "feedback_sensor")

    # 5. MLflow: both training runs in kforge/acceptance, compared side by side
    import mlflow

    uri = f"sqlite:///{home}/mlflow.db"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("kforge/acceptance")
    runs = client.search_runs([exp.experiment_id], "tags.asset_key = 'acceptance_commit_model'",
                              order_by=["attributes.start_time DESC"])
    assert len(runs) >= 2
    ids = [r.info.run_id for r in runs[:2]]
    page.goto(f"{mlflow_ui}/#/experiments/{exp.experiment_id}/runs")
    page.get_by_text("kforge-acceptance-commit", exact=False).first.wait_for()  # run names: <model> <date> <run id>
    # a fresh document (not a hash change from the runs page, which the compare page can read before its
    # query is set) and the JSON lists URL-encoded
    from urllib.parse import quote

    page.goto("about:blank")
    page.goto(f"{mlflow_ui}/#/compare-runs?runs={quote(json.dumps(ids))}"
              f"&experiments={quote(json.dumps([exp.experiment_id]))}&workflowType=machine_learning")
    page.get_by_text("test_roc_auc", exact=False).first.wait_for()
    for rid in ids:
        page.get_by_text(rid[:8], exact=False).first.wait_for()
    _shot(page, "mlflow_compare")

    # 6. the registered model shows its champion alias. On the small synthetic demo the gate may
    # (honestly) reject every challenger; then a human promotes one, as `kforge models promote` allows.
    try:
        client.get_model_version_by_alias("kforge-acceptance-commit", "champion")
    except Exception:  # noqa: BLE001 - no champion yet
        latest = max(int(v.version) for v in client.search_model_versions("name='kforge-acceptance-commit'"))
        kforge_cli(home, "models", "promote", "kforge-acceptance-commit", str(latest), "--reason", "e2e: human review")
    page.goto(f"{mlflow_ui}/#/models/kforge-acceptance-commit")
    page.get_by_text("champion", exact=False).first.wait_for()
    _shot(page, "mlflow_champion")
