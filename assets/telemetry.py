"""Asset group ``telemetry``: memory-telemetry simulation, the OOM forecaster (vs the original
heuristic), the what-to-do recommender, the learned scheduling policy (vs RR and CFS) and a
serving replay that feeds model monitoring.

Thin: each asset calls the library in ``kforge.telemetry`` and logs to MLflow ``kforge/telemetry``.
"""

import tempfile
import time
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
from kforge.dagster_io import MlflowResource, WarehouseResource
from kforge.dagster_io.metadata import metrics_md, plot_md, table_md
from kforge.registry import data_version
from kforge.scale.executor import WAREHOUSE_WRITER_TAGS
from pydantic import Field

GROUP = "telemetry"
OOM_MODEL = "kforge-telemetry-oom"
POLICY_MODEL = "kforge-telemetry-scheduler"


class TelemetryConfig(dg.Config):
    fit_seeds: list[int] = Field(default=[0, 1, 2, 3], description="Seeds whose runs train the forecaster.")
    calib_seeds: list[int] = Field(default=[4, 5], description="Seeds whose runs set the alarm threshold.")
    test_seeds: list[int] = Field(default=[100, 101], description="Held-out seeds: every reported metric.")
    duration_s: float = Field(default=400.0, description="Simulated seconds per run.")


@dg.multi_asset(
    op_tags=WAREHOUSE_WRITER_TAGS,
    specs=[dg.AssetSpec("memory_telemetry", group_name=GROUP, description="1 Hz telemetry of simulated machines (buddy allocator)."),
           dg.AssetSpec("oom_events", group_name=GROUP, description="OOM kills: the forecaster's ground truth.")],
)
def memory_telemetry(config: TelemetryConfig, warehouse: WarehouseResource):
    from kforge.telemetry.memsim import simulate_many, summarize_runs
    from kforge.telemetry.workloads import WORKLOADS

    seeds = sorted(set(config.fit_seeds + config.calib_seeds + config.test_seeds))
    t0 = time.perf_counter()
    samples, events = simulate_many(list(WORKLOADS), seeds, config.duration_s)
    role = {**{s: "fit" for s in config.fit_seeds}, **{s: "calib" for s in config.calib_seeds},
            **{s: "test" for s in config.test_seeds}}
    if len(role) != len(config.fit_seeds) + len(config.calib_seeds) + len(config.test_seeds):
        raise dg.Failure("fit, calibration and test seeds must be distinct")
    samples = samples.with_columns(pl.col("seed").replace_strict(role, return_dtype=pl.String).alias("split"))
    wh = warehouse.get()
    with wh.writer() as con:
        from kforge.storage.warehouse import replace

        replace(con, "memory_telemetry", samples)
        replace(con, "oom_events", events)
    summary = summarize_runs(samples, events)
    yield dg.MaterializeResult(asset_key="memory_telemetry", metadata={
        "dagster/row_count": samples.height, "runs": samples["run_id"].n_unique(),
        "simulate_s": round(time.perf_counter() - t0, 2), "per_workload": table_md(summary)})
    yield dg.MaterializeResult(asset_key="oom_events", metadata={
        "dagster/row_count": events.height,
        "by_cause": table_md(events.group_by("workload", "cause").len().sort("workload", "cause"))})


class ForecastAssetConfig(dg.Config):
    horizon_s: float = Field(default=20.0, description="Predict an OOM within this many seconds.")
    lead_s: float = Field(default=5.0, description="An incident counts as flagged if alarmed at least this early.")
    target_fpr: float = Field(default=0.07, description="Alarm threshold set on calibration runs for this FPR.")
    n_estimators: int = Field(default=300, description="LightGBM trees.")


OOM_CHECKS = [
    dg.AssetCheckSpec("oom_split_by_seed", asset="oom_forecaster", description="fit/calibration/test runs are disjoint seeds"),
    dg.AssetCheckSpec("oom_beats_heuristic", asset="oom_forecaster", description="model beats the original heuristic on held-out runs (AP and recall@5s)"),
    dg.AssetCheckSpec("oom_test_size", asset="oom_forecaster", description="at least 10 held-out OOM incidents"),
    dg.AssetCheckSpec("oom_target", asset="oom_forecaster", description=">= 80% incidents flagged >= 5 s ahead with FPR < 10%"),
]


