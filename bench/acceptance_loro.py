"""Leave-one-repository-out ablations for the acceptance commit model (issue 16).

Every repository in ``--data`` (``kernel/*.commits.parquet``); time split at 2022-01-01 (training
labels as of the cutoff, rows observed >= 180 days), test window 2022. For each repository with
rows in the window: fit on the *other* repositories' training rows, score its 2022 rows, compare
with lines-added (LApredict, fit on the same rows). Prints one JSON line per variant.

    .venv/bin/python bench/acceptance_loro.py --data ../shared/data --variants ensemble,lgbm,lgbm_balanced
    .venv/bin/python bench/acceptance_loro.py --data ../shared/data --jit --variants shipped,no_blend

``--jit``: the JIT anchors cross-project instead (:mod:`kforge.acceptance.jit_cross`: each project's last
20% by date, scored by fits on the other projects' first 80%), with the variants in ``JIT_VARIANTS``;
``shipped`` is what ``kforge acceptance evaluate jit-cross`` fits.

Variants (see ``VARIANTS``): ``ensemble`` is today's shipped model (``AcceptanceEnsemble``, text
included, 100 trees, 2 folds: what the ``generalizes`` gate fits); the others are the ablations in
docs/notes/issue-16-acceptance.md. ``shipped`` (and ``shipped_*``, JIT ``power_*``, ``monotone_*``,
``balanced_boosted_only``, ``unbalanced``) fit the gate's ensemble with its session-7 switches: per-group class
balance (``group_power``, ``balanced_members``), monotone constraints. ``pct`` features are percentile ranks within the repository's own
history (the up to 2,000 commits of the same repository before the start of the commit's 30-day block).
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from kforge.acceptance.dataset import parse_date, time_split  # noqa: E402
from kforge.acceptance.evaluate import repo_frame, shared_repositories  # noqa: E402
from kforge.acceptance.jit_cross import jit_cross_frames  # noqa: E402
from kforge.acceptance.metrics import auc, fit_baselines  # noqa: E402
from kforge.acceptance.model import AcceptanceEnsemble, lgbm  # noqa: E402
from kforge.acceptance.spec import COMMIT  # noqa: E402
from kforge.acceptance.train import usable_numeric  # noqa: E402
from kforge.features.jit import JIT_COLUMNS  # noqa: E402

Fit = Callable[[pl.DataFrame, np.ndarray, pl.DataFrame], np.ndarray]
SIZE = ["la", "ld", "nf", "nd", "ns", "entropy", "la_code", "ld_code", "nf_code", "lt", "new_files",
        "la_code_new_files", "la_code_existing_files"]
OTHER = ["exp", "rexp", "sexp", "ndev", "age", "nuc", "author_tenure_days", "author_prior_fixes", "author_prior_bugs",
         "file_prior_bugs", "files_with_prior_bugs", "body_len", "body_lines", "subject_len", "rationale_words",
         "subsystem_commits", "subsystem_commits_1y", "subsystem_fix_rate_1y", "files_recently_fixed", "file_fixes_1y",
         "n_fixes"]
BLOCK = 30 * 86400


def pct_prior(t: np.ndarray, x: np.ndarray, window: int = 2000) -> np.ndarray:
    """Mid-rank percentile of each x among the (up to ``window``) earlier rows before its 30-day block
    (point in time: only commits from before the block start); 0.5 without history."""
    out = np.full(len(x), 0.5)
    starts = np.searchsorted(t, (t // BLOCK) * BLOCK, side="left")
    for s in np.unique(starts):
        if s == 0:
            continue
        rows = starts == s
        ref = np.sort(x[max(0, s - window):s])
        out[rows] = (np.searchsorted(ref, x[rows], "left") + np.searchsorted(ref, x[rows], "right")) / 2 / len(ref)
    return out


def with_repo_normalised(frame: pl.DataFrame) -> pl.DataFrame:
    parts = []
    for _, g in frame.sort("repo", "t", "sha").group_by("repo", maintain_order=True):
        t = g["t"].to_numpy()
        new = {f"pct_{c}": pct_prior(t, g[c].cast(pl.Float64).to_numpy()) for c in SIZE + OTHER}
        ev = np.sort(g["event_ts"].drop_nulls().to_numpy())  # fixes landed before t / commits before t
        new["repo_fix_rate"] = np.searchsorted(ev, t, "left") / np.maximum(np.searchsorted(t, t, "left"), 1)
        parts.append(g.with_columns(**{k: pl.Series(v) for k, v in new.items()}))
    return pl.concat(parts)


def balanced_weights(tr: pl.DataFrame, y: np.ndarray) -> np.ndarray:
    """Each repository weighs the same, and within it each class half: between-repository base-rate
    differences carry no signal."""
    d = tr.select("repo").with_columns(pl.Series("y", y))
    d = d.join(d.group_by("repo").agg(pl.col("y").mean().alias("r"), pl.len().alias("n")), on="repo", how="left")
    w = np.where(d["y"].to_numpy() == 1, 0.5 / d["r"].to_numpy(), 0.5 / (1 - d["r"].to_numpy())) / d["n"].to_numpy()
    return w / w.mean()


def ensemble(numeric: list[str], text: str | None = "text", n: int = 100) -> Fit:
    return lambda tr, y, te: AcceptanceEnsemble(numeric, ["subsystem"], text, n_folds=2, n_estimators=n).fit(
        tr, y).predict_proba(te)


ALL_MEMBERS = ("lightgbm", "xgboost", "linear", "text", "encoder")


def gate_ensemble(numeric: list[str], categorical: tuple[str, ...] = ("subsystem",), text: str | None = "text",
                  n: int = 100, folds: int = 2, prior_k: float = 500.0, balanced: tuple[str, ...] | None = ALL_MEMBERS,
                  monotone: tuple[str, ...] = (), power: float = 1.0) -> Fit:
    """The ensemble as the ``generalizes`` gate fits it (cold-start blend, per-group balanced weights on
    ``balanced`` members; None: global class weights, the session-6 model), with ablation switches."""
    def fit(tr: pl.DataFrame, y: np.ndarray, te: pl.DataFrame) -> np.ndarray:
        m = AcceptanceEnsemble(numeric, list(categorical), text, n_folds=folds, n_estimators=n,
                               prior="la" if prior_k > 0 else None, prior_k=prior_k,
                               group="repo" if balanced else None, balanced_members=balanced or (),
                               monotone=monotone, group_power=power)
        return m.fit(tr, y).predict_proba(te)
    return fit


def one_lgbm(numeric: list[str], balanced: bool = False, mono: tuple[str, ...] = (), **params: object) -> Fit:
    def fit(tr: pl.DataFrame, y: np.ndarray, te: pl.DataFrame) -> np.ndarray:
        m = lgbm(1.0, 300)
        m.set_params(**params)
        if mono:
            m.set_params(monotone_constraints=[1 if c in mono else 0 for c in numeric])
        w = balanced_weights(tr, y) if balanced else None
        ps = []
        for seed in (7, 8, 9):
            m.set_params(random_state=seed)
            m.fit(tr.select(numeric).to_numpy(), y, sample_weight=w)
            ps.append(m.predict_proba(te.select(numeric).to_numpy())[:, 1])
        return np.mean(ps, axis=0)
    return fit


def boost_from_lines_added(numeric: list[str], n: int) -> Fit:
    """Cold start by construction: boosting starts from LApredict's logit (init_score)."""
    from sklearn.linear_model import LogisticRegression

    def fit(tr: pl.DataFrame, y: np.ndarray, te: pl.DataFrame) -> np.ndarray:
        w = balanced_weights(tr, y)
        xl = lambda d: np.log1p(d.select("la").to_numpy().astype(float))  # noqa: E731
        base = LogisticRegression(max_iter=1000).fit(xl(tr), y, sample_weight=w)
        i_tr, i_te = base.decision_function(xl(tr)), base.decision_function(xl(te))
        m = lgbm(1.0, n)
        ps = []
        for seed in (7, 8, 9):
            m.set_params(random_state=seed)
            m.fit(tr.select(numeric).to_numpy(), y, sample_weight=w, init_score=i_tr)
            ps.append(m.predict(te.select(numeric).to_numpy(), raw_score=True) + i_te)
        return np.mean(ps, axis=0)
    return fit


