"""Issue 17: the pages a reviewer and a data scientist land on, after a `make demo`-style run.

A demo-style `kforge materialize --trigger demo` of the mixins family, then: the MLflow experiment
page opens on its runs table; a model version page shows the gate description; the Dagster asset
page plots a numeric metric and links to its MLflow run; the printed summary lists every model the
run registered. Screenshots go to out/e2e/."""

import os
import re
from pathlib import Path

import pytest
from kforge.registry.release import experiment_url

from tests.e2e.conftest import ARTIFACTS, kforge_cli

pytestmark = pytest.mark.e2e
MODEL = "kforge-mixins"


def _shot(page, name: str) -> None:  # noqa: ANN001
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def demo_run(e2e_home: Path, mlflow_ui: str) -> dict:
    old = os.environ.get("KFORGE_MLFLOW_URL")
    os.environ["KFORGE_MLFLOW_URL"] = mlflow_ui  # the metadata links must open this MLflow UI
    try:
        out = kforge_cli(e2e_home, "materialize", "--select", "group:mixins", "--trigger", "demo").stdout
    finally:
        if old is None:
            os.environ.pop("KFORGE_MLFLOW_URL", None)
        else:
            os.environ["KFORGE_MLFLOW_URL"] = old
    import mlflow

    uri = f"sqlite:///{e2e_home}/mlflow.db"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = max(client.search_model_versions(f"name='{MODEL}'"), key=lambda v: int(v.version))
    return {"out": out, "client": client, "version": version, "home": e2e_home}


def test_summary_lists_every_model_the_run_registered(demo_run: dict) -> None:
    client, out = demo_run["client"], demo_run["out"]
    run_ids = {v.tags.get("kforge.dagster_run_id") for v in [demo_run["version"]]}
    registered = {m.name for m in client.search_registered_models()
                  if any(v.tags.get("kforge.dagster_run_id") in run_ids
                         for v in client.search_model_versions(f"name='{m.name}'"))}
    assert registered, "the demo-style run registered nothing"
    table = out[out.index("family"):]
    for name in registered:
        assert re.search(rf"\b{re.escape(name)}\b", table), f"{name} missing from the summary:\n{table}"
    assert "DEBUG" not in out and "STEP_START" not in out


def test_mlflow_experiment_opens_on_runs_and_version_shows_gate(demo_run: dict, mlflow_ui: str, page) -> None:  # noqa: ANN001
    client, mv = demo_run["client"], demo_run["version"]
    exp = client.get_experiment_by_name("kforge/mixins")
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"
    # the link kforge prints and writes into metadata opens the experiment in the "Model training"
    # workflow, on the runs table: a run name (<model> <date> <dagster run>) is a link in its rows
    page.goto(experiment_url(exp.experiment_id, mlflow_ui))
    page.get_by_role("link", name=re.compile(rf"^{re.escape(MODEL)} \d{{4}}-\d\d-\d\d ")).first.wait_for()
    page.get_by_text("Run Name", exact=False).first.wait_for()
    _shot(page, "mlflow_experiment_runs")
    page.goto(f"{mlflow_ui}/#/models/{MODEL}/versions/{mv.version}")
    decision = mv.tags["kforge.gate.decision"]
    page.get_by_text(decision, exact=False).first.wait_for()
    page.get_by_text("baseline", exact=False).first.wait_for()
    page.get_by_text("Gates:", exact=False).first.wait_for()
    _shot(page, "mlflow_version_gate_description")


def test_dagster_asset_page_plots_a_metric_and_links_to_mlflow(demo_run: dict, dagster_ui: str, mlflow_ui: str,
                                                                page) -> None:  # noqa: ANN001
    mv = demo_run["version"]
    page.goto(f"{dagster_ui}/assets/mixin_model?view=events")
    link = page.locator(f"a[href*='/runs/{mv.run_id}']").first
    link.wait_for()
    href = link.get_attribute("href")
    assert href.startswith(mlflow_ui), href
    _shot(page, "dagster_asset_events_links")
    page.goto(href)
    page.get_by_text(MODEL, exact=False).first.wait_for()  # the link opens the run in the MLflow UI
    page.goto(f"{dagster_ui}/assets/mixin_model")  # overview: its metadata panel has Table | Plots
    page.locator("img[alt='calibration']").first.wait_for()  # the plot renders inline, served by MLflow
    _shot(page, "dagster_asset_overview")
    page.get_by_role("button", name="Plots").first.click()
    page.get_by_text("gate_challenger_score", exact=False).first.wait_for()
    page.locator("canvas").first.wait_for()
    _shot(page, "dagster_asset_plots")
