"""The one training entry of the telemetry family: the Dagster assets and ``kforge telemetry train``
call the same functions with the same plain configs, and each model goes through
:func:`kforge.registry.release.release` (see :mod:`kforge.telemetry.specs` for the gates).

* :func:`store_telemetry`: simulate the machines and store ``memory_telemetry`` / ``oom_events``
  (runs tagged ``fit`` / ``calib`` / ``test`` by seed);
* :func:`train_and_release_forecaster`: ``kforge-telemetry-oom`` from the stored tables, held out by
  seed; the champion is re-scored on the same held-out runs;
* :func:`train_and_release_recommender`: ``kforge-telemetry-recommender`` (a JSON config naming the
  champion forecaster version), scored by closed-loop cost on held-out (workload, seed) runs; the
  champion is re-run in closed loop with its own recorded config and forecaster version;
* :func:`train_and_release_scheduler`: ``kforge-telemetry-scheduler`` on held-out workloads.

Example::

    store_telemetry(wh, SimulationConfig())
    out = train_and_release_forecaster(tracker, wh, ForecastConfig())
    out.result.decision   # "promoted" | "blocked" | "unchanged"
"""

import hashlib
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from kforge.config import check_seeds
from kforge.errors import InputError
from kforge.registry.gates import NO_FUTURE_FEATURES, SPLIT_HOLDS, Check, beats, not_run, size_check
from kforge.registry.release import Candidate, ReleaseResult, Scored, release
from kforge.registry.tracking import Tracker
from kforge.storage import Warehouse
from kforge.telemetry.forecast import ForecastConfig
from kforge.telemetry.specs import (
    BEST_FIXED,
    FAMILY,
    FORECASTER,
    MIN_CLOSED_LOOP_RUNS,
    MIN_TEST_INCIDENTS,
    MIN_TEST_WORKLOADS,
    OOM_TARGET,
    POLICY_TARGET,
    RECOMMENDER,
    SCHEDULER,
)

MEMORY_TABLE = "memory_telemetry"
EVENTS_TABLE = "oom_events"
ROLES = ("fit", "calib", "test")


@dataclass(frozen=True)
class SimulationConfig:
    fit_seeds: tuple[int, ...] = (0, 1, 2, 3)
    calib_seeds: tuple[int, ...] = (4, 5)
    test_seeds: tuple[int, ...] = (100, 101)
    duration_s: float = 400.0
    workloads: tuple[str, ...] = ()     # empty: every workload of kforge.telemetry.workloads

    def __post_init__(self) -> None:
        check_seeds(fit_seeds=self.fit_seeds, calib_seeds=self.calib_seeds, test_seeds=self.test_seeds)



@dataclass(frozen=True)
class RecommenderConfig:
    workloads: tuple[str, ...] = ("leak", "fragmenting")
    seeds: tuple[int, ...] = (100,)
    duration_s: float = 300.0
    lookahead_s: float = 20.0
    cooldown_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.workloads or not self.seeds:
            raise InputError("the recommender's closed loop needs at least one workload and one seed")
        check_seeds(seeds=self.seeds)
        if not self.lookahead_s > 0 or self.cooldown_s < 0:
            raise InputError(f"need lookahead_s > 0 and cooldown_s >= 0, got {self.lookahead_s}, {self.cooldown_s}")


@dataclass(frozen=True)
class SchedulerConfig:
    train_seeds: tuple[int, ...] = (0, 1, 2, 3)
    test_seeds: tuple[int, ...] = (1000, 1001)
    n_tasks: int = 150
    epochs: int = 8
    dagger_rounds: int = 2

    def __post_init__(self) -> None:
        if not self.train_seeds or not self.test_seeds:
            raise InputError("the scheduler needs at least one training seed and one test seed")
        check_seeds(train_seeds=self.train_seeds, test_seeds=self.test_seeds)
        if self.epochs < 1 or self.dagger_rounds < 0:
            raise InputError(f"need epochs >= 1 and dagger_rounds >= 0, got {self.epochs}, {self.dagger_rounds}")


