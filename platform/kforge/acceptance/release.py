"""Train one acceptance model and put it through the one release path.

The Dagster assets (``assets/acceptance.py``) and ``kforge acceptance train`` both call
:func:`train_and_release`; nothing else logs, registers, scores the champion or gates an
acceptance model. The held-out rows are the time split's test rows, keyed by the target's id
column (``sha`` or ``email_id``); the champion is loaded from the registry and scored on exactly
those rows' feature columns.

Example::

    run = train_and_release(tracker, warehouse, "commit", TrainConfig(cutoff="2022-01-01"))
    run.result.decision, run.result.version
"""

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from kforge.acceptance.generalize import Generalization, leave_one_repository_out
from kforge.acceptance.metrics import auc, plots
from kforge.acceptance.model import REPO
from kforge.acceptance.pipeline import (
    commit_frame,
    email_source,
    email_training_frame,
    predictions_frame,
    store_predictions,
)
from kforge.acceptance.spec import BASELINES, FAMILY, METRIC, TargetSpec, spec_for
from kforge.acceptance.train import TrainConfig, TrainResult, train_and_evaluate
from kforge.features.pit import point_in_time_status
from kforge.registry.gates import GENERALIZES, not_run
from kforge.registry.release import Candidate, ReleaseResult, Scored, release
from kforge.registry.tracking import Tracker
from kforge.storage import Warehouse

NO_EMAILS = "no patch e-mails: set --data (acceptance_ltp.parquet) or run `kforge ingest-list`; nothing trained"


@dataclass(frozen=True)
class AcceptanceRun:
    """One training run of one target: its release result, or why nothing was trained."""

    spec: TargetSpec
    source: str
    result: ReleaseResult | None = None
    train: TrainResult | None = None
    plots: dict[str, Path] = field(default_factory=dict)
    predictions_stored: int = 0
    skipped: str = ""
    generalization: Generalization | None = None


def training_frame(wh: Warehouse, spec: TargetSpec, repos: Sequence[str] = (),
                   data_root: Path | None = None) -> tuple[pl.DataFrame | None, str]:
    """The target's training frame and where it came from (``None``: no e-mails to learn from)."""
    if spec.target == "commit":
        return commit_frame(wh, list(repos) or None), "warehouse:patch_features"
    mails, source = email_source(data_root, wh)
    return (None, source) if mails is None else (email_training_frame(mails, wh), source)


def _keys(spec: TargetSpec, rows: pl.DataFrame) -> list[str]:
    return [str(k) for k in rows[spec.id_col].to_list()]


def champion_scorer(spec: TargetSpec, test: pl.DataFrame) -> Callable[[Path], Scored]:
    """Scores a registered model directory on ``test`` (the challenger's held-out rows): its
    ROC AUC and the keys of those rows. A model that needs other feature columns raises here;
    the release path records it as the reason promotion is blocked."""
    y = test["y"].cast(pl.Int64).to_numpy()
    keys = _keys(spec, test)

    def score(model_dir: Path) -> Scored:
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(str(model_dir))
        schema = model.metadata.get_input_schema()
        missing = sorted(set(schema.required_input_names()) - set(spec.feature_columns)) if schema is not None else []
        if missing:  # say which columns, rather than MLflow's dump of the frame
            from kforge.errors import InputError

            raise InputError(f"the model needs feature columns this run does not have: {', '.join(missing)}")
        # the repository column too, when the model takes it: the challenger's own score used it (the cold-start
        # mode for a repository the model never trained on), so the champion is scored the same way
        takes_repo = schema is not None and REPO in schema.input_names() and REPO in test.columns
        out = model.predict(test.select(*spec.feature_columns, *([REPO] if takes_repo else [])).to_pandas())
        return Scored(auc(y, np.asarray(out.iloc[:, 0], dtype=float)), keys)

    return score


def model_saver(res: TrainResult) -> Callable[[Path], None]:
    """Writes the trained ensemble as an MLflow pyfunc (signature, input example, pinned pips)."""

    def save(model_dir: Path) -> None:
        import mlflow.pyfunc
        from mlflow.models import infer_signature

        from kforge.acceptance.pyfunc import PIP_REQUIREMENTS, AcceptancePyfunc

        spec = res.spec
        example = res.split.test.select(spec.feature_columns).head(5).to_pandas()
        wrapper = AcceptancePyfunc(res.model, spec.target, spec.score_col)
        signature = infer_signature(example, wrapper.predict(None, example))
        if res.model.cold_calibrator is not None:  # a served frame may name its repository: the cold-start mode
            from mlflow.types.schema import ColSpec, Schema

            signature.inputs = Schema([*signature.inputs.inputs, ColSpec("string", "repo", required=False)])
        mlflow.pyfunc.save_model(str(model_dir), python_model=wrapper, signature=signature, input_example=example,
                                 pip_requirements=PIP_REQUIREMENTS)

    return save


