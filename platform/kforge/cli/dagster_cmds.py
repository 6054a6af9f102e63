"""``kforge materialize`` (in-process, what the UI does) and ``kforge defs`` (list what exists)."""

import argparse
import json

from kforge.cli.common import Ctx
from kforge.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("materialize", help="materialize assets in-process (what the Dagster UI does)")
    p.add_argument("--select", default=None, help="Dagster asset selection, e.g. 'group:kernel_commits' or 'commit_tags+' (default: all)")
    p.add_argument("--partition", action="append", default=None, help="repository partition(s) for ingestion assets (default: all)")
    p.add_argument("--definitions", default=None, metavar="MODULE",
                   help="code location module (default: jobs.definitions, as in workspace.yaml)")
    p.set_defaults(func=cmd_materialize)


def cmd_materialize(ctx: Ctx, args: argparse.Namespace) -> int:
    from dagster import DagsterInvalidSubsetError
    from dagster._core.errors import DagsterError

    from kforge.dagster_io.materialize import CODE_LOCATION, load_code_location, materialize_selection

    try:
        module = args.definitions or CODE_LOCATION
        try:
            defs = load_code_location(module)
        except ModuleNotFoundError as exc:
            raise InputError(f"cannot import code location {module!r}: {exc}") from None
        summary = materialize_selection(defs, ctx.paths, args.select, str(ctx.data) if ctx.data else None,
                                        args.partition)
    except (DagsterInvalidSubsetError, ValueError) as exc:
        raise InputError(f"invalid --select {args.select!r}: {exc}") from None
    except DagsterError as exc:
        raise InputError(f"materialization could not start: {exc}") from None
    print(json.dumps(summary.__dict__))
    if summary.failed_checks:
        print("failed asset checks: " + ", ".join(summary.failed_checks))
    return 0 if summary.succeeded else 1
