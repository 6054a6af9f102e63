"""``kforge models list|promote|rollback``: every registered ``kforge-*`` model, any family."""

import argparse

from kforge.cli.common import Ctx, print_table
from kforge.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="registered models: versions, aliases, metrics; promote / roll back")
    msub = p.add_subparsers(dest="models_cmd", metavar="ACTION")
    msub.required = True
    ls = msub.add_parser("list", help="versions, aliases (champion/challenger/previous-champion), gate, test metrics")
    ls.add_argument("--name", default=None, help="one model (default: all kforge-* models)")
    ls.set_defaults(func=cmd_list)
    pr = msub.add_parser("promote", help="make a version the champion (the old one becomes previous-champion)")
    pr.add_argument("name")
    pr.add_argument("version", type=int)
    pr.add_argument("--reason", default="manual promotion")
    pr.set_defaults(func=cmd_promote)
    rb = msub.add_parser("rollback", help="restore the previous champion")
    rb.add_argument("name")
    rb.set_defaults(func=cmd_rollback)


def _check_name(name: str) -> None:
    if not name.startswith("kforge-"):
        raise InputError(f"model names start with 'kforge-' (got {name!r}); see `kforge models list`")


def cmd_list(ctx: Ctx, args: argparse.Namespace) -> int:
    df = ctx.tracker().list_models()
    if args.name:
        df = df.filter(df["model"] == args.name)
    if df.height == 0:
        print("no registered kforge models" + (f" named {args.name}" if args.name else ""))
        return 0
    print_table(df.drop("run_id"))
    return 0


def cmd_promote(ctx: Ctx, args: argparse.Namespace) -> int:
    _check_name(args.name)
    tracker = ctx.tracker()
    _known(tracker, args.name)
    tracker.promote(args.name, args.version, reason=args.reason)
    print(f"{args.name}: version {args.version} is now champion")
    return 0


def cmd_rollback(ctx: Ctx, args: argparse.Namespace) -> int:
    _check_name(args.name)
    tracker = ctx.tracker()
    _known(tracker, args.name)
    version = tracker.rollback(args.name)
    print(f"{args.name}: rolled back, version {version} is champion again")
    return 0


def _known(tracker, name: str) -> None:  # noqa: ANN001
    from mlflow.exceptions import MlflowException

    try:
        tracker.client().get_registered_model(name)
    except MlflowException:
        raise InputError(f"no registered model named {name!r}; see `kforge models list`") from None
