"""OOM forecaster: gradient boosting on windowed telemetry features vs the original heuristic.

Protocol (no leakage, held-out only): runs are split by seed into *fit* runs (train the model),
*calibration* runs (choose the alarm threshold for a target false-positive rate) and *test* runs
(every reported number). A sample is positive when an OOM kill follows within ``horizon_s``.
OOM kills less than ``horizon_s`` after the previous one belong to the same *incident* (an OOM
storm); an incident starting at ``T`` counts as *flagged >= lead_s ahead* when some alarm fires in
``[T - horizon_s, T - lead_s]`` (after the previous incident's last kill); its lead time is ``T -``
the first alarm in that window (0 when none fired).
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from kforge.errors import InputError
from kforge.telemetry.features import FEATURES, horizon_labels, window_features, with_heuristic


@dataclass(frozen=True)
class ForecastConfig:
    horizon_s: float = 20.0
    lead_s: float = 5.0
    target_fpr: float = 0.07          # alarm threshold chosen on calibration runs for this FPR
    n_estimators: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 31
    seed: int = 7

    def __post_init__(self) -> None:
        if not self.horizon_s > 0:
            raise InputError(f"horizon_s must be > 0 seconds, got {self.horizon_s}")
        if not 0 <= self.lead_s < self.horizon_s:
            raise InputError(f"lead_s must be in [0, horizon_s) = [0, {self.horizon_s:g}), got {self.lead_s}")
        if not 0 <= self.target_fpr <= 1:
            raise InputError(f"target_fpr must be a rate in [0, 1], got {self.target_fpr}")
        if self.n_estimators < 1 or self.num_leaves < 2 or not self.learning_rate > 0:
            raise InputError(f"need n_estimators >= 1, num_leaves >= 2 and learning_rate > 0, got {self.n_estimators}, "
                             f"{self.num_leaves}, {self.learning_rate}")


def build_dataset(samples: pl.DataFrame, events: pl.DataFrame, horizon_s: float) -> pl.DataFrame:
    """Features + labels + the heuristic baseline score, one row per telemetry sample."""
    missing = {"run_id", "t_s", "free_pages", "total_pages"} - set(samples.columns)
    if missing:
        raise InputError(f"telemetry samples lack column(s) {', '.join(sorted(missing))}")
    return with_heuristic(horizon_labels(window_features(samples), events, horizon_s))


def threshold_for_fpr(scores: np.ndarray, y: np.ndarray, target_fpr: float) -> float:
    """The smallest threshold whose false-positive rate on these rows is <= target_fpr."""
    if not 0 <= target_fpr <= 1:
        raise InputError(f"target_fpr must be a rate in [0, 1], got {target_fpr}")
    neg = np.sort(scores[y == 0])
    if len(neg) == 0:
        raise InputError("calibration runs have no negative samples: cannot set a threshold")
    k = int(np.floor(target_fpr * len(neg)))
    return float(np.nextafter(neg[len(neg) - k - 1], np.inf)) if k < len(neg) else float(neg[0])


def event_metrics(ds: pl.DataFrame, events: pl.DataFrame, score: np.ndarray, threshold: float,
                  horizon_s: float, lead_s: float) -> dict[str, Any]:
    """Sample FPR plus per-OOM recall at >= lead_s and the lead-time distribution."""
    alarm = score >= threshold
    y = ds["y"].to_numpy()
    fpr = float(alarm[y == 0].mean()) if (y == 0).any() else float("nan")
    sample_recall = float(alarm[y == 1].mean()) if (y == 1).any() else float("nan")
    runs = ds["run_id"].to_numpy()
    ts = ds["t_s"].to_numpy()
    ooms = events.filter((pl.col("kind") == "oom_kill") & pl.col("run_id").is_in(ds["run_id"].unique().to_list()))
    ooms = ooms.sort("run_id", "t_s")
    leads: list[float] = []
    flagged = 0
    prev: dict[str, float] = {}
    for run, t_oom in ooms.select("run_id", "t_s").iter_rows():
        last = prev.get(run, -1e9)
        prev[run] = t_oom
        if t_oom - last < horizon_s:       # same incident as the previous kill
            continue
        start = max(t_oom - horizon_s, last)
        m = (runs == run) & (ts > start) & (ts < t_oom) & alarm
        if m.any():
            first = float(ts[m].min())
            leads.append(t_oom - first)
            if (ts[m] <= t_oom - lead_s).any():
                flagged += 1
        else:
            leads.append(0.0)
    n = len(leads)
    lead = np.array(leads) if leads else np.array([0.0])
    return {
        "n_ooms": ooms.height, "n_incidents": n, "recall_at_lead": flagged / n if n else float("nan"), "fpr": fpr,
        "sample_recall": sample_recall, "alarm_rate": float(alarm.mean()),
        "lead_p10": float(np.quantile(lead, 0.1)), "lead_p50": float(np.quantile(lead, 0.5)),
        "lead_p90": float(np.quantile(lead, 0.9)), "lead_times": [round(x, 1) for x in leads],
    }


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, score)) if y.any() else float("nan")


@dataclass
class ForecastResult:
    model: Any
    threshold: float
    heuristic_threshold: float
    metrics: dict[str, float]
    per_workload: pl.DataFrame
    lead_times: dict[str, list[float]]
    test: pl.DataFrame = field(repr=False)          # test rows with scores
    split: dict[str, list[str]] = field(default_factory=dict)


def fit_model(train: pl.DataFrame, cfg: ForecastConfig) -> Any:
    import lightgbm as lgb

    if train["y"].sum() == 0:
        raise InputError("no OOM in the training runs: add leak/burst/fragmenting workloads or longer runs")
    model = lgb.LGBMClassifier(
        n_estimators=cfg.n_estimators, learning_rate=cfg.learning_rate, num_leaves=cfg.num_leaves,
        min_child_samples=40, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
        random_state=cfg.seed, n_jobs=1, deterministic=True, force_row_wise=True, verbose=-1,
    )
    model.fit(train.select(FEATURES).to_pandas(), train["y"].to_numpy())
    return model


def predict(model: Any, ds: pl.DataFrame) -> np.ndarray:
    return model.predict_proba(ds.select(FEATURES).to_pandas())[:, 1]


def train_and_evaluate(ds: pl.DataFrame, events: pl.DataFrame, fit_runs: list[str], calib_runs: list[str],
                       test_runs: list[str], cfg: ForecastConfig) -> ForecastResult:
    """Fit on ``fit_runs``, set thresholds on ``calib_runs``, report on ``test_runs`` only."""
    overlap = (set(fit_runs) | set(calib_runs)) & set(test_runs)
    if overlap:
        raise InputError(f"test runs overlap training runs: {sorted(overlap)[:5]}")
    fit = ds.filter(pl.col("run_id").is_in(fit_runs))
    cal = ds.filter(pl.col("run_id").is_in(calib_runs))
    test = ds.filter(pl.col("run_id").is_in(test_runs))
    if test.height == 0 or cal.height == 0:
        raise InputError("empty calibration or test split")
    model = fit_model(fit, cfg)
    thr = threshold_for_fpr(predict(model, cal), cal["y"].to_numpy(), cfg.target_fpr)
    h_thr = threshold_for_fpr(cal["heuristic"].to_numpy(), cal["y"].to_numpy(), cfg.target_fpr)
    s_model = predict(model, test)
    s_heur = test["heuristic"].to_numpy()
    y = test["y"].to_numpy()
    m = event_metrics(test, events, s_model, thr, cfg.horizon_s, cfg.lead_s)
    h = event_metrics(test, events, s_heur, h_thr, cfg.horizon_s, cfg.lead_s)
    h05 = event_metrics(test, events, s_heur, 0.5, cfg.horizon_s, cfg.lead_s)
    metrics = {
        "test_ap": average_precision(y, s_model), "test_heuristic_ap": average_precision(y, s_heur),
        "test_recall_5s": m["recall_at_lead"], "test_fpr": m["fpr"], "test_sample_recall": m["sample_recall"],
        "test_lead_p10_s": m["lead_p10"], "test_lead_p50_s": m["lead_p50"], "test_lead_p90_s": m["lead_p90"],
        "test_heuristic_recall_5s": h["recall_at_lead"], "test_heuristic_fpr": h["fpr"],
        "test_heuristic_lead_p50_s": h["lead_p50"],
        "test_heuristic_orig_recall_5s": h05["recall_at_lead"], "test_heuristic_orig_fpr": h05["fpr"],
        "test_n_ooms": float(m["n_ooms"]), "test_n_incidents": float(m["n_incidents"]), "test_rows": float(test.height), "test_positives": float(y.sum()),
        "threshold": thr, "heuristic_threshold": h_thr,
    }
    rows = []
    test = test.with_columns(pl.Series("score", s_model))
    for wl in sorted(test["workload"].unique().to_list()):
        sub = test.filter(pl.col("workload") == wl)
        mm = event_metrics(sub, events, sub["score"].to_numpy(), thr, cfg.horizon_s, cfg.lead_s)
        hh = event_metrics(sub, events, sub["heuristic"].to_numpy(), h_thr, cfg.horizon_s, cfg.lead_s)
        rows.append({"workload": wl, "ooms": mm["n_ooms"], "incidents": mm["n_incidents"], "recall_5s": mm["recall_at_lead"], "fpr": mm["fpr"],
                     "lead_p50_s": mm["lead_p50"], "heuristic_recall_5s": hh["recall_at_lead"],
                     "heuristic_fpr": hh["fpr"]})
    return ForecastResult(model, thr, h_thr, metrics, pl.DataFrame(rows),
                          {"model": m["lead_times"], "heuristic": h["lead_times"]}, test,
                          {"fit": fit_runs, "calibration": calib_runs, "test": test_runs})


def split_runs(ds: pl.DataFrame, test_seeds: list[int], calib_seeds: list[int]) -> tuple[list[str], list[str], list[str]]:
    """Runs by seed: test seeds, calibration seeds, and the rest for fitting."""
    runs = ds.select("run_id", "seed").unique()
    test = sorted(runs.filter(pl.col("seed").is_in(test_seeds))["run_id"].to_list())
    cal = sorted(runs.filter(pl.col("seed").is_in(calib_seeds))["run_id"].to_list())
    fit = sorted(runs.filter(~pl.col("seed").is_in(test_seeds + calib_seeds))["run_id"].to_list())
    if not fit or not cal or not test:
        raise InputError(f"need fit, calibration and test seeds; got {len(fit)}/{len(cal)}/{len(test)} runs")
    return fit, cal, test
