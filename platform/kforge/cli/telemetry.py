"""``kforge telemetry ...``: simulate, import real traces, forecast on a trace, evaluate the
models (held-out numbers), and print the monitoring report."""

import argparse
import json
import time
from pathlib import Path

from kforge.cli.common import Ctx, print_table
from kforge.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("telemetry", help="memory telemetry, OOM forecasting, scheduling policy, monitoring")
    t = p.add_subparsers(dest="telemetry_cmd", metavar="ACTION")
    t.required = True
    s = t.add_parser("simulate", help="simulate one machine and write its telemetry as a trace file (JSONL)")
    s.add_argument("workload")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--duration", type=float, default=600.0)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_simulate)
    i = t.add_parser("import-trace", help="import a /proc/meminfo + PSI trace (format: kforge.telemetry.traces)")
    i.add_argument("file")
    i.add_argument("--run-id", default="")
    i.set_defaults(func=cmd_import)
    f = t.add_parser("forecast", help="score a trace with the champion OOM forecaster; print alarms")
    f.add_argument("file")
    f.set_defaults(func=cmd_forecast)
    e = t.add_parser("evaluate", help="held-out evaluation of the forecaster and the scheduling policy (JSON)")
    e.add_argument("--seeds", type=int, default=8, help="training seeds per workload")
    e.add_argument("--test-seeds", type=int, default=4)
    e.add_argument("--duration", type=float, default=600.0)
    e.add_argument("--skip-policy", action="store_true")
    e.set_defaults(func=cmd_evaluate)
    m = t.add_parser("monitoring", help="print the model-monitoring report (all families) and write its JSON")
    m.add_argument("--out", default="")
    m.set_defaults(func=cmd_monitoring)


def cmd_simulate(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.telemetry.memsim import simulate
    from kforge.telemetry.traces import write_trace

    if args.duration > 86_400:
        raise InputError(f"--duration must be at most 86400 simulated seconds (one day), got {args.duration:g}")
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
    model, thr = load_forecaster(tracker.model_uri(name))
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
