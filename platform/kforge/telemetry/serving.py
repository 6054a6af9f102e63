"""Serving replays: run the champion models on fresh simulated machines the way production
serving would, and log every call through :mod:`kforge.monitoring` (predictions, latency, input
bins for drift, outcomes once the ground truth is known)."""

import time
from typing import Any

import numpy as np
import polars as pl

from kforge.errors import InputError
from kforge.monitoring import log_outcomes, log_predictions, set_reference, summarize_inputs
from kforge.storage import Warehouse
from kforge.telemetry.features import FEATURES
from kforge.telemetry.forecast import build_dataset, predict
from kforge.telemetry.memsim import simulate
from kforge.telemetry.schedsim import SchedSim, SRPTOracle, features, make_sched_workload, run_policy
from kforge.telemetry.workloads import WORKLOADS

FAMILY = "telemetry"


def _champion(tracker: Any, name: str) -> int:
    champ = tracker.champion(name)
    if champ is None:
        raise InputError(f"{name} has no champion yet: materialize the telemetry models first")
    return int(champ.version)


def score_batches(wh: Warehouse, model: Any, threshold: float, name: str, version: int, ds: pl.DataFrame,
                  batch_s: int, horizon_known: bool = True) -> dict[str, float]:
    """Score ``ds`` in batches of ``batch_s`` rows per run, logging each call (and its outcomes
    when labels ``y`` are known)."""
    calls = rows = correct = 0
    lat = []
    for run in ds["run_id"].unique(maintain_order=True).to_list():
        sub = ds.filter(pl.col("run_id") == run)
        for i in range(0, sub.height, batch_s):
            batch = sub.slice(i, batch_s)
            t0 = time.perf_counter()
            alarm = predict(model, batch) >= threshold
            ms = 1000 * (time.perf_counter() - t0)
            lat.append(ms / batch.height)
            ref = f"{run}:{batch['t_s'][0]:.0f}"
            log_predictions(wh, FAMILY, name, version, ms, batch.height,
                            summarize_inputs(wh, name, version, batch.select(FEATURES)), batch_ref=ref)
            calls += 1
            rows += batch.height
            if horizon_known and "y" in batch.columns:
                ok = int((alarm == batch["y"].to_numpy().astype(bool)).sum())
                correct += ok
                log_outcomes(wh, FAMILY, name, version, batch.height, ok, batch_ref=ref)
    return {"calls": float(calls), "rows": float(rows), "accuracy": correct / max(rows, 1),
            "latency_ms_per_row_p50": float(np.median(lat)) if lat else 0.0}


def replay_forecaster(wh: Warehouse, tracker: Any, name: str, seed: int, duration_s: float, batch_s: int) -> dict[str, float]:
    from kforge.telemetry.mlflow_models import load_forecaster_meta

    if tracker.champion(name) is None:
        return {"skipped_no_champion": 1.0}
    version = _champion(tracker, name)
    model, meta = load_forecaster_meta(tracker.model_uri(name), tracker.tracking_uri)
    parts = [simulate(w, seed, duration_s) for w in WORKLOADS]
    samples = pl.concat([p[0] for p in parts])
    events = pl.concat([p[1] for p in parts])
    # outcomes are judged against the horizon the version was trained to predict (not a fixed 20 s)
    ds = build_dataset(samples, events, float(meta.get("horizon_s", 20.0)))
    return score_batches(wh, model, float(meta["threshold"]), name, version, ds, batch_s)


class _Timed:
    """Wraps a policy: times each decision, keeps candidate features, compares with the oracle."""

    def __init__(self, policy: Any) -> None:
        self.p, self.name = policy, policy.name
        self.times: list[float] = []
        self.feats: list[np.ndarray] = []
        self.agree = 0
        self.oracle = SRPTOracle()

    def pick(self, sim: SchedSim, cands: list[int]) -> int:
        t0 = time.perf_counter()
        c = self.p.pick(sim, cands)
        self.times.append(1000 * (time.perf_counter() - t0))
        if len(cands) > 1:
            self.feats.append(features(sim, cands))
        self.agree += int(c == self.oracle.pick(sim, cands))
        return c

    def slice_ms(self, sim: SchedSim, task: int) -> float:
        return self.p.slice_ms(sim, task)

    def preempt_on_wake(self, sim: SchedSim, woken: int) -> bool:
        return self.p.preempt_on_wake(sim, woken)


def replay_scheduler(wh: Warehouse, tracker: Any, name: str, seed: int) -> dict[str, float]:
    from kforge.telemetry.mlflow_models import load_policy

    if tracker.champion(name) is None:
        return {"skipped_no_champion": 1.0}
    version = _champion(tracker, name)
    timed = _Timed(load_policy(tracker.model_uri(name), tracker.tracking_uri))
    cols = [f"f{i}" for i in range(12)]
    res = run_policy(make_sched_workload("mixed", seed), timed)
    feats = pl.DataFrame(np.concatenate(timed.feats), schema=cols) if timed.feats else pl.DataFrame(schema=cols)
    set_reference_if_missing(wh, name, version, feats)
    log_predictions(wh, FAMILY, name, version, float(np.sum(timed.times)), len(timed.times),
                    summarize_inputs(wh, name, version, feats), batch_ref=f"mixed-{seed}")
    log_outcomes(wh, FAMILY, name, version, len(timed.times), timed.agree, batch_ref=f"mixed-{seed}")
    return {"decisions": float(len(timed.times)), "oracle_agreement": timed.agree / max(len(timed.times), 1),
            "decision_ms_p50": float(np.median(timed.times)) if timed.times else 0.0,
            "mean_turnaround_ms": float(res.turnaround.mean())}


def set_reference_if_missing(wh: Warehouse, name: str, version: int, feats: pl.DataFrame) -> None:
    """The scheduler's reference profile: candidate features on a training-distribution workload."""
    from kforge.monitoring import get_reference

    if get_reference(wh, name, version) or feats.height == 0:
        return
    ref: list = []
    run_policy(make_sched_workload("mixed", 0), SRPTOracle(), recorder=ref, oracle=SRPTOracle())
    set_reference(wh, FAMILY, name, version, pl.DataFrame(np.concatenate([x for x, _ in ref]), schema=feats.columns))
