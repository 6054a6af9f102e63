"""Asset group ``healing``: error/crash classification, parameter extraction, fix-strategy
selection and rule suggestion. Thin: each model asset maps its config into
:class:`~kforge.healing.config.HealingConfig` and calls
:func:`~kforge.healing.train.train_and_release` (the same function as ``kforge healing train``),
which reads the stored corpus tables and puts each model through the one release path (MLflow
``kforge/healing``, registered ``challenger``, champion scored on the same held-out groups, gates,
promotion). The asset checks are the release gates; a failed one blocks promotion without failing
the run.

* ``healing_corpus``: runs the shipped faulty programs; real tracebacks + real fix outcomes;
* ``healing_model``: rules + calibrated classifiers (real data with ``--data``, else the corpus),
  released as ``kforge-healing``; its metadata carries the per-source ``generalizes`` table;
* ``healing_strategies`` (Thompson-sampling posteriors, ``kforge-healing-bandit``) and
  ``healing_fix_effectiveness`` (P(fix works), ``kforge-healing-effectiveness``): one step;
* ``healing_rule_suggestions``: templates mined from errors no rule matched.
"""

import dagster as dg
import polars as pl
from kforge.dagster_io import DataResource, MlflowResource, WarehouseResource
from kforge.dagster_io.metadata import metric_entries, table_md
from kforge.dagster_io.release import release_check_results, release_checks, release_metadata
from kforge.dagster_io.resources import TextEncoderResource
from kforge.healing.config import HealingConfig
from kforge.healing.specs import BANDIT, CLASSIFIER, EFFECTIVENESS
from kforge.healing.train import store_corpus, train_and_release
from pydantic import Field

GROUP = "healing"
_D = HealingConfig()


class HealingTrainConfig(dg.Config):
    test_share: float = Field(default=_D.test_share, description="Share of groups (programs, crash titles, notebooks) "
                                                                 "held out, chosen by a hash of the group key.")
    seed: int = Field(default=_D.seed, description="Seed of the classifiers.")
    replay_steps: int = Field(default=_D.replay_steps, description="Steps of the held-out bandit replay (extra metrics).")
    prior_weight: float = Field(default=_D.prior_weight, description="Bandit prior pseudo-observations borrowed "
                                                                     "from the strategy's rate over all classes.")
    text_encoder: bool = Field(default=_D.text_encoder, description="Add the pretrained sentence encoder's members "
                               "(embeddings of the exception type and message) to the notebook classifier.")

    def healing_config(self, models: tuple[str, ...], data: DataResource | None = None) -> HealingConfig:
        return HealingConfig(data_dir=data.root() if data is not None else None, models=models,
                             test_share=self.test_share, seed=self.seed, replay_steps=self.replay_steps,
                             prior_weight=self.prior_weight, text_encoder=self.text_encoder)


@dg.asset(group_name=GROUP, description="Tracebacks and fix outcomes from actually running the shipped faulty programs.")
def healing_corpus(warehouse: WarehouseResource) -> dg.MaterializeResult:
    errors, outcomes = store_corpus(warehouse.get())
    return dg.MaterializeResult(metadata={
        "dagster/row_count": errors.height, "fix_outcomes": len(outcomes),
        "fix_success_rate": float(sum(o["success"] for o in outcomes) / max(len(outcomes), 1)),
        "preview": table_md(errors.select("program", "exit_code", "label_exception_type")),
    })


@dg.asset(group_name=GROUP, deps=[healing_corpus], check_specs=release_checks(CLASSIFIER),
          description="Rule engine + calibrated classifiers per label, released as kforge-healing.")
def healing_model(context: dg.AssetExecutionContext, config: HealingTrainConfig, warehouse: WarehouseResource,
                  mlflow: MlflowResource, data: DataResource, text_encoder: TextEncoderResource) -> dg.MaterializeResult:
    res = train_and_release(mlflow.tracker(), warehouse.get(), config.healing_config(("classifier",), data),
                            dagster_run_id=context.run.run_id,
                            encoder=text_encoder.encoder() if config.text_encoder else None)
    assert res.classifier is not None
    context.log.info(f"{CLASSIFIER.name} v{res.classifier.version}: {res.classifier.decision} ({res.classifier.reason})")
    gen = res.generalization
    generalizes = {**gen.summary(), "generalizes_per_source": table_md(gen.table)} if gen is not None else {}
    return dg.MaterializeResult(metadata={**release_metadata(res.classifier), **metric_entries(res.metrics["classifier"]),
                                          **generalizes},
                                check_results=release_check_results(res.classifier))


@dg.multi_asset(
    name="healing_strategies", group_name=GROUP,
    specs=[dg.AssetSpec(BANDIT.asset_key, deps=[healing_corpus], description="Thompson-sampling strategy posteriors per error class, "
                                                      "released as kforge-healing-bandit (table healing_strategy_scores)."),
           dg.AssetSpec(EFFECTIVENESS.asset_key, deps=[healing_corpus], description="P(fix works | class, strategy, exception type), "
                                                            "released as kforge-healing-effectiveness.")],
    check_specs=[*release_checks(BANDIT), *release_checks(EFFECTIVENESS)])
def healing_strategies(context: dg.AssetExecutionContext, config: HealingTrainConfig, warehouse: WarehouseResource,
                       mlflow: MlflowResource):
    res = train_and_release(mlflow.tracker(), warehouse.get(), config.healing_config(("bandit", "effectiveness")),
                            dagster_run_id=context.run.run_id)
    assert res.bandit is not None and res.effectiveness is not None and res.strategy_scores is not None
    table = res.strategy_scores
    for key, result in (("bandit", res.bandit), ("effectiveness", res.effectiveness)):
        context.log.info(f"{result.spec.name} v{result.version}: {result.decision} ({result.reason})")
        extra = {"dagster/row_count": table.height,
                 "strategies": table_md(table.sort("posterior_mean", descending=True))} if key == "bandit" else {}
        yield dg.MaterializeResult(asset_key=result.spec.asset_key, check_results=release_check_results(result),
                                   metadata={**release_metadata(result), **metric_entries(res.metrics[key]), **extra})


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
