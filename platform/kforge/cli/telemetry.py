"""``kforge telemetry ...``: simulate, import real traces, forecast on a trace, train and release
the models (the same functions and configs as the Dagster assets), evaluate them at bench scale
(held-out numbers, nothing registered), print the monitoring report, and explain the
recommender's state in words (``explain``: grounded in the state's numbers, LLM or template)."""

import argparse
import json
import time
from pathlib import Path

from kforge.cli.common import Ctx, finite_number_in, print_table, seed_list, seed_number
from kforge.errors import InputError

# simulated seconds of one machine run: a day at most (a longer one allocates its whole future up front
# and fails with a MemoryError); the workloads refuse fewer than 10 themselves
_sim_seconds = finite_number_in(high=86_400)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("telemetry", help="memory telemetry, OOM forecasting, scheduling policy, monitoring")
    t = p.add_subparsers(dest="telemetry_cmd", metavar="ACTION")
    t.required = True
    s = t.add_parser("simulate", help="simulate one machine and write its telemetry as a trace file (JSONL)")
    s.add_argument("workload")
    s.add_argument("--seed", type=seed_number, default=0)
    s.add_argument("--duration", type=_sim_seconds, default=600.0)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_simulate)
    i = t.add_parser("import-trace", help="import a /proc/meminfo + PSI trace (format: kforge.telemetry.traces)")
    i.add_argument("file")
    i.add_argument("--run-id", default="")
    i.set_defaults(func=cmd_import)
    f = t.add_parser("forecast", help="score a trace with the champion OOM forecaster; print alarms")
    f.add_argument("file")
    f.set_defaults(func=cmd_forecast)
    tr = t.add_parser("train", help="train the telemetry models and put each through the release path "
                                     "(same configs as the Dagster assets)")
    tr.add_argument("--model", choices=("oom", "recommender", "scheduler", "all"), default="all")
    tr.add_argument("--simulate", action="store_true",
                    help="first simulate and store memory_telemetry/oom_events (else: use the stored tables)")
    tr.add_argument("--fit-seeds", type=seed_list, default=(0, 1, 2, 3), help="simulation: comma-separated seeds")
    tr.add_argument("--calib-seeds", type=seed_list, default=(4, 5))
    tr.add_argument("--test-seeds", type=seed_list, default=(100, 101))
    tr.add_argument("--sim-duration", type=_sim_seconds, default=400.0)
    tr.add_argument("--horizon", type=float, default=20.0, help="forecaster: predict an OOM within this many seconds")
    tr.add_argument("--lead", type=float, default=5.0)
    tr.add_argument("--target-fpr", type=float, default=0.07)
    tr.add_argument("--n-estimators", type=int, default=300)
    tr.add_argument("--rec-workloads", default="leak,fragmenting", help="recommender: closed-loop workloads")
    tr.add_argument("--rec-seeds", type=seed_list, default=(100,))
    tr.add_argument("--rec-duration", type=_sim_seconds, default=300.0)
    tr.add_argument("--lookahead", type=float, default=20.0)
    tr.add_argument("--cooldown", type=float, default=10.0)
    tr.add_argument("--sched-train-seeds", type=seed_list, default=(0, 1, 2, 3), help="scheduler: training seeds")
    tr.add_argument("--sched-test-seeds", type=seed_list, default=(1000, 1001))
    tr.add_argument("--n-tasks", type=int, default=150)
    tr.add_argument("--epochs", type=int, default=8)
    tr.add_argument("--dagger-rounds", type=int, default=2)
    tr.set_defaults(func=cmd_train)
    e = t.add_parser("evaluate", help="held-out evaluation of the forecaster and the scheduling policy (JSON)")
    e.add_argument("--seeds", type=int, default=8, help="training seeds per workload")
    e.add_argument("--test-seeds", type=int, default=4)
    e.add_argument("--duration", type=_sim_seconds, default=600.0)
    e.add_argument("--skip-policy", action="store_true")
    e.set_defaults(func=cmd_evaluate)
    m = t.add_parser("monitoring", help="print the model-monitoring report (all families) and write its JSON")
    m.add_argument("--out", default="")
    m.set_defaults(func=cmd_monitoring)
    _register_explain(t)