def rank_blend(inner: Fit, k: float | None = None, weight: float = 0.5) -> Fit:
    """Average of the model's rank and lines-added's rank on the scored rows; with ``k`` the model's
    weight is positives / (positives + k) of its training rows (little evidence: lean on size)."""
    from scipy.stats import rankdata

    def fit(tr: pl.DataFrame, y: np.ndarray, te: pl.DataFrame) -> np.ndarray:
        w = y.sum() / (y.sum() + k) if k is not None else weight
        return w * rankdata(inner(tr, y, te)) + (1 - w) * rankdata(te["la"].to_numpy())
    return fit


def variants(numeric: list[str]) -> dict[str, Callable[[], Fit]]:
    p_size, p_all = [f"pct_{c}" for c in SIZE], [f"pct_{c}" for c in SIZE + OTHER]
    rest = [c for c in numeric if c not in SIZE + OTHER]
    return {
        "ensemble": lambda: ensemble(numeric), "ensemble_notext": lambda: ensemble(numeric, None),
        "lgbm": lambda: one_lgbm(numeric), "lgbm+pct_size": lambda: one_lgbm(numeric + p_size),
        "lgbm+pct_all": lambda: one_lgbm(numeric + p_all), "lgbm_pct_instead": lambda: one_lgbm(p_all + rest),
        "lgbm_balanced": lambda: one_lgbm(numeric, True),
        "lgbm_balanced_pct_instead": lambda: one_lgbm(p_all + rest, True),
        "lgbm_balanced_pct_instead_monotone": lambda: one_lgbm(p_all + rest, True, tuple(p_size)),
        "lgbm_balanced_pct_instead_monotone_small": lambda: one_lgbm(p_all + rest, True, tuple(p_size), num_leaves=7,
                                                                     min_child_samples=100),
        "boost_from_la_150": lambda: boost_from_lines_added(numeric, 150),
        "boost_from_la_pct_150": lambda: boost_from_lines_added(p_all + rest, 150),
        "boost_from_la_pct_50": lambda: boost_from_lines_added(p_all + rest, 50),
        "rank_blend_0.5": lambda: rank_blend(one_lgbm(numeric, True)),
        "rank_blend_0.3": lambda: rank_blend(one_lgbm(numeric, True), weight=0.3),
        "rank_blend_evidence_500": lambda: rank_blend(one_lgbm(numeric, True), k=500),
        "rank_blend_evidence_500_ensemble": lambda: rank_blend(ensemble(numeric), k=500),
        "shipped": lambda: gate_ensemble(numeric),
        "shipped_unbalanced": lambda: gate_ensemble(numeric, balanced=None),
        "shipped_balanced_boosted_only": lambda: gate_ensemble(numeric, balanced=("lightgbm", "xgboost")),
        "shipped_monotone_la": lambda: gate_ensemble(numeric, monotone=("la",)),
        "shipped_power_0": lambda: gate_ensemble(numeric, power=0.0),
        "shipped_power_0.5": lambda: gate_ensemble(numeric, power=0.5),
        "shipped_power_1": lambda: gate_ensemble(numeric, power=1.0),
        "shipped_monotone_size": lambda: gate_ensemble(numeric, monotone=MONOTONE_SIZE),
    }


