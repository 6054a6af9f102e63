"""Held-out evaluation at bench scale (``kforge telemetry evaluate``, ``bench/telemetry_eval.py``).

Forecaster: fit seeds 0..n-3, calibration seeds n-2..n-1, test seeds 100.. on all workloads, plus
leave-one-workload-out (fit/calibrate on three mixes, test on the unseen fourth).
Policy: trained on three mixes, tested on unseen seeds of all four mixes (one mix never seen).
"""

import time
from typing import Any

import polars as pl

from kforge.telemetry.forecast import ForecastConfig, build_dataset, train_and_evaluate
from kforge.telemetry.memsim import simulate_many
from kforge.telemetry.workloads import WORKLOADS


def evaluate_forecaster(n_seeds: int = 8, n_test: int = 4, duration_s: float = 600.0,
                        cfg: ForecastConfig | None = None) -> dict[str, Any]:
    cfg = cfg or ForecastConfig()
    t0 = time.perf_counter()
    seeds = list(range(n_seeds))
    test_seeds = list(range(100, 100 + n_test))
    samples, events = simulate_many(list(WORKLOADS), seeds + test_seeds, duration_s)
    sim_s = time.perf_counter() - t0
    ds = build_dataset(samples, events, cfg.horizon_s)
    runs = ds.select("run_id", "seed", "workload").unique()

    def ids(expr: pl.Expr) -> list[str]:
        return sorted(runs.filter(expr)["run_id"].to_list())

    calib = seeds[-2:]
    fit_e = pl.col("seed").is_in(seeds[:-2])
    cal_e = pl.col("seed").is_in(calib)
    test_e = pl.col("seed").is_in(test_seeds)
    main = train_and_evaluate(ds, events, ids(fit_e), ids(cal_e), ids(test_e), cfg)
    lowo = []
    for wl in ("leak", "burst", "fragmenting"):
        other, this = pl.col("workload") != wl, pl.col("workload") == wl
        r = train_and_evaluate(ds, events, ids(fit_e & other), ids(cal_e & other), ids(test_e & this), cfg)
        lowo.append({"held_out_workload": wl, **{k: r.metrics[k] for k in (
            "test_recall_5s", "test_fpr", "test_lead_p50_s", "test_heuristic_recall_5s", "test_heuristic_fpr",
            "test_n_incidents")}})
    return {"metrics": main.metrics, "per_workload": main.per_workload.to_dicts(), "leave_one_workload_out": lowo,
            "lead_times": main.lead_times, "simulate_s": sim_s, "total_s": time.perf_counter() - t0}


def evaluate_policy(n_seeds: int = 6, n_test: int = 3, n_tasks: int = 150, epochs: int = 8, dagger: int = 2) -> dict[str, Any]:
    import torch

    from kforge.telemetry.policy import (
        PolicyConfig,
        compare_to_cfs,
        decision_latency_us,
        evaluate_policies,
        train_policy,
    )
    from kforge.telemetry.schedsim import MIXES, make_sched_workload

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    module, pol, info = train_policy(PolicyConfig(train_seeds=tuple(range(n_seeds)), n_tasks=n_tasks, epochs=epochs,
                                                  dagger_rounds=dagger))
    train_s = time.perf_counter() - t0
    rows = evaluate_policies([make_sched_workload(m, s, n_tasks) for m in MIXES for s in range(1000, 1000 + n_test)], pol)
    df = pl.DataFrame(rows)
    by_mix = df.group_by("mix", "policy").agg(pl.col("mean_turnaround_ms", "p99_latency_ms", "context_switches").mean())
    # the training-set figures of ``info`` (train_*) stay out of this held-out summary
    return {"train_decisions": info["train_decisions"], "train_s": train_s, "vs_cfs": compare_to_cfs(rows),
            "latency_us": decision_latency_us(pol, module), "by_mix": by_mix.sort("mix", "policy").to_dicts()}
