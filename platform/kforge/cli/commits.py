"""Commands for the kernel_commits group: ingest, import-commits, query, demo-repo, export."""

import argparse
import json
from pathlib import Path

from kforge.cli.common import Ctx, print_csv
from kforge.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="ingest git repositories (incremental, crash-safe)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--ref", default="HEAD", help="branch/tag/sha to ingest (default HEAD)")
    p.add_argument("--name", default=None, help="repository name (default: directory name); one PATH only")
    p.add_argument("--detect-renames", action="store_true", help="record renames/copies (slower)")
    p.add_argument("--subsystem-rules", default=None, help="JSON rules file mapping paths to subsystems")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("import-commits", help="load commit tables (schema of ../shared/data/kernel/*.commits.parquet)")
    p.add_argument("files", nargs="+", metavar="FILE.parquet")
    p.add_argument("--repo", default=None, help="override the repository name")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("query", help="run a read-only SQL query on the warehouse and print CSV")
    p.add_argument("sql")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("demo-repo", help="generate the deterministic synthetic kernel-style demo repository")
    p.add_argument("path")
    p.add_argument("--commits", type=int, default=1200)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=cmd_demo_repo)


def _add_partition(ctx: Ctx, name: str, report: dict[str, object]) -> None:
    """Make the repository a Dagster partition of the ingestion assets and record the run there."""
    from kforge.dagster_io.instance import add_repository_partition, report_ingestion

    add_repository_partition(ctx.paths, name)
    report_ingestion(ctx.paths, name, report)


def cmd_ingest(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.git.ingest import ingest_repository
    from kforge.git.subsystems import SubsystemRules

    if args.name and len(args.paths) > 1:
        raise InputError("--name applies to one PATH only")
    rules = SubsystemRules.load(args.subsystem_rules)
    wh = ctx.warehouse()
    for path in args.paths:
        report = ingest_repository(path, wh, name=args.name, ref=args.ref, rules=rules, detect_renames=args.detect_renames)
        _add_partition(ctx, report.repo, report.as_dict())
        print(json.dumps(report.as_dict()))
    return 0


def cmd_import(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.git.importer import import_commits

    for f in args.files:
        print(json.dumps({"file": f, **import_commits(Path(f), ctx.warehouse(), repo=args.repo)}))
    return 0


def cmd_query(ctx: Ctx, args: argparse.Namespace) -> int:
    print_csv(ctx.warehouse().query_readonly(args.sql))
    return 0


def cmd_demo_repo(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.git.demo_repo import generate_demo_repo

    info = generate_demo_repo(Path(args.path), n_commits=args.commits, seed=args.seed)
    print(json.dumps(info))
    return 0
