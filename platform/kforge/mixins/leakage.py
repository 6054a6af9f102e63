"""Leakage checks on the training frame (they gate promotion).

1. Label perturbation: flip the labels of every row from a cut point on and rebuild the features;
   a feature of a row at or before the cut that changes is a function of its own label (or of a
   later one). Done at several cuts.
2. Separability: a single feature that alone ranks held-out labels almost perfectly (AUC > 0.99)
   is reported as a suspected label function.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

SEPARABILITY_AUC = 0.99


@dataclass
class LeakageReport:
    perturbed: dict[str, str] = field(default_factory=dict)      # column -> what changed
    separable: dict[str, float] = field(default_factory=dict)    # column -> single-feature AUC
    cuts_tested: int = 0

    @property
    def passed(self) -> bool:
        return not self.perturbed and not self.separable

    def describe(self) -> str:
        if self.passed:
            return f"no leakage found ({self.cuts_tested} label-perturbation cuts, separability < {SEPARABILITY_AUC})"
        parts = [f"{c}: {why}" for c, why in self.perturbed.items()]
        parts += [f"{c}: single-feature AUC {auc:.3f}" for c, auc in self.separable.items()]
        return "leakage: " + "; ".join(parts)


def perturbation_check(outcomes: pl.DataFrame, build: Callable[[pl.DataFrame], pl.DataFrame],
                       columns: list[str], cuts: int = 3, seed: int = 0) -> tuple[dict[str, str], int]:
    base = build(outcomes).sort("outcome_id")
    times = outcomes["observed_at"].sort()
    rng = random.Random(seed)
    bad: dict[str, str] = {}
    for _ in range(cuts):
        cut = times[rng.randrange(len(times) // 4, len(times))]
        flipped = outcomes.with_columns(
            passed=pl.when(pl.col("observed_at") >= cut).then(~pl.col("passed")).otherwise(pl.col("passed")))
        other = build(flipped).sort("outcome_id")
        keep = base["observed_at"] <= cut
        for c in columns:
            a = base.filter(keep)[c].cast(pl.Float64).fill_null(-999.0).to_numpy()
            b = other.filter(keep)[c].cast(pl.Float64).fill_null(-999.0).to_numpy()
            if not np.allclose(a, b):
                bad.setdefault(c, f"changes when labels at or after {cut} are flipped")
    return bad, cuts


def separability_check(frame: pl.DataFrame, columns: list[str]) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    y = frame["passed"].cast(pl.Int32).to_numpy()
    if len(set(y)) < 2:
        return {}
    out = {}
    for c in columns:
        x = frame[c].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        x = np.where(np.isfinite(x), x, np.nanmedian(x) if np.isfinite(x).any() else 0.0)
        if np.ptp(x) == 0:
            continue
        auc = float(roc_auc_score(y, x))
        auc = max(auc, 1 - auc)
        if auc > SEPARABILITY_AUC:
            out[c] = auc
    return out


def leakage_report(outcomes: pl.DataFrame, build: Callable[[pl.DataFrame], pl.DataFrame], columns: list[str],
                   heldout: pl.DataFrame, cuts: int = 3, seed: int = 0) -> LeakageReport:
    perturbed, n = perturbation_check(outcomes, build, columns, cuts, seed)
    return LeakageReport(perturbed, separability_check(heldout, columns), n)