@dg.asset(group_name=GROUP, deps=["memory_telemetry", "oom_events"], check_specs=OOM_CHECKS,
          description="Gradient boosting OOM forecaster vs the original heuristic; registered as kforge-telemetry-oom.")
def oom_forecaster(context: dg.AssetExecutionContext, config: ForecastAssetConfig, warehouse: WarehouseResource, mlflow: MlflowResource):
    import mlflow as mlf
    from kforge.monitoring import set_reference
    from kforge.telemetry.features import FEATURES
    from kforge.telemetry.forecast import (
        ForecastConfig,
        average_precision,
        build_dataset,
        predict,
        train_and_evaluate,
    )
    from kforge.telemetry.mlflow_models import load_forecaster, log_forecaster
    from kforge.telemetry.plots import lead_time_plot

    wh = warehouse.get()
    samples, events = wh.read_table("memory_telemetry"), wh.read_table("oom_events")
    cfg = ForecastConfig(horizon_s=config.horizon_s, lead_s=config.lead_s, target_fpr=config.target_fpr,
                         n_estimators=config.n_estimators)
    ds = build_dataset(samples, events, cfg.horizon_s)
    runs = ds.select("run_id", "split").unique()
    fit, cal, test = (sorted(runs.filter(pl.col("split") == k)["run_id"].to_list()) for k in ("fit", "calib", "test"))
    res = train_and_evaluate(ds, events, fit, cal, test, cfg)
    m = res.metrics
    tracker = mlflow.tracker()
    png = Path(tempfile.mkdtemp()) / "oom_lead_times.png"
    lead_time_plot(res.lead_times, cfg.horizon_s, cfg.lead_s, png)
    with tracker.run(GROUP, "oom_forecaster", dagster_run_id=context.run.run_id, asset_key="oom_forecaster",
                     data_version=data_version(samples)) as run:
        mlf.log_params({"horizon_s": cfg.horizon_s, "lead_s": cfg.lead_s, "target_fpr": cfg.target_fpr,
                        "n_estimators": cfg.n_estimators, "fit_runs": len(fit), "calib_runs": len(cal),
                        "test_runs": len(test), "threshold": res.threshold, "baseline": "original heuristic"})
        mlf.log_metrics(m)
        mlf.log_artifact(str(png))
        mlf.log_text(res.per_workload.write_csv(), "per_workload.csv")
        log_forecaster(res.model, res.test.select(FEATURES).head(50).to_pandas(), res.threshold)
        run_id = run.info.run_id
    version = tracker.register(run_id, "model", OOM_MODEL, tags={"threshold": f"{res.threshold:.6f}"})
    champ_score = None
    champ = tracker.champion(OOM_MODEL)
    if champ is not None:
        try:
            cm, _ = load_forecaster(tracker.model_uri(OOM_MODEL))
            champ_score = average_precision(res.test["y"].to_numpy(), predict(cm, res.test))
        except Exception as exc:  # a champion with other features cannot be scored on these rows
            context.log.warning(f"champion not scorable: {exc}")
    overlap = (set(fit) | set(cal)) & set(test)
    beats = m["test_ap"] > m["test_heuristic_ap"] and m["test_recall_5s"] >= m["test_heuristic_recall_5s"]
    blocked = [n for n, ok in (("oom_split_by_seed", not overlap), ("oom_beats_heuristic", beats),
                               ("oom_test_size", m["test_n_incidents"] >= 10)) if not ok]
    decision = tracker.gate(OOM_MODEL, version, metric="test_ap", challenger_score=m["test_ap"],
                            champion_score=champ_score, blocked_by=blocked)
    set_reference(wh, GROUP, OOM_MODEL, version, ds.filter(pl.col("run_id").is_in(fit)).select(FEATURES))
    target_ok = m["test_recall_5s"] >= 0.8 and m["test_fpr"] < 0.10
    return dg.MaterializeResult(
        metadata={"mlflow_run_id": run_id, "model_version": version, "metrics": metrics_md(m),
                  "per_workload": table_md(res.per_workload), "lead_times": plot_md(png), **decision.as_metadata()},
        check_results=[
            dg.AssetCheckResult(check_name="oom_split_by_seed", passed=not overlap,
                                metadata={"fit_runs": len(fit), "calib_runs": len(cal), "test_runs": len(test)}),
            dg.AssetCheckResult(check_name="oom_beats_heuristic", passed=beats, metadata={
                "ap": m["test_ap"], "heuristic_ap": m["test_heuristic_ap"], "recall_5s": m["test_recall_5s"],
                "heuristic_recall_5s": m["test_heuristic_recall_5s"]}),
            dg.AssetCheckResult(check_name="oom_test_size", passed=m["test_n_incidents"] >= 10,
                                metadata={"incidents": m["test_n_incidents"], "rows": m["test_rows"]}),
            dg.AssetCheckResult(check_name="oom_target", passed=target_ok, severity=dg.AssetCheckSeverity.WARN,
                                metadata={"recall_5s": m["test_recall_5s"], "fpr": m["test_fpr"]}),
        ])


