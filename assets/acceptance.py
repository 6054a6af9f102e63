"""Asset group ``acceptance``: will a commit survive (not later fixed/reverted), will a patch
e-mail be merged. Each model asset maps its config into :class:`TrainConfig` and calls
:func:`~kforge.acceptance.release.train_and_release` (the same function as
``kforge acceptance train``): a time split, then the one release path (MLflow ``kforge/acceptance``,
registered ``challenger``, champion scored on the same held-out rows, gates, promotion). Its asset
checks are the release gates; a failed one blocks promotion without failing the run. The commit
model's ``generalizes`` gate leaves one repository out (not run with a single repository).

Without patch e-mails the e-mail model trains nothing: the asset is not materialized (no model
version, nothing downstream runs), an observation carries the reason (``skipped``), the run is
tagged ``kforge/skipped``, and every declared check is reported as not run (WARN).
"""

from collections.abc import Iterator

import dagster as dg
from kforge.acceptance.release import AcceptanceRun, train_and_release
from kforge.acceptance.spec import COMMIT_MODEL, EMAIL_MODEL
from kforge.acceptance.train import TrainConfig
from kforge.dagster_io import DataResource, MlflowResource, WarehouseResource
from kforge.dagster_io.metadata import metric_entries, plot_md, table_md
from kforge.dagster_io.release import release_check_results, release_checks, release_metadata
from pydantic import Field

GROUP = "acceptance"
_D = TrainConfig()


class AcceptanceConfig(dg.Config):
    cutoff: str = Field(default=_D.cutoff, description="Train before this ISO date; empty = last test_fraction of observable rows are the test set.")
    test_end: str = Field(default=_D.test_end, description="Test window end (ISO date); empty = up to the label snapshot.")
    test_fraction: float = Field(default=_D.test_fraction, description="Share of observable rows held out when cutoff is empty.")
    min_observation_days: int = Field(default=_D.min_observation_days, description="Right-censoring: rows observed for fewer days are excluded.")
    train_labels: str = Field(default=_D.train_labels, description="as_of_cutoff (what was known at the cutoff) or snapshot.")
    repos: list[str] = Field(default=[], description="Commit model: repositories to train on (empty = all).")
    n_estimators: int = Field(default=_D.n_estimators, description="Trees per gradient-boosting model.")
    n_folds: int = Field(default=_D.n_folds, description="Time-ordered folds for the out-of-fold stack.")
    use_text: bool = Field(default=_D.use_text, description="Include the hashed n-gram text model.")
    min_test_rows: int = Field(default=_D.min_test_rows, description="test_size gate: minimum held-out rows.")
    min_test_class: int = Field(default=_D.min_test_class, description="test_size gate: minimum held-out rows of each class.")
    min_diff_coverage: float = Field(default=_D.min_diff_coverage, description="Use diff/line-origin features only if this share of training rows has them.")
    prior_k: float = Field(default=_D.prior_k, description="Cold start: blend with lines added, the model's weight = training positives / (positives + prior_k); 0 = off.")
    cold_start_weight: float | None = Field(default=_D.cold_start_weight, description="Cold-start mode: the stack's weight (0 < w <= 1) against lines added on rows of a repository the model never trained on; null = off (unseen repositories scored like the training ones).")
    group_balanced: bool = Field(default=_D.group_balanced, description="Two or more repositories: within each repository each class weighs half (base rates neutralised), in every member.")
    text_encoder: bool = Field(default=_D.text_encoder, description="Add a member on pretrained sentence embeddings of subject and body (issue 20; off until it shows a held-out gain).")
    generalizes: bool = Field(default=_D.generalizes, description="Commit model: leave one repository out (the generalizes gate).")
    generalizes_n_estimators: int = Field(default=_D.generalizes_n_estimators, description="Trees per boosted model in each leave-one-repository-out fit.")
    generalizes_min_class: int = Field(default=_D.generalizes_min_class, description="A held-out repository is judged only with this many test rows of each class.")

    def train_config(self) -> TrainConfig:
        return TrainConfig(cutoff=self.cutoff, test_end=self.test_end, min_observation_days=self.min_observation_days,
                           test_fraction=self.test_fraction, n_folds=self.n_folds, n_estimators=self.n_estimators,
                           min_test_rows=self.min_test_rows, min_test_class=self.min_test_class,
                           use_text=self.use_text, train_labels=self.train_labels,
                           min_diff_coverage=self.min_diff_coverage, prior_k=self.prior_k,
                           cold_start_weight=self.cold_start_weight,
                           group_balanced=self.group_balanced, text_encoder=self.text_encoder, generalizes=self.generalizes,
                           generalizes_n_estimators=self.generalizes_n_estimators,
                           generalizes_min_class=self.generalizes_min_class)


