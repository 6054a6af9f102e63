"""Materialize the healing group on the embedded corpus; sensor ticks on feedback."""

import dagster as dg
import polars as pl
from kforge.dagster_io import DataResource, MlflowResource, WarehouseResource
from kforge.dagster_io.resources import TextEncoderResource
from kforge.feedback import add_feedback
from kforge.feedback.retrain import parse_cursor
from kforge.healing.specs import BANDIT, CLASSIFIER, EFFECTIVENESS
from kforge.storage import Warehouse

from assets.healing import healing_corpus, healing_model, healing_rule_suggestions, healing_strategies
from jobs.healing import healing_feedback_sensor


def _by_asset(result: dg.ExecuteInProcessResult) -> tuple[dict, dict]:
    checks = {(c.asset_key.path[-1], c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    meta = {m.asset_key.path[-1]: {k: v.value for k, v in m.materialization.metadata.items()}
            for m in result.get_asset_materialization_events()}
    return checks, meta


def test_healing_group_materializes_and_gates(tmp_path):
    home = str(tmp_path / "home")
    res = {"warehouse": WarehouseResource(home=home), "mlflow": MlflowResource(home=home), "data": DataResource(data_dir=""),
           "text_encoder": TextEncoderResource(home=home)}
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([healing_corpus, healing_model, healing_strategies, healing_rule_suggestions],
                            resources=res, instance=instance)
    assert result.success
    checks, meta = _by_asset(result)
    assert {n for a, n in checks if a == "healing_model"} == {g.name for g in CLASSIFIER.gate_specs()}
    assert checks[("healing_model", "split_holds")] and checks[("healing_model", "test_size")]
    # the corpus names no source: generalizes is reported as not run (WARN), and does not block promotion
    assert meta["healing_model"]["generalizes"] == "not run" and not checks[("healing_model", "generalizes")]
    assert "generalizes" not in meta["healing_model"]["gate_reason"]
    assert checks[("healing_strategies", "split_holds")]
    assert checks[("healing_fix_effectiveness", "beats_constant")]
    wh = Warehouse(tmp_path / "home" / "warehouse.duckdb")
    assert wh.count("healing_corpus_errors") >= 40 and wh.count("healing_fix_outcomes") > 20
    # a fix counts only when the program does what it states it is meant to do: swallowing the error
    # (guard-try's try/except: pass) never does, and every failure says why
    fixes = wh.read_table("healing_fix_outcomes")
    assert fixes.filter(pl.col("strategy") == "guard-try")["failure"].unique().to_list() == ["suppressed"]
    assert fixes.filter(pl.col("success"))["strategy"].unique().sort().to_list() == [
        "cast-to-str", "dict-get-default", "zero-guard"]
    assert (fixes.filter(~pl.col("success"))["failure"] != "").all()
    assert wh.count("healing_strategy_scores") > 0
    refs = wh.read("select distinct model_name, model_version, feature from monitoring_reference")
    assert set(refs["model_name"]) == {"kforge-healing"} and "n_frame_lines" in refs["feature"].to_list()
    tracker = res["mlflow"].tracker()
    client = tracker.client()
    # all three models are registered through the release path, with the decision on the version
    for spec in (CLASSIFIER, BANDIT, EFFECTIVENESS):
        versions = client.search_model_versions(f"name='{spec.name}'")
        assert len(versions) == 1, spec.name
        decision = versions[0].tags["kforge.gate.decision"]
        assert decision == meta[spec.asset_key]["gate_decision"] in ("promoted", "blocked")
        assert (tracker.champion(spec.name) is not None) == (decision == "promoted") == meta[spec.asset_key]["gate_promoted"]
    assert meta["healing_strategies"]["model"] == BANDIT.name
    # on the corpus no held-out program has a working strategy, so the bandit cannot beat random and is not served
    assert (tracker.champion(BANDIT.name) is not None) == checks[("healing_strategies", "beats_random")]
    assert meta["healing_fix_effectiveness"]["model"] == EFFECTIVENESS.name
    # the classifier is promoted only if it beat the TF-IDF baseline on the same held-out rows
    assert (tracker.champion(CLASSIFIER.name) is not None) == checks[("healing_model", "beats_tfidf_lr")]
    versions = client.search_model_versions(f"name='{CLASSIFIER.name}'")
    run = client.get_run(versions[0].run_id)
    assert any(k.startswith("test_python_label_root_cause") for k in run.data.metrics)
    assert [a.path for a in client.list_artifacts(run.info.run_id, "evaluation")] == ["evaluation/generalizes_source.csv"]
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
    from kforge.healing.pyfunc import load_run_bundle  # what `kforge healing classify` loads

    assert load_run_bundle(tracker, versions[0].run_id).classify([{"id": "x", "traceback": tb}])[0]["rule_id"] == "py-keyerror"

    # re-materializing on identical stored tables registers nothing
    again = dg.materialize([healing_model, healing_strategies], resources=res, instance=instance)
    assert again.success
    _, meta2 = _by_asset(again)
    for spec in (CLASSIFIER, BANDIT, EFFECTIVENESS):
        assert meta2[spec.asset_key]["gate_decision"] == "unchanged"
        assert len(client.search_model_versions(f"name='{spec.name}'")) == 1


def test_feedback_sensor_cursor(tmp_path):
    home = str(tmp_path / "home")
    wres = WarehouseResource(home=home)
    res = {"warehouse": wres, "mlflow": MlflowResource(home=home)}
    ctx = dg.build_sensor_context(cursor=None, resources=res)
    assert isinstance(healing_feedback_sensor(ctx), dg.SkipReason)
    add_feedback("healing", {"kind": "fix", "error_class": "py-keyerror", "strategy": "dict-get-default", "success": "1"}, wres.get())
    add_feedback("healing", {"kind": "label", "traceback": "Traceback (most recent call last):\nKeyError: 'a'",
                             "label": "label_root_cause", "value": "typo"}, wres.get())
    ctx = dg.build_sensor_context(cursor=None, resources=res)
    req = healing_feedback_sensor(ctx)
    assert isinstance(req, dg.RunRequest) and req.run_key == "healing-feedback-2"
    assert parse_cursor(ctx.cursor) == 2
    ctx = dg.build_sensor_context(cursor=ctx.cursor, resources=res)
    assert isinstance(healing_feedback_sensor(ctx), dg.SkipReason)