MONOTONE_SIZE = ("la", "ld", "nf", "nd", "ns", "entropy")  # bigger, more spread changes: more risk


def jit_ensemble(n: int = 100, folds: int = 2, prior_k: float = 500.0, balanced: tuple[str, ...] | None = ALL_MEMBERS,
                 monotone: tuple[str, ...] = (), power: float = 1.0) -> Fit:
    """The commit model kind on the 14 metrics, as ``leave_one_group_out`` fits it."""
    return gate_ensemble(JIT_COLUMNS, (), None, n, folds, prior_k, balanced, monotone, power)


JIT_VARIANTS: dict[str, Callable[[], Fit]] = {
    "shipped": lambda: jit_ensemble(), "no_blend": lambda: jit_ensemble(prior_k=0.0),
    "shipped_250": lambda: jit_ensemble(250, 3), "blend_k5000": lambda: jit_ensemble(prior_k=5000.0),
    "unbalanced": lambda: jit_ensemble(balanced=None),
    "balanced_boosted_only": lambda: jit_ensemble(balanced=("lightgbm", "xgboost")),
    "monotone_la": lambda: jit_ensemble(monotone=("la",)),
    "power_0": lambda: jit_ensemble(power=0.0), "power_0.5": lambda: jit_ensemble(power=0.5), "power_1": lambda: jit_ensemble(power=1.0),
    "monotone_size": lambda: jit_ensemble(monotone=MONOTONE_SIZE),
    "lgbm": lambda: one_lgbm(JIT_COLUMNS), "lgbm_balanced": lambda: one_lgbm(JIT_COLUMNS, True),
    "lgbm_balanced_monotone": lambda: one_lgbm(JIT_COLUMNS, True, MONOTONE_SIZE),
    "rank_blend_evidence_500": lambda: rank_blend(one_lgbm(JIT_COLUMNS, True), k=500),
    "boost_from_la_150": lambda: boost_from_lines_added(JIT_COLUMNS, 150),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--variants", default="ensemble,lgbm_balanced,rank_blend_evidence_500")
    ap.add_argument("--jit", action="store_true", help="the JIT anchors cross-project (variants: JIT_VARIANTS)")
    args = ap.parse_args()
    data = Path(args.data)
    if args.jit:
        train, test = jit_cross_frames(data)
        table = JIT_VARIANTS
    else:
        frame = with_repo_normalised(pl.concat([repo_frame(data, r)[0] for r in shared_repositories(data)],
                                               how="vertical_relaxed"))
        split = time_split(frame, parse_date("2022-01-01"), parse_date("2023-01-01"), 180)
        train, test = split.train, split.test
        table = variants(usable_numeric(train, COMMIT.numeric, 0.9)[0])
    for name in args.variants.split(","):
        t0, res = time.perf_counter(), {}
        fit = table[name]()
        for held in sorted(test["repo"].unique().to_list()):
            tr = train.filter(pl.col("repo") != held).sort("t", maintain_order=True)
            te = test.filter(pl.col("repo") == held)
            y, yt = tr["y"].cast(pl.Int64).to_numpy(), te["y"].cast(pl.Int64).to_numpy()
            base = auc(yt, fit_baselines(tr, y, te, ["la"], "la")["lines_added"])
            res[held] = {"model": round(auc(yt, fit(tr, y, te)), 4), "lines_added": round(base, 4)}
        deltas = {r: round(v["model"] - v["lines_added"], 4) for r, v in res.items()}
        print(json.dumps({"variant": name, "per_repository": res, "delta": deltas,
                          "mean_model": round(float(np.mean([v["model"] for v in res.values()])), 4),
                          "worst_delta": min(deltas.values()), "beats_everywhere": min(deltas.values()) > 0,
                          "seconds": round(time.perf_counter() - t0)}), flush=True)


if __name__ == "__main__":
    main()