class RecommenderConfig(dg.Config):
    workloads: list[str] = Field(default=["leak", "fragmenting"], description="Workloads of the closed-loop evaluation.")
    seeds: list[int] = Field(default=[100], description="Held-out seeds.")
    duration_s: float = Field(default=300.0, description="Simulated seconds per run.")
    lookahead_s: float = Field(default=20.0, description="How far each action is simulated ahead.")


@dg.asset(group_name=GROUP, deps=["oom_forecaster"],
          check_specs=[dg.AssetCheckSpec("recommender_not_worse", asset="oom_recommender",
                                         description="recommender total cost <= doing nothing, on held-out runs")],
          description="What-to-do recommender (compact / reclaim / kill largest / nothing) chosen by simulated outcome, "
                      "closed loop with the champion forecaster vs fixed strategies.")
def oom_recommender(context: dg.AssetExecutionContext, config: RecommenderConfig, warehouse: WarehouseResource,
                    mlflow: MlflowResource):
    import mlflow as mlf
    from kforge.monitoring import log_followed, log_predictions
    from kforge.telemetry.mlflow_models import load_forecaster
    from kforge.telemetry.recommend import STRATEGIES, closed_loop

    tracker = mlflow.tracker()
    model, thr = load_forecaster(tracker.model_uri(OOM_MODEL))
    champ = tracker.champion(OOM_MODEL)

    def scorer(x: np.ndarray) -> float:
        return float(model.predict_proba(x)[0, 1])

    rows = []
    for w in config.workloads:
        for s in config.seeds:
            for strat in STRATEGIES:
                t0 = time.perf_counter()
                r = closed_loop(w, s, config.duration_s, scorer, thr, strat, lookahead_s=config.lookahead_s)
                r["seconds"] = round(time.perf_counter() - t0, 2)
                rows.append(r)
                if strat == "recommender":
                    n_rec = sum(r[f"n_{a}"] for a in ("nothing", "compact", "reclaim", "kill_largest"))
                    log_predictions(warehouse.get(), GROUP, "oom_recommender", int(champ.version), r["seconds"] * 1000,
                                    max(n_rec, 0), batch_ref=f"{w}-{s}")
                    log_followed(warehouse.get(), GROUP, "oom_recommender", int(champ.version),
                                 n_rec - r["n_nothing"], max(n_rec, r["n_nothing"]), batch_ref=f"{w}-{s}")
    df = pl.DataFrame(rows)
    agg = df.group_by("strategy").agg(pl.col("oom_kills", "cost", "alarms").sum()).sort("cost")
    cost = dict(agg.select("strategy", "cost").iter_rows())
    with tracker.run(GROUP, "oom_recommender", dagster_run_id=context.run.run_id, asset_key="oom_recommender") as run:
        mlf.log_params({"lookahead_s": config.lookahead_s, "workloads": ",".join(config.workloads),
                        "seeds": ",".join(map(str, config.seeds)), "forecaster_version": int(champ.version)})
        mlf.log_metrics({f"test_cost_{k}": float(v) for k, v in cost.items()})
        mlf.log_text(df.write_csv(), "closed_loop.csv")
        run_id = run.info.run_id
    ok = cost["recommender"] <= cost["none"]
    return dg.MaterializeResult(
        metadata={"mlflow_run_id": run_id, "by_strategy": table_md(agg), "runs": table_md(df)},
        check_results=[dg.AssetCheckResult(check_name="recommender_not_worse", passed=ok,
                                           metadata={"recommender_cost": cost["recommender"], "none_cost": cost["none"]})])


