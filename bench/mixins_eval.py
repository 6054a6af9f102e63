"""Mixins family benchmark: observed outcomes, held-out quality vs baselines, prediction latency.

    .venv/bin/python bench/mixins_eval.py [--batches 2] [--trials-per-pair 8] [--home DIR] [--mlflow]
        [--harness-seeds 900001,900002] [--transfer-select bound|mean]

1. Runs the exercise harness ``--batches`` times into a fresh kforge home (outcomes from running code).
2. Trains + evaluates (seen-pair by time, unseen-pair by pair, unseen-mixin by mixin folds) and prints
   accuracy / ROC-AUC / Brier for the model (what serving answers), the history learner alone, the
   Beta-binomial baseline and the rule scorer, the per-held-out-mixin ROC-AUC table behind the
   ``generalizes`` gate, plus the leakage and gate checks.
3. Measures prediction latency in-process: uncached (features + model + explanation) and cached
   (sqlite lookup keyed by model version), p50/p99 over distinct queries.
"""

import argparse
import itertools
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from kforge.config import Paths
from kforge.mixins import pipeline, transfer
from kforge.mixins.catalogue import load_catalogue
from kforge.mixins.outcomes import read_outcomes
from kforge.mixins.service import PredictionService
from kforge.mixins.training import train
from kforge.storage import Warehouse


def _pct(xs: list[float]) -> dict[str, float]:
    a = np.array(xs) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3),
            "n": len(xs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", default=None)
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--trials-per-pair", type=int, default=8)
    ap.add_argument("--sets", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--harness-seeds", default="",
                    help="comma-separated harness seeds, one batch each (default: --batches batches, each seeded "
                         "by the number of stored outcomes, as the asset does)")
    ap.add_argument("--transfer-select", choices=("bound", "mean"), default=None,
                    help="how the unseen-mixin scorer chooses its shrink (default: transfer.SELECT)")
    ap.add_argument("--mlflow", action="store_true", help="also release kforge-mixins through the release path")
    args = ap.parse_args()
    paths = Paths.of(args.home or tempfile.mkdtemp(prefix="kforge-mixins-bench-")).ensure()
    wh = Warehouse(paths.warehouse)
    cat = load_catalogue(paths)

    if args.transfer_select:
        transfer.SELECT = args.transfer_select
    seeds = [int(x) for x in args.harness_seeds.split(",") if x] or [None] * args.batches
    t0 = time.perf_counter()
    for seed in seeds:
        pipeline.run_harness(wh, cat, trials_per_pair=args.trials_per_pair, n_sets=args.sets, trials_per_set=4,
                             seed=seed)
    harness_s = time.perf_counter() - t0
    pipeline.refresh_matrix(wh)
    outcomes = read_outcomes(wh)

    t0 = time.perf_counter()
    result = train(outcomes, cat, seed=args.seed)
    train_s = time.perf_counter() - t0
    table = result.evaluation.table()
    groups = result.per_mixin()
    with pl.Config(tbl_rows=30, tbl_width_chars=200, float_precision=4):
        print(table)
        print(groups.select("mixin", "fold", "n", "positive_rate", "served_by", "shrink", "model_roc_auc",
                            "rules_roc_auc", "learner_roc_auc", "delta_roc_auc"))
    report = {
        "home": str(paths.home), "outcomes": outcomes.height, "pair_outcomes": int((outcomes["set_size"] == 2).sum()),
        "set_outcomes": int((outcomes["set_size"] > 2).sum()), "pass_rate": round(float(outcomes["passed"].mean()), 4),
        "harness_seconds": round(harness_s, 1), "train_evaluate_seconds": round(train_s, 1),
        "checks": {c.name: c.passed for c in result.checks}, "leakage": result.leakage.describe(),
        "generalizes": result.check("generalizes").detail,
        "transfer_select": transfer.SELECT, "generalizes_fallback_mixins": result.fallback_mixins(),
        "mixins_won_tied_lost": [int((groups["delta_roc_auc"] > 0).sum()), int((groups["delta_roc_auc"] == 0).sum()),
                                 int((groups["delta_roc_auc"] < 0).sum())],
        "metrics": {f"{r['split']}/{r['scorer']}": {k: round(r[k], 4) for k in ("n", "accuracy", "roc_auc", "brier")}
                    for r in table.iter_rows(named=True)},
    }
    if args.mlflow:
        from kforge.mixins.release import TrainConfig, candidate
        from kforge.registry import Tracker
        from kforge.registry.release import release

        rel = release(Tracker(paths), candidate(result, outcomes, cat, TrainConfig(seed=args.seed),
                                                 Path(tempfile.mkdtemp(prefix="kforge-mixins-bench-"))))
        report["mlflow"] = {"run_id": rel.run_id, "version": rel.version, "decision": rel.decision,
                            "reason": rel.reason}

    svc = PredictionService(paths, predictor=result.predictor, version=1, catalogue=cat)
    svc.cache.invalidate(keep_version=None)
    pairs = [list(p) for p in itertools.combinations(sorted(cat.mixins), 2)]
    queries = [(p, n) for p in pairs for n in sorted(cat.nodes)]
    random.Random(0).shuffle(queries)
    queries = queries[:300]
    svc.check(*queries[0])                       # warm-up (imports, first LightGBM call)
    svc.cache.invalidate(keep_version=None)
    uncached, cached = [], []
    for m, n in queries:
        t = time.perf_counter()
        r = svc.check(m, n)
        uncached.append(time.perf_counter() - t)
        assert not r["cached"]
    for m, n in queries:
        t = time.perf_counter()
        r = svc.check(m, n)
        cached.append(time.perf_counter() - t)
        assert r["cached"]
    sets = [random.Random(i).sample(sorted(cat.mixins), 3) for i in range(100)]
    val = []
    for s in sets:
        t = time.perf_counter()
        svc.validate(s, "EFFECT")
        val.append(time.perf_counter() - t)
    report["latency"] = {"check_uncached": _pct(uncached), "check_cached": _pct(cached),
                         "validate3_uncached": _pct(val)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