@dataclass
class TelemetryRelease:
    """One model's release plus what the asset shows besides it (tables, plots, held-out metrics).

    ``metrics`` holds held-out figures only; training-set figures (``train_*``) go to the MLflow run
    and nowhere else: not into gates, not into the asset's metrics summary."""

    result: ReleaseResult
    metrics: dict[str, float]
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    plots: dict[str, Path] = field(default_factory=dict)


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="kforge-telemetry-"))


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _csv(xs: Any) -> str:
    return ",".join(str(x) for x in xs)


# -- simulated telemetry ------------------------------------------------------------------------

def store_telemetry(wh: Warehouse, cfg: SimulationConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Simulate every workload for every seed and store (samples, events); each run's ``split``
    is its seed's role (``fit``, ``calib`` or ``test``)."""
    from kforge.storage.warehouse import replace
    from kforge.telemetry.memsim import simulate_many
    from kforge.telemetry.workloads import WORKLOADS

    role = {**{s: "fit" for s in cfg.fit_seeds}, **{s: "calib" for s in cfg.calib_seeds},
            **{s: "test" for s in cfg.test_seeds}}
    if len(role) != len(cfg.fit_seeds) + len(cfg.calib_seeds) + len(cfg.test_seeds):
        raise InputError("fit, calibration and test seeds must be distinct")
    samples, events = simulate_many(list(cfg.workloads or WORKLOADS), sorted(role), cfg.duration_s)
    samples = samples.with_columns(pl.col("seed").replace_strict(role, return_dtype=pl.String).alias("split"))
    with wh.writer() as con:
        replace(con, MEMORY_TABLE, samples)
        replace(con, EVENTS_TABLE, events)
    return samples, events


# -- kforge-telemetry-oom -----------------------------------------------------------------------

def seeds_by_role(ds: pl.DataFrame) -> dict[str, list[int]]:
    pairs = ds.select("seed", "split").unique()
    return {r: sorted(pairs.filter(pl.col("split") == r)["seed"].to_list()) for r in ROLES}


def seed_split_check(seeds: dict[str, list[int]]) -> Check:
    """``split_holds`` of the forecaster: fit, calibration and test seeds are non-empty and disjoint."""
    fit, cal, test = (set(seeds.get(r, [])) for r in ROLES)
    overlap = sorted((fit & cal) | (fit & test) | (cal & test))
    empty = [r for r, s in zip(ROLES, (fit, cal, test), strict=True) if not s]
    ok = not overlap and not empty
    detail = (f"fit seeds {sorted(fit)}, calibration {sorted(cal)}, test {sorted(test)}"
              + (f"; shared: {overlap}" if overlap else "") + (f"; empty: {', '.join(empty)}" if empty else ""))
    return Check(SPLIT_HOLDS, ok, detail, {"fit_seeds": len(fit), "calib_seeds": len(cal), "test_seeds": len(test),
                                           "shared_seeds": len(overlap)})


def train_and_release_forecaster(tracker: Tracker, wh: Warehouse, cfg: ForecastConfig, *,
                                 dagster_run_id: str = "") -> TelemetryRelease:
    """Fit on ``fit`` runs, threshold on ``calib`` runs, evaluate on ``test`` runs of the stored
    telemetry; release ``kforge-telemetry-oom``; store the fit runs' feature profile for monitoring."""
    from kforge.monitoring import set_reference
    from kforge.registry.tracking import data_version
    from kforge.telemetry.features import FEATURES, future_leak
    from kforge.telemetry.forecast import average_precision, build_dataset, train_and_evaluate
    from kforge.telemetry.mlflow_models import load_forecaster_dir, save_forecaster
    from kforge.telemetry.plots import lead_time_plot

    if not wh.has_table(MEMORY_TABLE) or not wh.has_table(EVENTS_TABLE):
        raise InputError("no memory_telemetry / oom_events tables yet: materialize memory_telemetry "
                         "(or run `kforge telemetry train --simulate`)")
    samples, events = wh.read_table(MEMORY_TABLE), wh.read_table(EVENTS_TABLE)
    ds = build_dataset(samples, events, cfg.horizon_s)
    seeds = seeds_by_role(ds)
    runs = ds.select("run_id", "split").unique()
    fit, cal, test = (sorted(runs.filter(pl.col("split") == r)["run_id"].to_list()) for r in ROLES)
    split = seed_split_check(seeds)
    if not split.passed:
        raise InputError(f"the stored telemetry has no clean seed split: {split.detail}")
    res = train_and_evaluate(ds, events, fit, cal, test, cfg)
    m = res.metrics
    rows = res.test
    keys = sorted(rows["run_id"].unique().to_list())
    y = rows["y"].to_numpy()
    png = lead_time_plot(res.lead_times, cfg.horizon_s, cfg.lead_s, _tmp() / "oom_lead_times.png")

    leak = future_leak(samples.filter(pl.col("run_id").is_in(keys)))
    beats_heur = (m["test_ap"] > m["test_heuristic_ap"]) and (m["test_recall_5s"] >= m["test_heuristic_recall_5s"])
    target = m["test_recall_5s"] >= 0.8 and m["test_fpr"] < 0.10
    checks = [
        split,
        Check(NO_FUTURE_FEATURES, leak == 0.0, f"max |feature(whole run) - feature(prefix)| = {leak:.3g} at 3 cuts",
              {"max_abs_diff": leak}),
        size_check(int(m["test_n_incidents"]), MIN_TEST_INCIDENTS, test_runs=len(keys), test_rows=m["test_rows"]),
        Check(beats("heuristic"), beats_heur,
              f"AP {m['test_ap']:.4f} vs heuristic {m['test_heuristic_ap']:.4f}; recall@{cfg.lead_s:g}s "
              f"{m['test_recall_5s']:.3f} vs {m['test_heuristic_recall_5s']:.3f}",
              {"ap": m["test_ap"], "heuristic_ap": m["test_heuristic_ap"], "recall_5s": m["test_recall_5s"],
               "heuristic_recall_5s": m["test_heuristic_recall_5s"]}),
        Check(OOM_TARGET, target, f"recall@{cfg.lead_s:g}s {m['test_recall_5s']:.3f} (>= 0.8), "
                                  f"FPR {m['test_fpr']:.3f} (< 0.10)",
              {"recall_5s": m["test_recall_5s"], "fpr": m["test_fpr"]}),
    ]
    meta = {"threshold": res.threshold, "horizon_s": cfg.horizon_s, "lead_s": cfg.lead_s,
            "fit_seeds": seeds["fit"], "calib_seeds": seeds["calib"], "test_seeds": seeds["test"]}
    example = rows.select(FEATURES).head(50).to_pandas()

    def score_registered(d: Path) -> Scored:
        model, champ_meta = load_forecaster_dir(d)
        feats = list(champ_meta["features"])
        missing = sorted(set(feats) - set(rows.columns))
        if missing:
            raise InputError(f"the model uses feature(s) {', '.join(missing)} that the held-out rows lack")
        score = model.predict_proba(rows.select(feats).to_pandas())[:, 1]
        return Scored(average_precision(y, score), keys)

    params = {**asdict(cfg), "fit_seeds": _csv(seeds["fit"]), "calib_seeds": _csv(seeds["calib"]),
              "test_seeds": _csv(seeds["test"]), "fit_runs": len(fit), "calib_runs": len(cal),
              "test_runs": len(test), "baseline": "original heuristic"}
    cand = Candidate(
        FORECASTER, train_table=data_version(samples), eval_keys=keys, score=m["test_ap"],
        baselines={"heuristic": m["test_heuristic_ap"]}, checks=checks, params=params, metrics=m, plots=[png],
        texts={"per_workload.csv": res.per_workload.write_csv()},
        tags={"threshold": f"{res.threshold:.6f}"},
        save_model=lambda d: save_forecaster(res.model, example, meta, d),
        score_registered=score_registered)
    result = release(tracker, cand, dagster_run_id=dagster_run_id)
    set_reference(wh, FAMILY, FORECASTER.name, result.version, ds.filter(pl.col("run_id").is_in(fit)).select(FEATURES))
    return TelemetryRelease(result, m, {"per_workload": res.per_workload}, {"lead_times": png})


# -- kforge-telemetry-recommender ---------------------------------------------------------------

def _download_version(tracker: Tracker, name: str, version: int, dst: Path) -> Path:
    import mlflow.artifacts

    mv = tracker.client().get_model_version(name, str(version))
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=str(dst),
                                                    tracking_uri=tracker.tracking_uri))