class PolicyAssetConfig(dg.Config):
    train_seeds: list[int] = Field(default=[0, 1, 2, 3], description="Seeds of the training workloads.")
    test_seeds: list[int] = Field(default=[1000, 1001], description="Held-out seeds (all four mixes, one never trained on).")
    n_tasks: int = Field(default=150, description="Tasks per workload.")
    epochs: int = Field(default=8, description="Imitation epochs (then half as many per DAgger round).")
    dagger_rounds: int = Field(default=2, description="DAgger rounds (policy runs, oracle labels).")


POLICY_CHECKS = [
    dg.AssetCheckSpec("policy_held_out", asset="scheduling_policy", description="test workloads use unseen seeds and an unseen mix"),
    dg.AssetCheckSpec("policy_beats_cfs", asset="scheduling_policy", description="better mean turnaround than CFS on held-out workloads"),
    dg.AssetCheckSpec("policy_target", asset="scheduling_policy",
                      description=">= 15% better mean completion and >= 10% fewer switches than CFS; numpy p50 < 50 us"),
]


@dg.asset(group_name=GROUP, check_specs=POLICY_CHECKS,
          description="Attention policy over runnable tasks imitating SRPT (DAgger); vs RR and CFS; registered as kforge-telemetry-scheduler.")
def scheduling_policy(context: dg.AssetExecutionContext, config: PolicyAssetConfig, mlflow: MlflowResource):
    import mlflow as mlf
    import torch
    from kforge.telemetry.mlflow_models import load_policy, log_policy, policy_example
    from kforge.telemetry.plots import scheduler_plot
    from kforge.telemetry.policy import (
        PolicyConfig,
        compare_to_cfs,
        decision_latency_us,
        evaluate_policies,
        export_torchscript,
        train_policy,
    )
    from kforge.telemetry.schedsim import MIXES, SchedSim, features, make_sched_workload

    torch.set_num_threads(1)
    cfg = PolicyConfig(train_seeds=tuple(config.train_seeds), n_tasks=config.n_tasks, epochs=config.epochs,
                       dagger_rounds=config.dagger_rounds)
    module, pol, info = train_policy(cfg)
    tests = [make_sched_workload(m, s, config.n_tasks) for m in MIXES for s in config.test_seeds]
    rows = evaluate_policies(tests, pol)
    cmp = compare_to_cfs(rows)
    lat = decision_latency_us(pol, module)
    tmp = Path(tempfile.mkdtemp())
    png = scheduler_plot(pl.DataFrame(rows), tmp / "scheduler.png")
    weights = pol.save(tmp / "policy_weights.npz")
    ts = export_torchscript(module, tmp / "policy.pt")
    tracker = mlflow.tracker()
    with tracker.run(GROUP, "scheduling_policy", dagster_run_id=context.run.run_id, asset_key="scheduling_policy") as run:
        mlf.log_params({"train_mixes": ",".join(cfg.train_mixes), "train_seeds": ",".join(map(str, cfg.train_seeds)),
                        "test_seeds": ",".join(map(str, config.test_seeds)), "n_tasks": cfg.n_tasks,
                        "epochs": cfg.epochs, "dagger_rounds": cfg.dagger_rounds, "oracle": "srpt",
                        "baselines": "rr_10ms,cfs"})
        mlf.log_metrics({**cmp, **info, **{f"latency_{k}": v for k, v in lat.items()}})
        mlf.log_artifact(str(png))
        mlf.log_text(pl.DataFrame(rows).write_csv(), "held_out_runs.csv")
        sim = SchedSim(tests[0])
        log_policy(weights, ts, policy_example(features(sim, list(range(4)))))
        run_id = run.info.run_id
    version = tracker.register(run_id, "model", POLICY_MODEL)
    champ_score = None
    if tracker.champion(POLICY_MODEL) is not None:
        try:
            champ_score = compare_to_cfs(evaluate_policies(tests, load_policy(tracker.model_uri(POLICY_MODEL))))[
                "test_turnaround_gain_vs_cfs"]
        except Exception as exc:
            context.log.warning(f"champion not scorable: {exc}")
    held_out = not (set(config.train_seeds) & set(config.test_seeds)) and any(m not in cfg.train_mixes for m in MIXES)
    beats = cmp["test_turnaround_gain_vs_cfs"] > 0
    blocked = [n for n, ok in (("policy_held_out", held_out), ("policy_beats_cfs", beats)) if not ok]
    decision = tracker.gate(POLICY_MODEL, version, metric="test_turnaround_gain_vs_cfs",
                            challenger_score=cmp["test_turnaround_gain_vs_cfs"], champion_score=champ_score,
                            blocked_by=blocked)
    target = (cmp["test_turnaround_gain_vs_cfs"] >= 0.15 and cmp["test_switch_reduction_vs_cfs"] >= 0.10
              and lat["numpy_p50_us"] < 50)
    agg = pl.DataFrame(rows).group_by("policy").agg(
        pl.col("mean_turnaround_ms", "p99_latency_ms", "context_switches").mean()).sort("policy")
    return dg.MaterializeResult(
        metadata={"mlflow_run_id": run_id, "model_version": version, "metrics": metrics_md({**cmp, **lat, **info}),
                  "by_policy": table_md(agg), "plot": plot_md(png), **decision.as_metadata()},
        check_results=[
            dg.AssetCheckResult(check_name="policy_held_out", passed=held_out),
            dg.AssetCheckResult(check_name="policy_beats_cfs", passed=beats,
                                metadata={"gain_vs_cfs": cmp["test_turnaround_gain_vs_cfs"]}),
            dg.AssetCheckResult(check_name="policy_target", passed=target, severity=dg.AssetCheckSeverity.WARN,
                                metadata={"gain_vs_cfs": cmp["test_turnaround_gain_vs_cfs"],
                                          "switch_reduction": cmp["test_switch_reduction_vs_cfs"],
                                          "numpy_p50_us": lat["numpy_p50_us"]}),
        ])


