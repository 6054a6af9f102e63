"""Asset group ``healing``: error/crash classification, parameter extraction, fix-strategy
selection and rule suggestion. Thin: each asset calls one library function in ``kforge.healing``.

* ``healing_corpus``: runs the shipped faulty programs; real tracebacks + real fix outcomes;
* ``healing_model``: rules + calibrated classifiers (real data with ``--data``, else the corpus),
  logged to MLflow ``kforge/healing`` and gated into ``kforge-healing@champion``;
* ``healing_strategies``: Thompson-sampling strategy posteriors + fix-effectiveness model;
* ``healing_rule_suggestions``: templates mined from errors no rule matched.
"""

import dagster as dg
import polars as pl
from kforge.dagster_io import DataResource, MlflowResource, WarehouseResource
from kforge.dagster_io.metadata import metrics_md, table_md
from kforge.feedback import feedback_since
from kforge.healing.release import MIN_TEST_ROWS, train_and_register
from kforge.healing.training import build_tasks, corpus_tables, feedback_outcomes
from kforge.monitoring.calls import set_training_reference
from kforge.monitoring.descriptors import error_descriptors
from kforge.registry import data_version
from kforge.scale.executor import WAREHOUSE_WRITER_TAGS
from pydantic import Field

GROUP = "healing"


def _feedback(warehouse: WarehouseResource) -> pl.DataFrame:
    return feedback_since("healing", warehouse.get())


@dg.asset(op_tags=WAREHOUSE_WRITER_TAGS, group_name=GROUP, description="Tracebacks and fix outcomes from actually running the shipped faulty programs.")
def healing_corpus(warehouse: WarehouseResource) -> dg.MaterializeResult:
    rows, outcomes = corpus_tables()
    wh = warehouse.get()
    errors = pl.DataFrame(rows).drop("group", strict=False)
    wh.replace("healing_corpus_errors", errors)
    wh.replace("healing_fix_outcomes", pl.DataFrame(outcomes))
    return dg.MaterializeResult(metadata={
        "dagster/row_count": errors.height, "fix_outcomes": len(outcomes),
        "fix_success_rate": float(sum(o["success"] for o in outcomes) / max(len(outcomes), 1)),
        "preview": table_md(errors.select("program", "exit_code", "label_exception_type")),
    })


@dg.asset(group_name=GROUP, deps=[healing_corpus],
          check_specs=[dg.AssetCheckSpec("beats_tfidf_baseline", asset="healing_model"),
                       dg.AssetCheckSpec("grouped_heldout_split", asset="healing_model"),
                       dg.AssetCheckSpec("heldout_large_enough", asset="healing_model")],
          description="Rule engine + calibrated classifiers per label, gated into kforge-healing@champion.")
def healing_model(context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource,
                  data: DataResource):
    wh = warehouse.get()
    corpus = wh.read_table("healing_corpus_errors").to_dicts()
    tasks = build_tasks(data.root(), corpus, _feedback(warehouse))
    dv = data_version(pl.DataFrame({"id": [str(r.get("id")) for t in tasks.values() for r in t[0]]}))
    rel = train_and_register(mlflow.tracker(), tasks, dv, dagster_run_id=context.run.run_id, asset_key="healing_model")
    set_training_reference(wh, GROUP, "kforge-healing", rel.version, error_descriptors([r for t in tasks.values() for r in t[0]]))
    base_key = next(k for k in rel.metrics if k.startswith("baseline_tfidf_lr_"))
    gate_metric = rel.gate.metric
    yield dg.MaterializeResult(metadata={
        "mlflow_run_id": rel.run_id, "model_version": rel.version, "kinds": ",".join(tasks),
        "metrics": metrics_md(rel.metrics), **rel.gate.as_metadata(), "n_test": rel.n_test})
    yield dg.AssetCheckResult(check_name="beats_tfidf_baseline", passed=rel.metrics.get(gate_metric, 0.0) >= rel.metrics[base_key],
                              metadata={"model": rel.metrics.get(gate_metric, 0.0), "baseline": rel.metrics[base_key]})
    yield dg.AssetCheckResult(check_name="grouped_heldout_split", passed=rel.metrics["group_overlap"] == 0,
                              metadata={"overlapping_rows": rel.metrics["group_overlap"]})
    yield dg.AssetCheckResult(check_name="heldout_large_enough", passed=rel.n_test >= MIN_TEST_ROWS,
                              metadata={"n_test": rel.n_test, "minimum": MIN_TEST_ROWS})


