"""Leave one repository out: does the commit model hold on a repository it has never seen?

For each repository with rows in the time split's test window, a model of the same kind (fewer
trees, :attr:`TrainConfig.generalizes_n_estimators`) is trained on the *other* repositories'
training rows and scores that repository's test-window rows; lines-added (LApredict, fit on the
same training rows) scores the same rows. The per-repository pairs feed the release path's
``generalizes`` gate (:func:`kforge.registry.gates.generalizes_check`): the model must beat
lines-added on every held-out repository. A repository whose window has fewer than
``generalizes_min_class`` rows of either class is listed but not judged (its AUC would be noise).
With fewer than two repositories there is nothing to leave out and the gate does not run.

Example::

    loro = leave_one_repository_out(res.split, COMMIT, TrainConfig(generalizes_n_estimators=100))
    loro.check.passed, loro.table
"""

from dataclasses import dataclass

import numpy as np
import polars as pl

from kforge.acceptance.dataset import Split
from kforge.acceptance.metrics import auc, fit_baselines
from kforge.acceptance.model import COLD_START_WEIGHT, REPO, AcceptanceEnsemble
from kforge.acceptance.spec import TargetSpec
from kforge.acceptance.train import balance_group, blend_args
from kforge.registry.gates import GENERALIZES, Check, generalizes_check, not_run

GROUP = REPO
MIN_TRAIN_ROWS = 50


@dataclass(frozen=True)
class Generalization:
    """Per-repository results (``table``: repo, rows, positives, model and lines-added AUC, delta,
    status) and the ``generalizes`` check built from the judged ones."""

    table: pl.DataFrame
    check: Check

    def worst(self) -> str | None:
        """The judged group with the lowest delta against lines-added (None: none judged)."""
        if "status" not in self.table.columns:
            return None
        judged = self.table.filter(pl.col("status") == "judged")
        return str(judged.sort("delta")[GROUP][0]) if judged.height else None

    def metrics(self, metric: str) -> dict[str, float]:
        """MLflow metrics: ``generalizes_<metric>_<repo>`` (model) and ``..._lines_added_<repo>``,
        the mean over judged repositories and the worst delta."""
        out: dict[str, float] = {}
        if "status" not in self.table.columns:
            return out
        judged = self.table.filter(pl.col("status") == "judged")
        for row in judged.iter_rows(named=True):
            safe = _safe(row[GROUP])
            out[f"generalizes_{metric}_{safe}"] = row["model_auc"]
            out[f"generalizes_{metric}_lines_added_{safe}"] = row["lines_added_auc"]
        if judged.height:
            out[f"generalizes_{metric}_mean"] = float(judged["model_auc"].mean())  # type: ignore[arg-type]
            out[f"generalizes_{metric}_lines_added_mean"] = float(judged["lines_added_auc"].mean())  # type: ignore[arg-type]
            out["generalizes_worst_delta"] = float(judged["delta"].min())  # type: ignore[arg-type]
        return out


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-./" else "_" for ch in str(name))


def _row(repo: str, n_train: int, test: pl.DataFrame, model: float, base: float, status: str) -> dict[str, object]:
    pos = int(test["y"].sum()) if test.height else 0
    return {GROUP: repo, "n_train": n_train, "n_test": test.height, "positives": pos, "model_auc": model,
            "lines_added_auc": base, "delta": model - base if model == model and base == base else float("nan"),
            "status": status}


def leave_one_repository_out(split: Split, spec: TargetSpec, numeric: list[str], *, n_estimators: int,
                             n_folds: int = 2, use_text: bool = True, min_class: int = 10,
                             prior_k: float = 0.0, group_balanced: bool = True,
                             text_encoder: bool = False,
                             cold_start_weight: float | None = COLD_START_WEIGHT) -> Generalization:
    """Train without each repository in turn on ``split``'s training rows and score that
    repository's test-window rows (the frames carry a ``repo`` column)."""
    return leave_one_group_out(split.train, split.test, spec, numeric, n_estimators=n_estimators, n_folds=n_folds,
                               use_text=use_text, min_class=min_class, prior_k=prior_k,
                               group_balanced=group_balanced, text_encoder=text_encoder,
                               cold_start_weight=cold_start_weight)