class ReplayConfig(dg.Config):
    seed: int = Field(default=5000, description="Seed of the 'live' runs (never used in training).")
    duration_s: float = Field(default=300.0, description="Simulated seconds per live run.")
    batch_s: int = Field(default=30, description="Seconds of telemetry per logged prediction call.")


@dg.asset(op_tags=WAREHOUSE_WRITER_TAGS, group_name=GROUP, deps=["oom_forecaster", "scheduling_policy"],
          description="Serves the champions on fresh simulated machines and logs predictions, latency, inputs and "
                      "outcomes through kforge.monitoring (what production serving would log).")
def telemetry_serving_replay(config: ReplayConfig, warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    from kforge.telemetry.serving import replay_forecaster, replay_scheduler

    tracker = mlflow.tracker()
    wh = warehouse.get()
    f = replay_forecaster(wh, tracker, OOM_MODEL, config.seed, config.duration_s, config.batch_s)
    s = replay_scheduler(wh, tracker, POLICY_MODEL, config.seed)
    return dg.MaterializeResult(metadata={"forecaster": metrics_md(f), "scheduler": metrics_md(s)})


defs = dg.Definitions(assets=[memory_telemetry, oom_forecaster, oom_recommender, scheduling_policy,
                              telemetry_serving_replay])
