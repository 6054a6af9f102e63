"""``kforge acceptance score|train|evaluate``: the acceptance family from the command line."""

import argparse
import json
from pathlib import Path

import kforge.acceptance.feedback  # noqa: F401 - registers "acceptance" for `kforge feedback add/import`
from kforge.cli.common import Ctx
from kforge.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("acceptance", help="acceptance models: score, train, evaluate")
    asub = p.add_subparsers(dest="acceptance_cmd", metavar="ACTION")
    asub.required = True
    s = asub.add_parser("score", help="score commits (p_defect) or patch e-mails (p_merged) with the champion")
    s.add_argument("--input", required=True, help="commits .parquet, e-mail .parquet, or .mbox/.patch")
    s.add_argument("--output", required=True, help="output .parquet")
    s.add_argument("--target", default="auto", choices=["auto", "commit", "email"])
    s.add_argument("--alias", default="champion", help="model alias (champion, challenger, previous-champion)")
    s.add_argument("--top", type=int, default=3, help="top contributing features per row")
    s.set_defaults(func=cmd_score)
    t = asub.add_parser("train", help="train, log to MLflow, register a challenger and run the gate")
    t.add_argument("--target", default="commit", choices=["commit", "email"])
    t.add_argument("--cutoff", default="", help="train before this date (YYYY-MM-DD); default automatic")
    t.add_argument("--test-end", default="")
    t.add_argument("--repos", default="", help="comma-separated repositories (commit target)")
    t.add_argument("--min-observation-days", type=int, default=180)
    t.add_argument("--train-labels", default="as_of_cutoff", choices=["as_of_cutoff", "snapshot"])
    t.add_argument("--n-estimators", type=int, default=250)
    t.set_defaults(func=cmd_train)
    e = asub.add_parser("evaluate", help="measure the quality targets on the real data (prints JSON)")
    e.add_argument("suite", choices=["dpdk", "jit", "ltp", "cross", "all"])
    e.add_argument("--n-estimators", type=int, default=250)
    e.add_argument("--dpdk-git", default=None, metavar="PATH",
                   help="a DPDK git clone: diff features for every commit, not only the stored recent ones (dpdk suite)")
    e.set_defaults(func=cmd_evaluate)


def cmd_score(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.acceptance.scoring import score_file

    if args.top < 0:
        raise InputError("--top must be >= 0")
    out = Path(args.output)
    if out.suffix != ".parquet":
        raise InputError(f"--output must end in .parquet, got {out}")
    df = score_file(args.input, ctx.warehouse(), ctx.tracker(), args.target, args.alias, args.top)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(out)
    print(json.dumps({"scored": df.height, "output": str(out), "columns": df.columns}))
    return 0


def cmd_train(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.acceptance.pipeline import (
        commit_frame,
        email_source,
        email_training_frame,
        predictions_frame,
        store_predictions,
    )
    from kforge.acceptance.spec import spec_for
    from kforge.acceptance.tracking import log_and_gate
    from kforge.acceptance.train import TrainConfig, train_and_evaluate
    from kforge.monitoring.calls import set_training_reference

    wh = ctx.warehouse()
    spec = spec_for(args.target)
    if args.target == "commit":
        frame = commit_frame(wh, [r for r in args.repos.split(",") if r] or None)
    else:
        mails, _ = email_source(ctx.data, wh)
        if mails is None:
            raise InputError("no patch e-mails: pass --data (acceptance_ltp.parquet) or run `kforge ingest-list`")
        frame = email_training_frame(mails, wh)
    cfg = TrainConfig(cutoff=args.cutoff, test_end=args.test_end, min_observation_days=args.min_observation_days,
                      train_labels=args.train_labels, n_estimators=args.n_estimators)
    res = train_and_evaluate(frame, spec, cfg)
    logged = log_and_gate(ctx.tracker(), res, run_name=f"acceptance_{args.target}_cli")
    set_training_reference(wh, "acceptance", spec.model_name, logged.version, res.split.train.select(spec.numeric))
    store_predictions(wh, predictions_frame(frame, spec, res.model.predict_proba(frame), logged.version))
    print(json.dumps({"run_id": logged.run_id, "version": logged.version, "gate": logged.decision.as_metadata(),
                      "gates": {k: v[0] for k, v in res.gates.items()},
                      "metrics": {k: round(v, 4) for k, v in res.metrics.items()}}, indent=1))
    return 0


def cmd_evaluate(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.acceptance.evaluate import SUITES, suite_dpdk

    git_repo = None
    if args.dpdk_git:
        from kforge.git.gitcmd import check_repository

        git_repo = check_repository(args.dpdk_git)
    data = ctx.data or Path(__file__).resolve().parents[4] / "shared" / "data"
    if not (data / "kernel").is_dir():
        raise InputError(f"real data not found at {data}: pass --data DIR (laid out like ../shared/data)")
    names = list(SUITES) if args.suite == "all" else [args.suite]
    for name in names:
        res = (suite_dpdk(data, args.n_estimators, git_repo) if name == "dpdk" and git_repo is not None
               else SUITES[name](data, args.n_estimators))
        print(json.dumps({"suite": name, **res}, default=str), flush=True)
    return 0
