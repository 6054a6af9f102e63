"""Asset group ``mixins``: observed outcomes of mixin combinations and the learners on them.

``mixin_catalogue`` (introspected traits) -> ``mixin_outcomes`` (append-only: exercise harness
batch + new feedback) -> ``mixin_compatibility_matrix`` (aggregated) -> ``mixin_model``
(:func:`kforge.mixins.release.train_and_release`: evaluate on three splits vs the Beta-binomial
and rule baselines, leakage checks, then the release path; its blocking checks block promotion).
"""

import dagster as dg
import polars as pl
from kforge.dagster_io import MlflowResource, WarehouseResource
from kforge.dagster_io.metadata import metric_entries, plot_md, table_md
from kforge.dagster_io.release import release_check_results, release_checks, release_metadata
from kforge.mixins import pipeline
from kforge.mixins.catalogue import load_catalogue
from kforge.mixins.outcomes import read_outcomes
from kforge.mixins.release import SPEC, TrainConfig
from pydantic import Field

GROUP = "mixins"


class OutcomesConfig(dg.Config):
    run_harness: bool = Field(default=True, description="Run an exercise-harness batch (else only ingest feedback).")
    trials_per_pair: int = Field(default=6, description="Trials per (mixin pair, node type) in a harness batch.")
    n_sets: int = Field(default=60, description="Random 3-mixin sets exercised per batch.")
    trials_per_set: int = Field(default=4, description="Trials per sampled set.")
    seed: int = Field(default=-1, description="Harness seed; -1 = number of stored outcomes (new batch each run).")


class ModelConfig(dg.Config):
    seed: int = Field(default=0, description="Seed for splits, masking and the models.")
    min_delta: float = Field(default=0.0, description="Brier improvement the challenger needs to be promoted.")


@dg.asset(group_name=GROUP, description="Traits introspected from the mixin and node classes (builtin + registered).")
def mixin_catalogue(warehouse: WarehouseResource) -> dg.MaterializeResult:
    cat = load_catalogue(warehouse.paths())
    frame = pipeline.refresh_catalogue(warehouse.get(), cat)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": frame.height, "mixins": len(cat.mixins), "node_types": len(cat.nodes),
        "registered_modules": len({o for o in cat.origin.values()}),
        "preview": table_md(frame.select("name", "kind", "category", "hooks", "hook_breaks_chain", "reinvokes",
                                         "short_circuits", "state_writes", "sinks"), 25)})


@dg.asset(group_name=GROUP, deps=[mixin_catalogue],
          description="Append-only observed outcomes: harness trials, imported matrices, production feedback.")
def mixin_outcomes(config: OutcomesConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    cat = load_catalogue(warehouse.paths())
    added = 0
    if config.run_harness:
        added = pipeline.run_harness(wh, cat, trials_per_pair=config.trials_per_pair, n_sets=config.n_sets,
                                     trials_per_set=config.trials_per_set, seed=None if config.seed < 0 else config.seed)
    fb = pipeline.ingest_feedback(wh)
    out = read_outcomes(wh)
    by_source = (out.with_columns(pl.col("source").str.split(":").list.first().alias("kind"))
                 .group_by("kind").agg(pl.len().alias("rows"), pl.col("passed").mean().alias("pass_rate")).sort("kind"))
    reasons = (out.filter(~pl.col("passed")).group_by("conflict_reason").len().sort("len", descending=True))
    return dg.MaterializeResult(metadata={
        "dagster/row_count": out.height, "harness_trials_added": added, "feedback_rows_added": fb,
        "by_source": table_md(by_source), "conflict_reasons": table_md(reasons, 25),
        **({"pass_rate": float(out["passed"].mean())} if out.height else {})})   # no outcomes: no rate, not 0.0


@dg.asset(group_name=GROUP, deps=[mixin_outcomes],
          description="Success/failure counts, last tested and top conflict reason per (combination, node type).")
def mixin_compatibility_matrix(warehouse: WarehouseResource) -> dg.MaterializeResult:
    matrix = pipeline.refresh_matrix(warehouse.get())
    pairs = matrix.filter(pl.col("set_size") == 2)
    worst = pairs.sort("success_rate").select("combination", "node_type", "success_count", "failure_count",
                                              "conflict_reason").head(15)
    return dg.MaterializeResult(metadata={"dagster/row_count": matrix.height, "pair_rows": pairs.height,
                                          "least_compatible": table_md(worst)})


@dg.asset(group_name=GROUP, deps=[mixin_compatibility_matrix], check_specs=release_checks(SPEC),
          description="Calibrated LightGBM+RF compatibility model, released as kforge-mixins (gated).")
def mixin_model(context: dg.AssetExecutionContext, config: ModelConfig, warehouse: WarehouseResource,
                mlflow: MlflowResource) -> dg.MaterializeResult:
    from kforge.mixins.release import train_and_release

    run = train_and_release(mlflow.tracker(), warehouse.get(), TrainConfig(seed=config.seed, min_delta=config.min_delta),
                            dagster_run_id=context.run.run_id)
    result = run.train
    headline = {k: v for k, v in result.headline().items() if not k.endswith("_n") and "fold" not in k}
    groups = result.per_mixin()
    worst = groups.sort("delta_roc_auc").row(0, named=True) if groups.height else {}
    transfer = result.predictor.transfer
    return dg.MaterializeResult(
        metadata={**release_metadata(run.release), "n_outcomes": result.n_outcomes,
                  "cache_entries_invalidated": run.cache_entries_invalidated,
                  "evaluation": table_md(result.evaluation.table()), **metric_entries(headline),
                  "calibration": plot_md(run.calibration_plot, run.release.run_id),
                  "unseen_mixin_scorer": transfer.served_by if transfer is not None else "learner",
                  "generalizes_fallback_mixins": ", ".join(result.fallback_mixins()) or "none",
                  "generalizes_by_mixin": table_md(groups.select(
                      "mixin", "n", "served_by", "shrink", "model_roc_auc", "rules_roc_auc", "learner_roc_auc", "delta_roc_auc")),
                  "generalizes_worst_mixin": str(worst.get("mixin", "")),
                  "generalizes_worst_delta_roc_auc": float(worst.get("delta_roc_auc", float("nan")))},
        check_results=release_check_results(run.release))


defs = dg.Definitions(assets=[mixin_catalogue, mixin_outcomes, mixin_compatibility_matrix, mixin_model])