def cmd_train(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.telemetry import release as tr
    from kforge.telemetry.forecast import ForecastConfig

    # every config is built (and so checked) before anything is simulated, trained or registered
    cfg = ForecastConfig(horizon_s=args.horizon, lead_s=args.lead, target_fpr=args.target_fpr,
                         n_estimators=args.n_estimators) if args.model in ("oom", "all") else None
    rcfg = tr.RecommenderConfig(workloads=tuple(w for w in args.rec_workloads.split(",") if w),
                                seeds=args.rec_seeds, duration_s=args.rec_duration, lookahead_s=args.lookahead,
                                cooldown_s=args.cooldown) if args.model in ("recommender", "all") else None
    scfg = tr.SchedulerConfig(train_seeds=args.sched_train_seeds, test_seeds=args.sched_test_seeds,
                              n_tasks=args.n_tasks, epochs=args.epochs,
                              dagger_rounds=args.dagger_rounds) if args.model in ("scheduler", "all") else None
    sim = tr.SimulationConfig(fit_seeds=args.fit_seeds, calib_seeds=args.calib_seeds, test_seeds=args.test_seeds,
                              duration_s=args.sim_duration) if args.simulate else None
    tracker = ctx.tracker()
    out = {}
    if sim is not None:
        tr.store_telemetry(ctx.warehouse(), sim)
    if cfg is not None:
        out["oom"] = tr.train_and_release_forecaster(tracker, ctx.warehouse(), cfg)
    if rcfg is not None:
        out["recommender"] = tr.train_and_release_recommender(tracker, rcfg, wh=ctx.warehouse())
    if scfg is not None:
        out["scheduler"] = tr.train_and_release_scheduler(tracker, scfg)
    print(json.dumps({k: {"model": r.result.spec.name, "version": r.result.version, "decision": r.result.decision,
                          "reason": r.result.reason, r.result.spec.metric: r.result.challenger_score}
                      for k, r in out.items()}, indent=2, default=float))
    return 0


def cmd_simulate(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.telemetry.memsim import simulate
    from kforge.telemetry.traces import write_trace

    samples, events = simulate(args.workload, args.seed, args.duration)
    write_trace(samples, events, Path(args.out))
    print(json.dumps({"out": args.out, "samples": samples.height, "oom_kills": events.height}))
    return 0


def cmd_import(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.telemetry.traces import read_trace

    samples, events = read_trace(args.file, args.run_id)
    wh = ctx.warehouse()
    added = wh.append_new("trace_telemetry", samples, keys=["run_id", "t_s"])
    ev = wh.append_new("trace_oom_events", events, keys=["run_id", "t_s", "kind"]) if events.height else 0
    print(json.dumps({"run_id": samples["run_id"][0], "samples_added": added, "oom_events_added": ev}))
    return 0


def cmd_forecast(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.monitoring import log_predictions, summarize_inputs
    from kforge.telemetry.features import FEATURES
    from kforge.telemetry.forecast import build_dataset, predict
    from kforge.telemetry.mlflow_models import load_forecaster
    from kforge.telemetry.traces import read_trace

    name = "kforge-telemetry-oom"
    tracker = ctx.tracker()
    champ = tracker.champion(name)
    if champ is None:
        raise InputError(f"{name} has no champion: materialize the telemetry group first")
    samples, events = read_trace(args.file)
    ds = build_dataset(samples, events, 20.0)
    model, thr = load_forecaster(tracker.model_uri(name), tracker.tracking_uri)
    t0 = time.perf_counter()
    score = predict(model, ds)
    ms = 1000 * (time.perf_counter() - t0)
    wh = ctx.warehouse()
    log_predictions(wh, "telemetry", name, int(champ.version), ms, ds.height,
                    summarize_inputs(wh, name, int(champ.version), ds.select(FEATURES)), batch_ref=Path(args.file).name)
    alarms = ds.with_columns(score=score).filter(score >= thr).select("t_s", "score", "free_pages", "frag_index")
    print_table(alarms)
    print(json.dumps({"samples": ds.height, "alarms": alarms.height, "threshold": thr, "model_version": int(champ.version)}))
    return 0


def cmd_evaluate(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.telemetry.evaluate import evaluate_forecaster, evaluate_policy

    if args.seeds < 3 or args.test_seeds < 1:
        raise InputError("need --seeds >= 3 (fit + 2 calibration) and --test-seeds >= 1")
    out = {"forecaster": evaluate_forecaster(args.seeds, args.test_seeds, args.duration)}
    out["forecaster"].pop("lead_times")
    if not args.skip_policy:
        out["policy"] = evaluate_policy()
    print(json.dumps(out, indent=2, default=float))
    return 0


def cmd_monitoring(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.monitoring import monitoring_report, report_frame, write_json

    rep = monitoring_report(ctx.warehouse())
    out = Path(args.out) if args.out else ctx.paths.exports / "monitoring" / "model_monitoring.json"
    write_json(rep, out)
    print_table(report_frame(rep))
    print(json.dumps({"json": str(out), "families_without_predictions": rep["families_without_predictions"]}))
    return 0


def _register_explain(t: argparse._SubParsersAction) -> None:
    from kforge.cli.llm import add_llm_options

    x = t.add_parser("explain", help="simulate a machine to its first OOM alarm (or --at T) and explain the "
                                     "recommender's state and best action in words (grounded, LLM or template)")
    x.add_argument("workload")
    x.add_argument("--seed", type=seed_number, default=100)
    x.add_argument("--duration", type=_sim_seconds, default=300.0)
    x.add_argument("--at", type=float, default=None, help="explain the state at T seconds (default: the first alarm)")
    x.add_argument("--threshold", type=finite_number_in(0.0, 1.0), default=0.5,
                   help="heuristic risk (0..1) that counts as an alarm")
    x.add_argument("--forecaster", action="store_true",
                   help="use the champion OOM forecaster (risk, threshold, contributions) instead of the heuristic")
    x.add_argument("--no-llm", action="store_true", help="the template explanation only")
    x.add_argument("--json", action="store_true", help="print the state, the explanation and its checks as JSON")
    add_llm_options(x, max_tokens=96)
    x.set_defaults(func=cmd_explain)


def _explain_state(ctx: Ctx, args: argparse.Namespace):  # noqa: ANN202 - a telemetry.explain.State
    import polars as pl

    from kforge.telemetry.explain import capture, forecaster_risk, heuristic_risk
    from kforge.telemetry.features import window_features
    from kforge.telemetry.memsim import SAMPLE_SCHEMA, SAMPLE_TICKS, MemorySim
    from kforge.telemetry.workloads import TICK_S, make_workload

    if args.at is not None and not 1 <= args.at <= args.duration:
        raise InputError(f"--at must be within 1..--duration ({args.duration:g}) seconds, got {args.at:g}")
    risk_fn, thr, source = heuristic_risk, args.threshold, "heuristic"
    if args.forecaster:
        from kforge.telemetry.mlflow_models import load_forecaster

        name = "kforge-telemetry-oom"
        tracker = ctx.tracker()
        champ = tracker.champion(name)
        if champ is None:
            raise InputError(f"{name} has no champion: run `kforge telemetry train --model oom` first, or drop --forecaster")
        model, thr = load_forecaster(tracker.model_uri(name), tracker.tracking_uri)
        risk_fn, source = forecaster_risk(model), f"{name} v{champ.version}"
    sim = MemorySim(make_workload(args.workload, args.seed, args.duration), run_id=f"{args.workload}-{args.seed}")
    while sim.tick < sim.w.n_ticks:
        sim.run_until(sim.tick + SAMPLE_TICKS)
        if args.at is not None:
            if sim.tick * TICK_S >= args.at:
                break
        elif risk_fn(window_features(pl.DataFrame(sim.samples[-31:], schema=SAMPLE_SCHEMA, orient="row")))[0] >= thr:
            break
    return capture(sim, risk_fn, thr, source)


def cmd_explain(ctx: Ctx, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from kforge.cli.llm import backend_from_args
    from kforge.telemetry.explain import explain, facts

    state = _explain_state(ctx, args)
    backend, params = (None, None) if args.no_llm else backend_from_args(args)
    ex = explain(state, backend, params)
    if args.json:
        print(json.dumps({"state": asdict(state), "facts": facts(state), "explanation": ex.to_dict()}, default=float))
        return 0
    print(ex.text)
    note = f"[source: {ex.source}"
    if ex.source == "template" and ex.llm_text:
        why = [f"ungrounded numbers {', '.join(ex.ungrounded)}"] if ex.ungrounded else []
        why += [f"LLM recommended {ex.llm_action}, the simulator {state.best_action}"] if ex.agrees is False else []
        why += ["no action in the LLM's answer"] if ex.llm_action is None else []
        note += "; the LLM's answer was rejected: " + "; ".join(why or ["rejected"])
    print(note + "]")
    return 0
