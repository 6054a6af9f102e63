"""Materialize the healing group on the embedded corpus; sensor ticks on feedback."""

import dagster as dg
from kforge.dagster_io import DataResource, MlflowResource, WarehouseResource
from kforge.feedback import add_feedback
from kforge.healing import feedback as _healing_feedback  # noqa: F401 - registers the schema
from kforge.storage import Warehouse

from assets.healing import healing_corpus, healing_model, healing_rule_suggestions, healing_strategies
from jobs.healing import healing_feedback_sensor


def test_healing_group_materializes_and_gates(tmp_path):
    home = str(tmp_path / "home")
    res = {"warehouse": WarehouseResource(home=home), "mlflow": MlflowResource(home=home), "data": DataResource(data_dir="")}
    result = dg.materialize([healing_corpus, healing_model, healing_strategies, healing_rule_suggestions],
                            resources=res, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["grouped_heldout_split"] and checks["heldout_large_enough"]
    assert checks["bandit_beats_random"]
    wh = Warehouse(tmp_path / "home" / "warehouse.duckdb")
    assert wh.count("healing_corpus_errors") >= 40 and wh.count("healing_fix_outcomes") > 20
    assert wh.count("healing_strategy_scores") > 0
    refs = wh.read("select distinct model_name, model_version, feature from monitoring_reference")
    assert set(refs["model_name"]) == {"kforge-healing"} and "n_frame_lines" in refs["feature"].to_list()
    tracker = res["mlflow"].tracker()
    client = tracker.client()
    versions = client.search_model_versions("name='kforge-healing'")
    assert len(versions) == 1 and versions[0].tags["gate_decision"] in ("promoted", "rejected")
    # the gate honours the evaluation checks: promoted only if the baseline was beaten
    champ = tracker.champion("kforge-healing")
    assert (champ is not None) == checks["beats_tfidf_baseline"]
    assert (versions[0].tags["gate_decision"] == "promoted") == checks["beats_tfidf_baseline"]
    run = client.get_run(versions[0].run_id)
    assert any(k.startswith("test_python_label_root_cause") for k in run.data.metrics)
    assert run.data.tags["dagster_run_id"] and run.data.tags["asset_key"] == "healing_model"
    # the version is an MLflow pyfunc with a signature, loaded from this project's own store
    import json

    import mlflow.artifacts
    import mlflow.pyfunc
    import pandas as pd

    local = mlflow.artifacts.download_artifacts(f"runs:/{versions[0].run_id}/model", tracking_uri=tracker.tracking_uri)
    pyfunc = mlflow.pyfunc.load_model(local)
    assert [c.name for c in pyfunc.metadata.get_input_schema().inputs] == ["id", "log", "traceback"]
    tb = "Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nKeyError: 'price'\n"
    out = pyfunc.predict(pd.DataFrame({"id": ["x"], "log": [""], "traceback": [tb]}))
    assert out["kind"].tolist() == ["python"] and out["rule_id"].tolist() == ["py-keyerror"]
    assert "label_root_cause" in json.loads(out["predictions"][0])
    from kforge.healing.release import load_run_bundle  # what `kforge healing classify` loads

    assert load_run_bundle(tracker, versions[0].run_id).classify([{"id": "x", "traceback": tb}])[0]["rule_id"] == "py-keyerror"


def test_feedback_sensor_cursor(tmp_path):
    home = str(tmp_path / "home")
    wres = WarehouseResource(home=home)
    ctx = dg.build_sensor_context(cursor=None, resources={"warehouse": wres})
    assert isinstance(healing_feedback_sensor(ctx), dg.SkipReason)
    add_feedback("healing", {"kind": "fix", "error_class": "py-keyerror", "strategy": "dict-get-default", "success": "1"}, wres.get())
    add_feedback("healing", {"kind": "label", "traceback": "Traceback (most recent call last):\nKeyError: 'a'",
                             "label": "label_root_cause", "value": "typo"}, wres.get())
    ctx = dg.build_sensor_context(cursor="0", resources={"warehouse": wres})
    req = healing_feedback_sensor(ctx)
    assert isinstance(req, dg.RunRequest) and req.run_key == "healing-feedback-2"
    assert ctx.cursor == "2"
    ctx = dg.build_sensor_context(cursor="2", resources={"warehouse": wres})
    assert isinstance(healing_feedback_sensor(ctx), dg.SkipReason)
