"""Model quality of the telemetry models, small enough for CI (issue 15.9): each test fails when the
model stops beating its baseline on simulator runs that played no part in building it.

Seeds and configs are fixed, so each outcome is deterministic; sizes are chosen to run in a few tens
of seconds on two cores. Bench-scale numbers: ``bench/telemetry_eval.py``.
"""

import numpy as np
import polars as pl
import pytest
import torch
from kforge.telemetry.forecast import ForecastConfig, average_precision, build_dataset, train_and_evaluate
from kforge.telemetry.memsim import simulate_many
from kforge.telemetry.policy import PolicyConfig, train_policy
from kforge.telemetry.schedsim import CFS, MIXES, make_sched_workload, run_policy

torch.set_num_threads(1)


@pytest.mark.model_quality
def test_oom_forecaster_beats_the_heuristic_on_held_out_seeds() -> None:
    """Fit on seeds 0-3, threshold on seeds 4-5, score on seeds 200-202 (never seen): higher average
    precision than the heuristic on every held-out seed, and at least as many OOM incidents flagged
    >= 5 s ahead at the same calibrated false-positive rate."""
    fit_seeds, calib_seeds, test_seeds = [0, 1, 2, 3], [4, 5], [200, 201, 202]
    samples, events = simulate_many(["leak", "burst", "fragmenting"], fit_seeds + calib_seeds + test_seeds, 300)
    ds = build_dataset(samples, events, 20.0)
    runs = ds.select("run_id", "seed").unique()

    def run_ids(seeds: list[int]) -> list[str]:
        return sorted(runs.filter(pl.col("seed").is_in(seeds))["run_id"].to_list())

    res = train_and_evaluate(ds, events, run_ids(fit_seeds), run_ids(calib_seeds), run_ids(test_seeds),
                             ForecastConfig(n_estimators=60))
    m = res.metrics
    assert sorted(res.test["seed"].unique().to_list()) == test_seeds
    assert m["test_n_incidents"] >= 10, m
    per_seed = {}
    for seed in test_seeds:
        rows = res.test.filter(pl.col("seed") == seed)
        y = rows["y"].to_numpy()
        per_seed[seed] = (average_precision(y, rows["score"].to_numpy()),
                          average_precision(y, rows["heuristic"].to_numpy()))
    assert all(model > heuristic for model, heuristic in per_seed.values()), per_seed
    assert m["test_ap"] > m["test_heuristic_ap"], m
    assert m["test_recall_5s"] >= m["test_heuristic_recall_5s"], m


@pytest.mark.model_quality
def test_learned_scheduler_beats_cfs_on_unseen_seeds_and_an_unseen_mix() -> None:
    """Imitate SRPT on three mixes with the shipped training config; on seeds 1000-1002 (never trained
    on) the learned policy's mean turnaround beats the CFS-like baseline, both on the trained mixes and
    on ``bursty_arrivals``, a mix it never saw (mean relative gain, the metric the release gate uses).

    The shipped config, not a cheaper one: with 3 training seeds, 100 tasks and one DAgger round the
    unseen-mix result depends on the initialisation seed (seed 0 and 2 lose to CFS on bursty_arrivals,
    seed 1 wins), while the shipped config wins on every mix for seeds 0, 1 and 2 (docs/notes/issue-15-telemetry.md)."""
    cfg = PolicyConfig()
    unseen_mix = "bursty_arrivals"
    assert unseen_mix in MIXES and unseen_mix not in cfg.train_mixes
    _, policy, _ = train_policy(cfg)
    test_seeds = (1000, 1001, 1002)
    assert not set(test_seeds) & set(cfg.train_seeds)

    def gains(mix: str) -> list[float]:
        out = []
        for seed in test_seeds:
            wl = make_sched_workload(mix, seed, cfg.n_tasks)
            out.append(1.0 - run_policy(wl, policy).turnaround.mean() / run_policy(wl, CFS()).turnaround.mean())
        return out

    seen = {mix: gains(mix) for mix in cfg.train_mixes}
    unseen = gains(unseen_mix)
    detail = {m: [round(float(g), 3) for g in gs] for m, gs in {**seen, unseen_mix: unseen}.items()}
    assert np.mean([g for gs in seen.values() for g in gs]) > 0, detail
    assert np.mean(unseen) > 0, detail