class StrategyConfig(dg.Config):
    replay_steps: int = Field(default=2000, description="Steps of the bandit replay simulation.")


@dg.asset(group_name=GROUP, deps=[healing_corpus],
          check_specs=[dg.AssetCheckSpec("bandit_beats_random", asset="healing_strategies")],
          description="Thompson-sampling strategy posteriors per error class + P(fix works) model vs the 0.7 constant.")
def healing_strategies(context: dg.AssetExecutionContext, config: StrategyConfig, warehouse: WarehouseResource,
                       mlflow: MlflowResource):
    import mlflow as mlf
    from kforge.healing.bandit import ThompsonBandit, replay
    from kforge.healing.effectiveness import FixEffectiveness, evaluate_effectiveness

    wh = warehouse.get()
    outcomes = wh.read_table("healing_fix_outcomes").to_dicts() + feedback_outcomes(_feedback(warehouse))
    rep = replay(outcomes, steps=config.replay_steps)
    eff = evaluate_effectiveness(outcomes)
    bandit = ThompsonBandit().fit(outcomes)
    model = FixEffectiveness().fit(outcomes)
    pairs = sorted({(str(o["error_class"]), str(o["strategy"]), str(o.get("exc_type", ""))) for o in outcomes})
    p = model.predict([{"error_class": c, "strategy": s, "exc_type": t} for c, s, t in pairs])
    table = pl.DataFrame({"error_class": [c for c, _, _ in pairs], "strategy": [s for _, s, _ in pairs],
                          "posterior_mean": [bandit.mean(c, s) for c, s, _ in pairs], "p_fix_works": p.tolist()})
    wh.replace("healing_strategy_scores", table)
    metrics = {**{f"replay_{k}": v for k, v in rep.items()},
               **{f"effectiveness_{m}_{k}": v for m, d in eff.items() for k, v in d.items() if k in ("brier", "log_loss", "auc")}}
    with mlflow.tracker().run(GROUP, "healing_strategies", dagster_run_id=context.run.run_id, asset_key="healing_strategies",
                              data_version=data_version(pl.DataFrame(outcomes)) if outcomes else "empty"):
        mlf.log_metrics(metrics)
    yield dg.MaterializeResult(metadata={"dagster/row_count": table.height, "metrics": metrics_md(metrics),
                                         "strategies": table_md(table.sort("posterior_mean", descending=True))})
    yield dg.AssetCheckResult(check_name="bandit_beats_random",
                              passed=rep.get("thompson", 0.0) > rep.get("random", 0.0),
                              metadata={"thompson": rep.get("thompson", 0.0), "random": rep.get("random", 0.0)})


@dg.asset(group_name=GROUP, deps=[healing_corpus], description="Rules proposed from errors no rule matched (for a human to accept).")
def healing_rule_suggestions(warehouse: WarehouseResource, data: DataResource) -> dg.MaterializeResult:
    import json

    from kforge.healing.datasets import KERNEL, PYTHON, load_task
    from kforge.healing.rules import RuleEngine
    from kforge.healing.suggest import suggest_rules

    root = data.root()
    rows = (load_task(root, KERNEL) + load_task(root, PYTHON)) if root and (root / "healing" / KERNEL.file).exists() \
        else warehouse.get().read_table("healing_corpus_errors").to_dicts()
    sugg = suggest_rules(rows, RuleEngine.default())
    df = pl.DataFrame([{"id": s["id"], "kind": s["kind"], "pattern": s["pattern"], "support": s["support"],
                        "coverage": s["coverage"], "rule_json": json.dumps(s)} for s in sugg],
                      schema={"id": pl.String, "kind": pl.String, "pattern": pl.String, "support": pl.Int64,
                              "coverage": pl.Int64, "rule_json": pl.String})
    warehouse.get().replace("healing_rule_suggestions", df)
    return dg.MaterializeResult(metadata={"dagster/row_count": df.height, "preview": table_md(df.drop("rule_json"))})


defs = dg.Definitions(assets=[healing_corpus, healing_model, healing_strategies, healing_rule_suggestions])