def train_and_release_recommender(tracker: Tracker, cfg: RecommenderConfig, *, wh: Warehouse | None = None,
                                  dagster_run_id: str = "") -> TelemetryRelease:
    """Run the recommender (listening to the champion forecaster) and every fixed strategy in closed
    loop on the held-out (workload, seed) runs; release ``kforge-telemetry-recommender``.
    With ``wh``, each recommender run is logged to model monitoring as a prediction call."""
    from kforge.telemetry.mlflow_models import load_forecaster_dir
    from kforge.telemetry.recommend import FIXED, STRATEGIES
    from kforge.telemetry.recommender_model import (
        make_state,
        read_state,
        run_closed_loop,
        save_state_model,
        scorer_of,
    )

    champ = tracker.champion(FORECASTER.name)
    if champ is None:
        raise InputError(f"{FORECASTER.name} has no champion: the recommender listens to the champion forecaster")
    fv = int(champ.version)
    fmodel, fmeta = load_forecaster_dir(_download_version(tracker, FORECASTER.name, fv, _tmp()))
    scorer = scorer_of(fmodel)
    state = make_state(FORECASTER.name, fv, float(fmeta["threshold"]), cfg.lookahead_s, cfg.cooldown_s)
    rows = [(w, int(s), float(cfg.duration_s)) for w in cfg.workloads for s in cfg.seeds]
    keys = [f"{w}:{s}" for w, s, _ in rows]

    runs = []
    for strat in STRATEGIES:
        for row in rows:
            t0 = time.perf_counter()
            r = run_closed_loop(state, scorer, [row], strat)[0]
            r["seconds"] = round(time.perf_counter() - t0, 2)
            runs.append(r)
    df = pl.DataFrame(runs)
    agg = df.group_by("strategy").agg(pl.col("oom_kills", "cost", "alarms").sum(),
                                      pl.col("cost").mean().alias("mean_cost")).sort("cost")
    mean = dict(agg.select("strategy", "mean_cost").iter_rows())
    score = float(mean["recommender"])
    best = min(FIXED, key=lambda s: mean[s])

    used = set(fmeta.get("fit_seeds", [])) | set(fmeta.get("calib_seeds", []))
    if "fit_seeds" not in fmeta:
        split = not_run(SPLIT_HOLDS, f"{FORECASTER.name} v{fv} does not record its training seeds")
    else:
        shared = sorted(used & set(cfg.seeds))
        split = Check(SPLIT_HOLDS, not shared, f"closed-loop seeds {sorted(cfg.seeds)} vs the forecaster's fit and "
                                                f"calibration seeds {sorted(used)}" + (f"; shared: {shared}" if shared else ""),
                      {"shared_seeds": len(shared)})
    checks = [split, size_check(len(rows), MIN_CLOSED_LOOP_RUNS),
              Check(BEST_FIXED, score < mean[best], f"mean cost {score:.2f} vs best fixed action {best} "
                                                    f"{mean[best]:.2f}", {"recommender": score, best: mean[best]})]

    def score_registered(d: Path) -> Scored:
        st = read_state(d)
        f = st["forecaster"]
        if (f["name"], int(f["version"])) == (FORECASTER.name, fv):
            champ_scorer = scorer
        else:
            champ_scorer = scorer_of(load_forecaster_dir(
                _download_version(tracker, f["name"], int(f["version"]), _tmp()))[0])
        out = run_closed_loop(st, champ_scorer, rows)
        return Scored(sum(r["cost"] for r in out) / len(out), [f"{r['workload']}:{r['seed']}" for r in out])

    metrics = {f"test_mean_cost_{k}": float(v) for k, v in mean.items()}
    metrics.update({f"test_oom_kills_{k}": float(v) for k, v in agg.select("strategy", "oom_kills").iter_rows()})
    params = {**asdict(cfg), "workloads": _csv(cfg.workloads), "seeds": _csv(cfg.seeds),
              "forecaster": FORECASTER.name, "forecaster_version": fv, "threshold": f"{state['forecaster']['threshold']:.6f}"}
    cand = Candidate(
        RECOMMENDER, train_table=f"{FORECASTER.name}-v{fv}-{_digest(state)}", eval_keys=keys, score=score,
        baselines={"none": float(mean["none"])}, checks=checks, params=params, metrics=metrics,
        texts={"closed_loop.csv": df.write_csv()}, tags={"forecaster_version": str(fv)},
        save_model=lambda d: save_state_model(state, d), score_registered=score_registered)
    result = release(tracker, cand, dagster_run_id=dagster_run_id)
    if wh is not None:
        _log_recommender_runs(wh, result.version, df.filter(pl.col("strategy") == "recommender"))
    return TelemetryRelease(result, metrics, {"by_strategy": agg, "runs": df})