def leave_one_group_out(train: pl.DataFrame, test: pl.DataFrame, spec: TargetSpec, numeric: list[str], *,
                        n_estimators: int, n_folds: int = 2, use_text: bool = True, min_class: int = 10,
                        prior_k: float = 0.0, group_balanced: bool = True,
                        text_encoder: bool = False,
                        cold_start_weight: float | None = COLD_START_WEIGHT) -> Generalization:
    """The machinery behind :func:`leave_one_repository_out`, on any pair of frames whose ``repo``
    column names the group (a repository, or a project of the JIT anchors) and ``t`` the time: for each group with
    test rows, the model is fit on the *other* groups' ``train`` rows (time-ordered) and scores the
    group's ``test`` rows (which the model scores in its cold-start mode: the group is one it never trained
    on); lines-added is fit on the same rows. ``spec.model.generalizes_over``
    names the group in the check's wording."""
    unit = spec.model.generalizes_over or "repository"
    if GROUP not in test.columns:
        return Generalization(pl.DataFrame(), not_run(GENERALIZES, f"the rows carry no {unit}"))
    repos = sorted(str(r) for r in test[GROUP].unique().to_list())
    known = sorted(set(repos) | {str(r) for r in train[GROUP].unique().to_list()})
    rows: list[dict[str, object]] = []
    pairs: dict[str, tuple[float, float]] = {}
    for repo in repos if len(known) > 1 else []:
        tr = train.filter(pl.col(GROUP) != repo).sort("t", maintain_order=True)  # time-ordered folds
        te = test.filter(pl.col(GROUP) == repo)
        y_tr = tr["y"].cast(pl.Int64).to_numpy()
        y_te = te["y"].cast(pl.Int64).to_numpy()
        pos = int(y_te.sum())
        if tr.height < MIN_TRAIN_ROWS or len(np.unique(y_tr)) < 2:
            rows.append(_row(repo, tr.height, te, float("nan"), float("nan"), "too few training rows elsewhere"))
            continue
        if pos < min_class or te.height - pos < min_class:
            rows.append(_row(repo, tr.height, te, float("nan"), float("nan"),
                             f"too few test rows of a class (< {min_class})"))
            continue
        model = AcceptanceEnsemble(numeric, list(spec.categorical), spec.text if use_text else None,
                                   n_folds=n_folds, n_estimators=n_estimators,
                                   **blend_args(tr, spec, prior_k, cold_start_weight),
                                   group=balance_group(tr, group_balanced, GROUP),
                                   text_encoder=spec.text if text_encoder else None).fit(tr, y_tr)
        m = auc(y_te, model.predict_proba(te))
        b = auc(y_te, fit_baselines(tr, y_tr, te, [spec.lines_added], spec.lines_added)["lines_added"])
        rows.append(_row(repo, tr.height, te, m, b, "judged"))
        pairs[repo] = (m, b)
    table = pl.DataFrame(rows, schema={GROUP: pl.String, "n_train": pl.Int64, "n_test": pl.Int64,
                                        "positives": pl.Int64, "model_auc": pl.Float64,
                                        "lines_added_auc": pl.Float64, "delta": pl.Float64, "status": pl.String})
    if len(known) < 2:
        return Generalization(table, not_run(GENERALIZES, f"{len(known)} {unit} in the data: "
                                                          "nothing to leave out"))
    check = generalizes_check(spec.model, pairs)
    unjudged = table.filter(pl.col("status") != "judged")
    if unjudged.height:
        note = "; not judged: " + ", ".join(f"{r} ({s})" for r, s in unjudged.select(GROUP, "status").iter_rows())
        check = Check(check.name, check.passed, (check.detail + note)[:1000], check.numbers)
    return check_with_table(Generalization(table, check))


def check_with_table(g: Generalization) -> Generalization:
    """Per-repository model and baseline AUCs in the check's numbers too (the asset check shows them)."""
    extra: dict[str, float] = {}
    for row in g.table.filter(pl.col("status") == "judged").iter_rows(named=True):
        extra[f"model[{row[GROUP]}]"] = round(float(row["model_auc"]), 4)
        extra[f"lines_added[{row[GROUP]}]"] = round(float(row["lines_added_auc"]), 4)
    c = g.check
    return Generalization(g.table, Check(c.name, c.passed, c.detail, {**c.numbers, **extra}))
