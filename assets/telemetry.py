"""Asset group ``telemetry``: memory-telemetry simulation, the OOM forecaster (vs the original
heuristic), the what-to-do recommender, the learned scheduling policy (vs RR and CFS) and a
serving replay that feeds model monitoring.

Thin: each model asset maps its config into :mod:`kforge.telemetry.release` (the same functions
``kforge telemetry train`` calls), which puts the model through the one release path.
"""

import time

import dagster as dg
from kforge.dagster_io import MlflowResource, WarehouseResource
from kforge.dagster_io.metadata import metric_entries, plot_md, table_md
from kforge.dagster_io.release import release_check_results, release_checks, release_metadata
from kforge.telemetry.specs import FORECASTER, RECOMMENDER, SCHEDULER
from pydantic import Field

GROUP = "telemetry"
OOM_MODEL = FORECASTER.name
POLICY_MODEL = SCHEDULER.name


class TelemetryConfig(dg.Config):
    fit_seeds: list[int] = Field(default=[0, 1, 2, 3], description="Seeds whose runs train the forecaster.")
    calib_seeds: list[int] = Field(default=[4, 5], description="Seeds whose runs set the alarm threshold.")
    test_seeds: list[int] = Field(default=[100, 101], description="Held-out seeds: every reported metric.")
    duration_s: float = Field(default=400.0, description="Simulated seconds per run.")
    workloads: list[str] = Field(default=[], description="Workloads to simulate (empty: every workload).")


@dg.multi_asset(
    specs=[dg.AssetSpec("memory_telemetry", group_name=GROUP, description="1 Hz telemetry of simulated machines (buddy allocator)."),
           dg.AssetSpec("oom_events", group_name=GROUP, description="OOM kills: the forecaster's ground truth.")],
)
def memory_telemetry(config: TelemetryConfig, warehouse: WarehouseResource):
    from kforge.errors import InputError
    from kforge.telemetry.memsim import summarize_runs
    from kforge.telemetry.release import SimulationConfig, store_telemetry

    t0 = time.perf_counter()
    try:
        samples, events = store_telemetry(warehouse.get(), SimulationConfig(
            fit_seeds=tuple(config.fit_seeds), calib_seeds=tuple(config.calib_seeds),
            test_seeds=tuple(config.test_seeds), duration_s=config.duration_s, workloads=tuple(config.workloads)))
    except InputError as exc:
        raise dg.Failure(str(exc)) from exc
    summary = summarize_runs(samples, events)
    yield dg.MaterializeResult(asset_key="memory_telemetry", metadata={
        "dagster/row_count": samples.height, "runs": samples["run_id"].n_unique(),
        "simulate_s": round(time.perf_counter() - t0, 2), "per_workload": table_md(summary)})
    yield dg.MaterializeResult(asset_key="oom_events", metadata={
        "dagster/row_count": events.height,
        "by_cause": table_md(events.group_by("workload", "cause").len().sort("workload", "cause"))})


def _result(out) -> dg.MaterializeResult:  # noqa: ANN001 - a kforge.telemetry.release.TelemetryRelease
    """Release metadata and checks, plus the model's metrics, tables and plots."""
    return dg.MaterializeResult(
        metadata={**release_metadata(out.result), **metric_entries(out.metrics),
                  **{k: table_md(v) for k, v in out.tables.items()}, **{k: plot_md(v, out.result.run_id) for k, v in out.plots.items()}},
        check_results=release_check_results(out.result))


class ForecastAssetConfig(dg.Config):
    horizon_s: float = Field(default=20.0, description="Predict an OOM within this many seconds.")
    lead_s: float = Field(default=5.0, description="An incident counts as flagged if alarmed at least this early.")
    target_fpr: float = Field(default=0.07, description="Alarm threshold set on calibration runs for this FPR.")
    n_estimators: int = Field(default=300, description="LightGBM trees.")


@dg.asset(group_name=GROUP, deps=["memory_telemetry", "oom_events"], check_specs=release_checks(FORECASTER),
          description="Gradient boosting OOM forecaster vs the original heuristic; released as kforge-telemetry-oom.")
def oom_forecaster(context: dg.AssetExecutionContext, config: ForecastAssetConfig, warehouse: WarehouseResource,
                   mlflow: MlflowResource) -> dg.MaterializeResult:
    from kforge.telemetry.forecast import ForecastConfig
    from kforge.telemetry.release import train_and_release_forecaster

    cfg = ForecastConfig(horizon_s=config.horizon_s, lead_s=config.lead_s, target_fpr=config.target_fpr,
                         n_estimators=config.n_estimators)
    return _result(train_and_release_forecaster(mlflow.tracker(), warehouse.get(), cfg,
                                                dagster_run_id=context.run.run_id))