def _skipped(context: dg.AssetExecutionContext, run: AcceptanceRun) -> Iterator[dg.AssetObservation | dg.AssetCheckResult]:
    """Nothing trained: no materialization (so no model version in the UI), the reason as an
    observation and a run tag, every declared check not run (WARN)."""
    key = run.spec.model.asset_key
    context.log.warning(f"{key} skipped: {run.skipped}")
    context.instance.add_run_tags(context.run.run_id, {"kforge/skipped": key})
    yield dg.AssetObservation(asset_key=key, metadata={"skipped": run.skipped, "source": run.source, "family": GROUP,
                                                          "model": run.spec.model_name})
    for g in run.spec.model.gate_specs():
        yield dg.AssetCheckResult(asset_key=key, check_name=g.name, passed=False, severity=dg.AssetCheckSeverity.WARN,
                                  description=f"not run: {run.skipped}",
                                  metadata={"status": "not run", "detail": run.skipped})


def _generalizes_md(run: AcceptanceRun) -> dict[str, object]:
    g = run.generalization
    if g is None:
        return {}
    c = g.check
    md: dict[str, object] = {"generalizes": "not run" if c.passed is None else ("passed" if c.passed else "failed"),
                             "generalizes_detail": c.detail}
    if g.table.height:
        md["generalizes_per_repository"] = table_md(g.table)
    md.update({k: round(v, 4) for k, v in g.metrics(run.result.spec.metric if run.result else "test_roc_auc").items()
               if k.endswith(("_mean", "worst_delta"))})
    worst = g.worst()
    if worst is not None:
        md["generalizes_worst_repository"] = worst
    return md


def _result(context: dg.AssetExecutionContext, run: AcceptanceRun) -> dg.MaterializeResult:
    assert run.result is not None and run.train is not None
    res = run.train
    context.log.info(f"{run.spec.model_name} v{run.result.version}: {run.result.decision} ({run.result.reason})")
    head = {k: v for k, v in res.metrics.items() if k.startswith("test_roc_auc") or k in
            ("test_pr_auc", "test_f1", "test_brier", "test_ece")}
    return dg.MaterializeResult(
        metadata={**release_metadata(run.result), **metric_entries(head), **res.split.describe(),
                  "per_group": table_md(res.per_group), "top_contributions": table_md(res.importances.head(15)),
                  "roc": plot_md(run.plots["roc"], run.result.run_id),
                  "calibration": plot_md(run.plots["calibration"], run.result.run_id),
                  "predictions_stored": run.predictions_stored, "source": run.source, **_generalizes_md(run)},
        check_results=release_check_results(run.result))


@dg.asset(group_name=GROUP, deps=["patch_features", "commit_chains"], check_specs=release_checks(COMMIT_MODEL),
          description="P(a merged commit is later fixed or reverted): LightGBM+XGBoost+text, stacked and calibrated.")
def acceptance_commit_model(context: dg.AssetExecutionContext, config: AcceptanceConfig, warehouse: WarehouseResource,
                            mlflow: MlflowResource) -> dg.MaterializeResult:
    run = train_and_release(mlflow.tracker(), warehouse.get(), "commit", config.train_config(), repos=config.repos,
                            dagster_run_id=context.run.run_id)
    return _result(context, run)


@dg.asset(group_name=GROUP, check_specs=release_checks(EMAIL_MODEL), output_required=False,
          description="P(a patch e-mail is merged): real LTP e-mails with --data, else the ingest-list table "
                      "(without either: skipped, not materialized).")
def acceptance_email_model(context: dg.AssetExecutionContext, config: AcceptanceConfig, warehouse: WarehouseResource,
                           mlflow: MlflowResource, data: DataResource) -> Iterator[object]:
    run = train_and_release(mlflow.tracker(), warehouse.get(), "email", config.train_config(), data_root=data.root(),
                            dagster_run_id=context.run.run_id)
    if run.result is None:
        yield from _skipped(context, run)
    else:
        yield _result(context, run)


defs = dg.Definitions(assets=[acceptance_commit_model, acceptance_email_model])
