"""``kforge acceptance score|train|evaluate``: the acceptance family from the command line."""

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from kforge.cli.common import Ctx
from kforge.errors import InputError
from kforge.text import use_encoder

if TYPE_CHECKING:
    from kforge.acceptance.train import TrainConfig


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
    t = asub.add_parser("train", help="train, then release: log to MLflow, register a challenger, score the "
                                      "champion on the same held-out rows, gate and promote (options left out "
                                      "take TrainConfig's defaults, as the Dagster asset does)")
    t.add_argument("--target", default="commit", choices=["commit", "email"])
    t.add_argument("--cutoff", default=None, help="train before this date (YYYY-MM-DD); default automatic")
    t.add_argument("--test-end", default=None, help="test window end (YYYY-MM-DD); default the label snapshot")
    t.add_argument("--test-fraction", type=float, default=None,
                   help="share of observable rows held out when --cutoff is not given")
    t.add_argument("--repos", default="", help="comma-separated repositories (commit target)")
    t.add_argument("--min-observation-days", type=int, default=None)
    t.add_argument("--train-labels", default=None, choices=["as_of_cutoff", "snapshot"])
    t.add_argument("--n-estimators", type=int, default=None)
    t.add_argument("--n-folds", type=int, default=None)
    t.add_argument("--no-text", dest="use_text", action="store_false", default=None,
                   help="leave out the n-gram text model")
    t.add_argument("--min-test-rows", type=int, default=None, help="test_size gate: minimum held-out rows")
    t.add_argument("--min-test-class", type=int, default=None,
                   help="test_size gate: minimum held-out rows of each class")
    t.add_argument("--min-diff-coverage", type=float, default=None)
    t.add_argument("--prior-k", type=float, default=None,
                   help="cold start: blend with lines added, model weight = positives / (positives + K); 0 = off")
    _cold_start_flags(t)
    t.add_argument("--no-group-balanced", dest="group_balanced", action="store_false", default=None,
                   help="with two or more repositories, keep global class weights instead of balancing the "
                        "classes within each repository")
    t.add_argument("--text-encoder", dest="text_encoder", action="store_true", default=None,
                   help="add a member on pretrained sentence embeddings of subject and body (off by default until "
                        "it shows a held-out gain, see docs/notes/issue-20-encoder-acceptance.md)")
    t.add_argument("--no-generalizes", dest="generalizes", action="store_false", default=None,
                   help="skip leave-one-repository-out (the generalizes gate is then reported as not run)")
    t.add_argument("--generalizes-n-estimators", type=int, default=None,
                   help="trees per boosted model in each leave-one-repository-out fit")
    t.add_argument("--generalizes-min-class", type=int, default=None,
                   help="judge a held-out repository only with this many test rows of each class")
    t.set_defaults(func=cmd_train)
    e = asub.add_parser("evaluate", help="measure the quality targets on the real data (prints JSON)")
    e.add_argument("suite", choices=["dpdk", "jit", "jit-cross", "ltp", "cross", "loro", "all"],
                   help="loro: leave one repository out over every repository in --data (the generalizes gate); "
                        "jit-cross: the JIT anchors cross-project, train on the other projects, test on each one")
    e.add_argument("--n-estimators", type=int, default=250)
    e.add_argument("--text-encoder", action="store_true",
                   help="ablation: add the pretrained-encoder member (dpdk, ltp, loro; cached in the home's warehouse)")
    _cold_start_flags(e)
    e.add_argument("--no-group-balanced", dest="group_balanced", action="store_false",
                   help="ablation: global class weights for models trained on two or more repositories/projects")
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
    print(json.dumps({"scored": df.height, "cold_start": int(df["cold_start"].sum()), "output": str(out),
                      "columns": df.columns}))
    return 0


FIELDS = ("cutoff", "test_end", "test_fraction", "min_observation_days", "train_labels", "n_estimators", "n_folds",
          "use_text", "min_test_rows", "min_test_class", "min_diff_coverage", "prior_k", "cold_start_weight", "group_balanced", "text_encoder", "generalizes", "generalizes_n_estimators",
          "generalizes_min_class")


def _cold_start_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cold-start-weight", type=float, default=None, metavar="W",
                   help="the stack's weight (0 < W <= 1) against lines added on rows of a repository the model never "
                        "trained on (cold-start mode; default: kforge.acceptance.model.COLD_START_WEIGHT)")
    p.add_argument("--no-cold-start", action="store_true",
                   help="score unseen repositories like the training ones (no cold-start mode)")


def _cold_start(args: argparse.Namespace) -> float | None:
    """The cold-start weight the flags ask for (checked as :class:`TrainConfig` checks it)."""
    from kforge.acceptance.train import TrainConfig

    if args.no_cold_start and args.cold_start_weight is not None:
        raise InputError("--cold-start-weight and --no-cold-start contradict each other: give one")
    if args.no_cold_start:
        return None
    given = {} if args.cold_start_weight is None else {"cold_start_weight": args.cold_start_weight}
    return TrainConfig(**given).cold_start_weight


def train_config(args: argparse.Namespace) -> "TrainConfig":
    """The arguments given, over :class:`TrainConfig`'s defaults (declared there once)."""
    from kforge.acceptance.train import TrainConfig

    given = {f: getattr(args, f) for f in FIELDS if getattr(args, f) is not None and f != "cold_start_weight"}
    return TrainConfig(**given, cold_start_weight=_cold_start(args))


def cmd_train(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.acceptance.release import train_and_release

    run = train_and_release(ctx.tracker(), ctx.warehouse(), args.target, train_config(args),
                            repos=[r for r in args.repos.split(",") if r], data_root=ctx.data)
    if run.result is None or run.train is None:
        raise InputError(run.skipped)
    r = run.result
    print(json.dumps({"model": r.spec.name, "run_id": r.run_id, "version": r.version, "decision": r.decision,
                      "reason": r.reason, "gates": {c.name: c.passed for c in r.checks},
                      "metrics": {k: round(v, 4) for k, v in run.train.metrics.items()}}, indent=1))
    return 0


def cmd_evaluate(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.acceptance.evaluate import SUITES, SuiteOptions, suite_dpdk

    git_repo = None
    if args.dpdk_git:
        from kforge.git.gitcmd import check_repository

        git_repo = check_repository(args.dpdk_git)
    data = ctx.data or Path(__file__).resolve().parents[4] / "shared" / "data"
    needs = "jit_anchors" if args.suite in ("jit", "jit-cross") else "kernel"
    if not (data / needs).is_dir():
        raise InputError(f"real data not found at {data / needs}: pass --data DIR (laid out like ../shared/data)")
    names = list(SUITES) if args.suite == "all" else [args.suite]
    opts = SuiteOptions(text_encoder=args.text_encoder, group_balanced=args.group_balanced,
                        cold_start_weight=_cold_start(args))
    for name in names:
        with use_encoder(ctx.text_encoder()):  # used only with --text-encoder; cache in the home's warehouse
            res = (suite_dpdk(data, args.n_estimators, git_repo, opts=opts) if name == "dpdk" and git_repo is not None
                   else SUITES[name](data, args.n_estimators, opts=opts))
        print(json.dumps({"suite": name, **res}, default=str), flush=True)
    return 0
