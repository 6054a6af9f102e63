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
    p.add_argument("--name", default=None,
                   help="repository name (default: the name it is registered under, else from its origin URL, "
                        "else its directory name); one PATH only")
    p.add_argument("--detect-renames", action="store_true", help="record renames/copies (slower)")
    p.add_argument("--subsystem-rules", default=None, help="JSON rules file mapping paths to subsystems")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("import-commits", help="load commit tables (schema of ../shared/data/kernel/*.commits.parquet)")
    p.add_argument("files", nargs="+", metavar="FILE.parquet")
    p.add_argument("--repo", default=None, help="override the repository name")
    p.add_argument("--quarantine-invalid", action="store_true",
                   help="store the valid rows and record invalid ones in ingest_quarantine "
                        "(default: a file with any invalid row is refused and nothing is written)")
    p.add_argument("--diffs", default=None, metavar="DIFFS.parquet",
                   help="the commits' diffs (schema of ../shared/data/kernel/*.diffs.parquet), stored with them in "
                        "the same transaction so the diff and generation corpora hold them (one FILE only)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("query", help="run a read-only SQL query on the warehouse and print CSV")
    p.add_argument("sql")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("demo-repo", help="generate the deterministic synthetic kernel-style demo repository")
    p.add_argument("path")
    p.add_argument("--commits", type=int, default=1200)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--archive", default=None, metavar="DIR",
                   help="also write the patch e-mails behind the commits as a public-inbox archive (for ingest-list); "
                        "if PATH already holds a repository, only the archive is written")
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
    from kforge.git.importer import prepare_import, write_import
    from kforge.git.subsystems import SubsystemRules

    # every file is checked before any is written; each file is then written in one transaction
    if args.diffs and len(args.files) > 1:
        raise InputError(f"--diffs belongs to one commits table, but {len(args.files)} files were given: "
                         "import them one at a time")
    prepared = [prepare_import(Path(f), repo=args.repo, quarantine_invalid=args.quarantine_invalid, diffs=args.diffs)
                for f in args.files]
    rules = SubsystemRules.load()
    for f, prep in zip(args.files, prepared, strict=True):
        print(json.dumps({"file": f, **write_import(prep, ctx.warehouse(), rules)}))
    return 0


def cmd_query(ctx: Ctx, args: argparse.Namespace) -> int:
    print_csv(ctx.warehouse().query_readonly(args.sql))
    return 0


def cmd_demo_repo(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.git.demo_repo import generate_demo_repo
    from kforge.mail.demo_archive import write_demo_archive

    path = Path(args.path)
    if args.archive and (path / ".git").is_dir():  # a demo home from before the archive existed
        info: dict[str, object] = {"path": str(path), "archive": write_demo_archive(path, args.archive, seed=args.seed)}
    else:
        info = generate_demo_repo(path, n_commits=args.commits, seed=args.seed, archive=args.archive)
    print(json.dumps(info))
    return 0