def generalization(res: TrainResult, config: TrainConfig) -> Generalization | None:
    """Leave one repository out on ``res``'s split (the ``generalizes`` gate), for a target whose
    model declares it and when the config asks for it."""
    if not res.spec.model.generalizes_over or not config.generalizes:
        return None
    return leave_one_repository_out(res.split, res.spec, list(res.model.numeric),
                                    n_estimators=config.generalizes_n_estimators, n_folds=min(config.n_folds, 2),
                                    use_text=res.model.text is not None, min_class=config.generalizes_min_class,
                                    prior_k=config.prior_k, group_balanced=config.group_balanced,
                                    text_encoder=res.model.text_encoder is not None,
                                    cold_start_weight=config.cold_start_weight)


def candidate(res: TrainResult, plots_dir: Path,
              generalizes: Generalization | None = None) -> tuple[Candidate, dict[str, Path]]:
    """The release-path candidate of a trained target, and its plots (ROC, PR, calibration).
    ``generalizes`` (leave one repository out) becomes the ``generalizes`` check, its metrics and a
    per-repository CSV; with one repository the gate is reported as not run and cannot block."""
    spec, m = res.spec, res.metrics
    pngs = plots(res.y_test, {k: v for k, v in res.scores.items() if k in ("model", *BASELINES)}, plots_dir)
    per_group = {}
    for row in res.per_group.head(10).iter_rows(named=True):
        safe = "".join(ch if ch.isalnum() or ch in "_-./" else "_" for ch in str(row[spec.group]))
        per_group[f"{METRIC}_{spec.group}_{safe}"] = float(row["roc_auc"])
    train = res.split.train
    cols = [c for c in (spec.id_col, "t", "y") if c in train.columns] + spec.feature_columns
    model_spec, checks, texts, loro_metrics = spec.model, list(res.gates), {}, {}
    tags = {"target": spec.target}
    if res.model.cold_calibrator is not None:  # what the cold-start mode treats as seen; any other repository is cold
        tags["trained_repositories"] = ",".join(res.model.seen_groups)[:5000]
    if spec.model.generalizes_over:
        if generalizes is None:
            checks.append(not_run(GENERALIZES, "leave-one-repository-out was not evaluated in this run "
                                               "(generalizes: false)"))
        else:
            checks.append(generalizes.check)
            loro_metrics = generalizes.metrics(METRIC)
            if generalizes.table.height:
                texts["generalizes_per_repository.csv"] = generalizes.table.write_csv()
            worst = generalizes.worst()
            if worst is not None:
                tags["generalizes_worst_group"] = worst
    cand = Candidate(
        model_spec, train_table=train.select(cols), eval_keys=_keys(spec, res.split.test),
        score=float(m.get(METRIC, float("nan"))),
        baselines={b: float(m.get(f"{METRIC}_{b}", float("nan"))) for b in BASELINES},
        checks=checks, params=dict(res.params), metrics={**m, **per_group, **loro_metrics}, plots=list(pngs.values()),
        texts={f"per_{spec.group}_metrics.csv": res.per_group.write_csv(),
               "feature_contributions.csv": res.importances.write_csv(), **texts},
        tags=tags, save_model=model_saver(res),
        score_registered=champion_scorer(spec, res.split.test))
    return cand, pngs


def train_and_release(tracker: Tracker, wh: Warehouse, target: str, config: TrainConfig, *,
                      repos: Sequence[str] = (), data_root: Path | None = None, dagster_run_id: str = "",
                      plots_dir: Path | None = None) -> AcceptanceRun:
    """Train ``target`` (commit | email) on a time split, release it (log, register, score the
    champion on the same rows, gate, promote), then store the drift reference and predictions."""
    spec = spec_for(target)
    frame, source = training_frame(wh, spec, repos, data_root)
    if frame is None:
        return AcceptanceRun(spec, source, skipped=NO_EMAILS)
    pit = point_in_time_status(wh, wh.read_table("patch_features")) if spec.target == "commit" else None
    from kforge.text import TextEncoder, use_encoder

    with use_encoder(TextEncoder(tracker.paths, wh)):  # the encoder member embeds through it; cache in this warehouse
        res = train_and_evaluate(frame, spec, config, pit_passed=pit)
        loro = generalization(res, config)
        cand, pngs = candidate(res, plots_dir or Path(tempfile.mkdtemp(prefix=f"kforge-acceptance-{target}-")), loro)
        result = release(tracker, cand, dagster_run_id=dagster_run_id)
        from kforge.monitoring.calls import set_training_reference

        set_training_reference(wh, FAMILY, spec.model_name, result.version, res.split.train.select(spec.numeric))
        # the drift check compares these with the held-out Brier: never the model's own training rows
        live = frame.filter(~pl.col(spec.id_col).is_in(res.split.train[spec.id_col].implode()))
        stored = (store_predictions(wh, predictions_frame(live, spec, res.model.predict_proba(live), result.version))
                  if live.height else 0)
    return AcceptanceRun(spec, source, result, res, pngs, stored, generalization=loro)
