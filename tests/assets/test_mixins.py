"""The mixins asset group end to end against a temporary KFORGE_HOME: materialize, release, serve,
re-materialize on identical outcomes (nothing registered), retrain on feedback (sensor), CLI."""

import json
from pathlib import Path

import dagster as dg
import pytest
from kforge.cli.main import main
from kforge.config import Paths
from kforge.dagster_io import MlflowResource, WarehouseResource
from kforge.errors import InputError
from kforge.storage import Warehouse

from assets.mixins import mixin_catalogue, mixin_compatibility_matrix, mixin_model, mixin_outcomes
from jobs.mixins import POLICY, mixins_feedback_sensor

MIN_NEW_OUTCOMES = POLICY.min_new_rows

SMALL = {"ops": {"mixin_outcomes": {"config": {"trials_per_pair": 3, "n_sets": 20, "trials_per_set": 3}}}}


def _materialize(home: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [mixin_catalogue, mixin_outcomes, mixin_compatibility_matrix, mixin_model],
        resources={"warehouse": WarehouseResource(home=str(home)), "mlflow": MlflowResource(home=str(home))},
        instance=dg.DagsterInstance.ephemeral(), run_config=SMALL)


def test_materialize_gate_serve_and_retrain(kforge_home: Path, capsys: pytest.CaptureFixture[str]):
    from kforge.mixins.service import PredictionService

    paths = Paths.of(kforge_home)
    with pytest.raises(InputError, match="no champion"):
        PredictionService(paths).check(["Caching", "Retry"], "EFFECT")

    result = _materialize(kforge_home)
    assert result.success
    wh = Warehouse(paths.warehouse)
    n = wh.count("mixin_outcomes")
    assert n > 1000 and wh.count("mixin_catalogue") == 20 and wh.count("mixin_compatibility_matrix") > 400
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"split_holds", "no_future_features", "test_size", "beats_beta_binomial", "beats_rules",
                           "generalizes", "saved_model_reproduces", "beats_champion"}
    assert checks["no_future_features"] and checks["split_holds"] and checks["saved_model_reproduces"]
    md = result.asset_materializations_for_node("mixin_model")[0].metadata
    assert md["model_version"].value == 1 and md["model"].text == "kforge-mixins"
    gates = {k: v for k, v in checks.items() if k not in ("beats_champion", "saved_model_reproduces")}  # WARN-only
    assert md["gate_promoted"].value == all(gates.values())     # any failed blocking check blocks promotion
    assert md["gate_decision"].text == ("promoted" if all(gates.values()) else "blocked")
    assert md["gate_metric"].text == "brier" and md["eval_rows"].value > 0
    # the generalizes gate: per held-out mixin ROC-AUC against the rules, and the worst mixin
    assert "| mixin |" in md["generalizes_by_mixin"].value and md["generalizes_worst_mixin"].text
    assert md["unseen_mixin_scorer"].text in ("transfer", "rules")
    gen = next(c for c in result.get_asset_check_evaluations() if c.check_name == "generalizes")
    assert gen.metadata["worst_delta"].value == pytest.approx(md["generalizes_worst_delta_roc_auc"].value, abs=1e-4)
    assert gen.passed == (md["generalizes_worst_delta_roc_auc"].value >= 0)   # a tie (rules served) passes
    # "say so": the mixins the fallback served, in the asset metadata, the check and the MLflow run
    fallback = md["generalizes_fallback_mixins"].text
    assert gen.metadata["fallback_groups"].value == (0 if fallback == "none" else len(fallback.split(", ")))

    from kforge.registry import Tracker

    tracker = Tracker(paths)
    # the old hole: re-materializing the model on identical outcomes registered a duplicate version
    same = dg.materialize([mixin_model], resources={"warehouse": WarehouseResource(home=str(kforge_home)),
                                                    "mlflow": MlflowResource(home=str(kforge_home))},
                          instance=dg.DagsterInstance.ephemeral())
    md_same = same.asset_materializations_for_node("mixin_model")[0].metadata
    assert md_same["gate_decision"].text == "unchanged" and md_same["model_version"].value == 1
    assert len(tracker.client().search_model_versions("name='kforge-mixins'")) == 1
    if not md["gate_promoted"].value:      # small data: promote by hand to exercise serving
        tracker.promote("kforge-mixins", 1, "test")
    run = tracker.client().get_run(md["mlflow_run_id"].text)
    assert run.data.tags["asset_key"] == "mixin_model" and "test_seen_pair_model_brier" in run.data.metrics
    assert run.data.tags["generalizes_fallback_mixins"] == fallback.replace(", ", ",")
    # what training chose from the data is a tag, never a param (params make re-training "unchanged")
    assert "generalizes_fallback_mixins" not in run.data.params and "transfer_validation" not in run.data.params
    assert run.data.params["transfer_select"] == "bound"
    assert tracker.client().get_experiment(run.info.experiment_id).name == "kforge/mixins"

    # CLI on the champion: uncached, then served from the cache
    assert main(["mixins", "check", "Caching", "Retry", "--node-type", "EFFECT", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["mixins", "check", "retry", "caching", "--node-type", "effect", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert not first["cached"] and second["cached"] and first["probability"] == second["probability"]
    items = Warehouse(paths.warehouse).read("select item_key, prediction, model_version from prediction_items")
    verdict = "success" if first["compatible"] else "failure"
    assert items.rows() == [("Caching,Retry|EFFECT", verdict, "1")] * 2  # both calls, joinable to feedback
    # the cached answer logs the same model inputs as the computed one (kept with the cache entry)
    logs = Warehouse(paths.warehouse).read("select batch_ref, inputs_summary from prediction_log order by log_id")
    assert logs["batch_ref"].to_list() == ["check", "check-cached"]
    computed, cached = (json.loads(x) for x in logs["inputs_summary"])
    assert computed["mean"] and cached == computed and computed["bin_counts"]
    assert main(["mixins", "validate", "Caching", "Retry", "Audit", "--node-type", "EFFECT"]) in (0, 1)
    assert "set P(success)" in capsys.readouterr().out
    assert main(["mixins", "validate", "Caching", "Retry", "Audit", "--node-type", "EFFECT", "--json"]) in (0, 1)
    v = json.loads(capsys.readouterr().out)
    assert main(["mixins", "recommend", "--node-type", "REDUCER", "--need", "caching,metrics", "--have", "Retry"]) == 0
    assert "1. add" in capsys.readouterr().out
    assert main(["mixins", "recommend", "--node-type", "REDUCER", "--need", "caching,metrics", "--have", "Retry",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert "_model_inputs" not in v and "_model_inputs" not in r  # cache bookkeeping never reaches callers
    wh_ = Warehouse(paths.warehouse)
    logs = wh_.read("select batch_ref, n_rows from prediction_log order by log_id")
    assert logs["batch_ref"].to_list()[2:] == ["validate", "validate-cached", "recommend", "recommend-cached"]
    got = wh_.read("select item_key, prediction, score from prediction_items where log_id = "
                   "(select max(log_id) from prediction_log where batch_ref = 'recommend-cached') order by item_key")
    want = sorted((f"{','.join(rec['set'])}|REDUCER", "success" if rec["probability"] >= 0.5 else "failure",
                   rec["probability"]) for rec in r["recommendations"])
    assert got.rows() == want and len(want) >= 1   # every recommended set, keyed like mixins feedback rows
    set_item = wh_.read("select item_key, score from prediction_items where log_id = "
                        "(select max(log_id) from prediction_log where batch_ref = 'validate-cached')").rows()
    assert set_item == [("Audit,Caching,Retry|EFFECT", v["set_probability"])]  # sorted, as feedback rows are
    assert main(["mixins", "check", "Caching", "Nope", "--node-type", "EFFECT"]) == 2
    assert "unknown mixin" in capsys.readouterr().err

    # sensor: nothing new -> skip; enough feedback -> one run request; cursor moves; then skip again
    res = {"warehouse": WarehouseResource(home=str(kforge_home)), "mlflow": MlflowResource(home=str(kforge_home))}
    ctx = dg.build_sensor_context(cursor=None, resources=res)
    assert isinstance(mixins_feedback_sensor(ctx), dg.SkipReason)
    fb = kforge_home / "fb.jsonl"
    fb.write_text("".join(json.dumps({"mixins": "Caching,Retry", "node_type": "REDUCER", "outcome": "failure",
                                      "conflict_reason": "stale_state"}) + "\n" for _ in range(MIN_NEW_OUTCOMES)))
    assert main(["feedback", "import", "mixins", str(fb)]) == 0
    ctx = dg.build_sensor_context(cursor=None, resources=res)
    tick = mixins_feedback_sensor(ctx)
    assert isinstance(tick, dg.RunRequest) and tick.run_key.startswith("mixins-")
    assert json.loads(ctx.cursor)["last_request_id"] == MIN_NEW_OUTCOMES
    again = mixins_feedback_sensor(dg.build_sensor_context(cursor=ctx.cursor, resources=res))
    assert isinstance(again, dg.SkipReason)

    # retraining run: feedback ingested, new challenger gated against the champion on the same rows
    result2 = _materialize(kforge_home)
    assert result2.success and wh.count("mixin_outcomes") > n + MIN_NEW_OUTCOMES
    md2 = result2.asset_materializations_for_node("mixin_model")[0].metadata
    assert md2["model_version"].value == 2 and md2["gate_champion_version"].value == 1
    # the champion is scored on the challenger's held-out outcomes (or promotion is blocked, with why)
    t2 = tracker.client().get_model_version("kforge-mixins", "2").tags
    assert t2["kforge.gate.decision"] == md2["gate_decision"].text
    assert t2["kforge.eval_rows_digest"] == t2["kforge.gate.champion_eval_rows_digest"], t2["kforge.gate.reason"]
    capsys.readouterr()  # drop earlier output ("recorded N mixins feedback rows")
    assert main(["mixins", "check", "Caching", "Retry", "--node-type", "EFFECT", "--json"]) == 0
    served = json.loads(capsys.readouterr().out)
    if md2["gate_promoted"].value:
        # promotion drops the old version's cache entries: the new champion answers afresh
        assert md2["cache_entries_invalidated"].value >= 1
        assert served["model_version"] == 2 and not served["cached"]
    else:
        # blocked: nothing is invalidated and the champion (v1) keeps answering from its cache
        gates2 = {c.check_name: c.passed for c in result2.get_asset_check_evaluations()}
        assert md2["cache_entries_invalidated"].value == 0 and t2["kforge.gate.reason"]
        assert served["model_version"] == 1 and served["cached"] and served["probability"] == first["probability"]
        assert not all(v for k, v in gates2.items() if k not in ("beats_champion", "saved_model_reproduces")) \
            or not gates2["beats_champion"]


def test_outcomes_without_any_row_report_no_pass_rate(kforge_home: Path):
    """Before: ``pass_rate`` was 0.0 with no outcome at all, a rate nothing measured."""
    res = dg.materialize([mixin_catalogue, mixin_outcomes],
                         resources={"warehouse": WarehouseResource(home=str(kforge_home)),
                                    "mlflow": MlflowResource(home=str(kforge_home))},
                         instance=dg.DagsterInstance.ephemeral(),
                         run_config={"ops": {"mixin_outcomes": {"config": {"run_harness": False}}}})
    assert res.success
    md = res.asset_materializations_for_node("mixin_outcomes")[0].metadata
    assert md["dagster/row_count"].value == 0 and "pass_rate" not in md
