"""``kforge materialize`` (in-process, what the UI does) and ``kforge defs`` (list what exists)."""

import argparse
import dataclasses
import json
import os

from kforge.cli.common import Ctx
from kforge.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("materialize", help="materialize assets in-process (what the Dagster UI does)")
    p.add_argument("--select", default=None, help="Dagster asset selection, e.g. 'group:kernel_commits' or 'commit_tags+' (default: all)")
    p.add_argument("--partition", action="append", default=None, help="repository partition(s) for ingestion assets (default: all)")
    p.add_argument("--definitions", default=None, metavar="MODULE",
                   help="code location module (default: jobs.definitions, as in workspace.yaml)")
    p.add_argument("--trigger", default="cli", metavar="NAME",
                   help="value of the runs' kforge/trigger tag (make demo passes demo; default: cli)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object instead of a table")
    p.set_defaults(func=cmd_materialize)


def cmd_materialize(ctx: Ctx, args: argparse.Namespace) -> int:
    from dagster import DagsterInvalidSubsetError
    from dagster._core.errors import DagsterError

    from kforge.dagster_io.materialize import CODE_LOCATION, load_code_location, materialize_selection
    from kforge.dagster_io.progress import format_summary
    from kforge.registry.release import ML_WORKFLOW, ui_urls

    try:
        module = args.definitions or CODE_LOCATION
        try:
            defs = load_code_location(module)
        except ModuleNotFoundError as exc:
            raise InputError(f"cannot import code location {module!r}: {exc}") from None
        quiet_libraries()
        tracker = ctx.tracker()
        summary = materialize_selection(defs, ctx.paths, args.select, str(ctx.data) if ctx.data else None,
                                        args.partition, trigger=args.trigger,
                                        champion_of=lambda name: tracker.version_of(name))
    except DagsterInvalidSubsetError as exc:   # a selection error is raised where the selection is resolved
        raise InputError(f"invalid --select {args.select!r}: {exc}") from None
    except DagsterError as exc:
        raise InputError(f"materialization could not start: {exc}") from None
    if args.json:
        print(json.dumps(dataclasses.asdict(summary)))
        return 0 if summary.succeeded else 1
    print("")
    print(f"{len(summary.assets)} assets in {summary.runs} run(s): {'succeeded' if summary.succeeded else 'FAILED'}")
    if summary.models:
        print("")
        print(format_summary(summary.models))
    print("")
    print(f"Open the UIs on this home ({ctx.paths.home}):")
    print(f"  Dagster UI:  KFORGE_HOME={ctx.paths.home} make dev     -> {ui_urls()[0]}/runs")
    print(f"  MLflow UI:   KFORGE_HOME={ctx.paths.home} make mlflow  -> {ui_urls()[1]}/#/models?{ML_WORKFLOW}")
    return 0 if summary.succeeded else 1


def quiet_libraries() -> None:
    """Library chatter a kforge user cannot act on stays out of the terminal (it remains in each run's
    MLflow and Dagster records): MLflow's INFO lines and artifact progress bars."""
    import logging

    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    if MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name not in os.environ:
        os.environ[MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name] = "false"