class RecommenderConfig(dg.Config):
    workloads: list[str] = Field(default=["leak", "fragmenting"], description="Workloads of the closed-loop evaluation.")
    seeds: list[int] = Field(default=[100], description="Held-out seeds (never the forecaster's fit or calibration seeds).")
    duration_s: float = Field(default=300.0, description="Simulated seconds per run.")
    lookahead_s: float = Field(default=20.0, description="How far each action is simulated ahead.")
    cooldown_s: float = Field(default=10.0, description="Minimum seconds between two actions.")


@dg.asset(group_name=GROUP, deps=["oom_forecaster"], check_specs=release_checks(RECOMMENDER),
          description="What-to-do recommender (compact / reclaim / kill largest / nothing) chosen by simulated outcome, "
                      "closed loop with the champion forecaster vs doing nothing and fixed strategies; released as "
                      "kforge-telemetry-recommender.")
def oom_recommender(context: dg.AssetExecutionContext, config: RecommenderConfig, warehouse: WarehouseResource,
                    mlflow: MlflowResource) -> dg.MaterializeResult:
    from kforge.telemetry import release as tr

    cfg = tr.RecommenderConfig(workloads=tuple(config.workloads), seeds=tuple(config.seeds),
                               duration_s=config.duration_s, lookahead_s=config.lookahead_s,
                               cooldown_s=config.cooldown_s)
    return _result(tr.train_and_release_recommender(mlflow.tracker(), cfg, wh=warehouse.get(),
                                                    dagster_run_id=context.run.run_id))


class PolicyAssetConfig(dg.Config):
    train_seeds: list[int] = Field(default=[0, 1, 2, 3], description="Seeds of the training workloads.")
    test_seeds: list[int] = Field(default=[1000, 1001], description="Held-out seeds (all four mixes, one never trained on).")
    n_tasks: int = Field(default=150, description="Tasks per workload.")
    epochs: int = Field(default=8, description="Imitation epochs (then half as many per DAgger round).")
    dagger_rounds: int = Field(default=2, description="DAgger rounds (policy runs, oracle labels).")


@dg.asset(group_name=GROUP, check_specs=release_checks(SCHEDULER),
          description="Attention policy over runnable tasks imitating SRPT (DAgger); vs RR and CFS; released as "
                      "kforge-telemetry-scheduler.")
def scheduling_policy(context: dg.AssetExecutionContext, config: PolicyAssetConfig,
                      mlflow: MlflowResource) -> dg.MaterializeResult:
    from kforge.telemetry.release import SchedulerConfig, train_and_release_scheduler

    cfg = SchedulerConfig(train_seeds=tuple(config.train_seeds), test_seeds=tuple(config.test_seeds),
                          n_tasks=config.n_tasks, epochs=config.epochs, dagger_rounds=config.dagger_rounds)
    return _result(train_and_release_scheduler(mlflow.tracker(), cfg, dagster_run_id=context.run.run_id))


class ReplayConfig(dg.Config):
    seed: int = Field(default=5000, description="Seed of the 'live' runs (never used in training).")
    duration_s: float = Field(default=300.0, description="Simulated seconds per live run.")
    batch_s: int = Field(default=30, description="Seconds of telemetry per logged prediction call.")


@dg.asset(group_name=GROUP, deps=["oom_forecaster", "scheduling_policy"],
          description="Serves the champions on fresh simulated machines and logs predictions, latency, inputs and "
                      "outcomes through kforge.monitoring (what production serving would log).")
def telemetry_serving_replay(config: ReplayConfig, warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    from kforge.telemetry.serving import replay_forecaster, replay_scheduler

    tracker = mlflow.tracker()
    wh = warehouse.get()
    f = replay_forecaster(wh, tracker, OOM_MODEL, config.seed, config.duration_s, config.batch_s)
    s = replay_scheduler(wh, tracker, POLICY_MODEL, config.seed)
    return dg.MaterializeResult(metadata={**metric_entries(f, "forecaster"), **metric_entries(s, "scheduler")})


defs = dg.Definitions(assets=[memory_telemetry, oom_forecaster, oom_recommender, scheduling_policy,
                              telemetry_serving_replay])