def _log_recommender_runs(wh: Warehouse, version: int, runs: pl.DataFrame) -> None:
    from kforge.monitoring import log_followed, log_predictions

    for r in runs.iter_rows(named=True):
        n_rec = sum(int(r[f"n_{a}"]) for a in ("nothing", "compact", "reclaim", "kill_largest"))
        ref = f"{r['workload']}-{r['seed']}"
        log_predictions(wh, FAMILY, RECOMMENDER.name, version, r["seconds"] * 1000, max(n_rec, 0), batch_ref=ref)
        log_followed(wh, FAMILY, RECOMMENDER.name, version, n_rec - int(r["n_nothing"]),
                     max(n_rec, int(r["n_nothing"])), batch_ref=ref)


# -- kforge-telemetry-scheduler -----------------------------------------------------------------

def train_and_release_scheduler(tracker: Tracker, cfg: SchedulerConfig, *, dagster_run_id: str = "") -> TelemetryRelease:
    """Imitate SRPT (DAgger) on the training mixes and seeds; evaluate on every mix at held-out seeds
    (one mix never trained on) against RR and CFS; release ``kforge-telemetry-scheduler``."""
    import mlflow
    import torch

    from kforge.telemetry.mlflow_models import load_policy_dir, policy_example, save_policy
    from kforge.telemetry.plots import scheduler_plot
    from kforge.telemetry.policy import (
        PolicyConfig,
        compare_to_cfs,
        decision_latency_us,
        evaluate_policies,
        export_torchscript,
        train_policy,
    )
    from kforge.telemetry.schedsim import MIXES, SchedSim, features, make_sched_workload, run_policy

    torch.set_num_threads(1)
    pcfg = PolicyConfig(train_seeds=tuple(cfg.train_seeds), n_tasks=cfg.n_tasks, epochs=cfg.epochs,
                        dagger_rounds=cfg.dagger_rounds)
    module, pol, info = train_policy(pcfg)
    tests = [make_sched_workload(m, s, cfg.n_tasks) for m in MIXES for s in cfg.test_seeds]
    keys = [f"{wl.mix}:{wl.seed}" for wl in tests]
    rows = evaluate_policies(tests, pol)
    cmp = compare_to_cfs(rows)
    lat = decision_latency_us(pol, module)
    tmp = _tmp()
    png = scheduler_plot(pl.DataFrame(rows), tmp / "scheduler.png")
    weights = pol.save(tmp / "policy_weights.npz")
    ts = export_torchscript(module, tmp / "policy.pt")
    example = policy_example(features(SchedSim(tests[0]), list(range(4))))

    shared = sorted(set(cfg.train_seeds) & set(cfg.test_seeds))
    unseen = sorted(m for m in MIXES if m not in pcfg.train_mixes)
    gain = cmp["test_turnaround_gain_vs_cfs"]
    target = gain >= 0.15 and cmp["test_switch_reduction_vs_cfs"] >= 0.10 and lat["numpy_p50_us"] < 50
    checks = [
        Check(SPLIT_HOLDS, not shared and bool(unseen),
              f"train seeds {sorted(cfg.train_seeds)} vs test seeds {sorted(cfg.test_seeds)}; "
              f"mixes never trained on: {', '.join(unseen) or 'none'}",
              {"shared_seeds": len(shared), "unseen_mixes": len(unseen)}),
        size_check(len(tests), MIN_TEST_WORKLOADS),
        Check(POLICY_TARGET, target, f"gain vs CFS {gain:.3f} (>= 0.15), switch reduction "
                                     f"{cmp['test_switch_reduction_vs_cfs']:.3f} (>= 0.10), numpy p50 "
                                     f"{lat['numpy_p50_us']:.1f} us (< 50)",
              {"gain_vs_cfs": gain, "switch_reduction": cmp["test_switch_reduction_vs_cfs"],
               "numpy_p50_us": lat["numpy_p50_us"]}),
    ]
    baseline_rows = [r for r in rows if r["policy"] != pol.name]

    def score_registered(d: Path) -> Scored:
        champ = load_policy_dir(d)
        learned = [{"mix": wl.mix, "seed": wl.seed, "policy": pol.name, **run_policy(wl, champ).summary()}
                   for wl in tests]
        return Scored(compare_to_cfs(baseline_rows + learned)["test_turnaround_gain_vs_cfs"],
                      [f"{r['mix']}:{r['seed']}" for r in learned])

    metrics = {**cmp, **{f"latency_{k}": v for k, v in lat.items()}}     # held out (latency: an unseen run)
    params = {**asdict(cfg), "train_seeds": _csv(cfg.train_seeds), "test_seeds": _csv(cfg.test_seeds),
              "train_mixes": _csv(pcfg.train_mixes), "oracle": "srpt", "baselines": "rr_10ms,cfs"}
    cand = Candidate(
        SCHEDULER, train_table=_digest({"mixes": pcfg.train_mixes, "seeds": cfg.train_seeds, "n_tasks": cfg.n_tasks}),
        eval_keys=keys, score=gain, baselines={"cfs": 0.0, "rr": cmp["test_rr_turnaround_gain_vs_cfs"]},
        checks=checks, params=params, metrics={**metrics, **info}, plots=[png],
        texts={"held_out_runs.csv": pl.DataFrame(rows).write_csv()},
        save_model=lambda d: save_policy(weights, example, d),
        log_extra=lambda: mlflow.log_artifact(str(ts), "torchscript"), score_registered=score_registered)
    result = release(tracker, cand, dagster_run_id=dagster_run_id)
    agg = pl.DataFrame(rows).group_by("policy").agg(
        pl.col("mean_turnaround_ms", "p99_latency_ms", "context_switches").mean()).sort("policy")
    return TelemetryRelease(result, metrics, {"by_policy": agg}, {"plot": png})
