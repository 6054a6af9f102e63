"""``kforge doctor [--backup DIR]``: check a home (read-only) and optionally copy it consistently.

Exit 0 when everything is healthy, 1 when a problem was found (each printed with how to repair it).
"""

import argparse
import json
from pathlib import Path

from kforge.cli.common import Ctx


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check the home: warehouse integrity, orphaned runs, registry consistency; "
                                      "--backup DIR makes a consistent copy")
    p.add_argument("--backup", default=None, metavar="DIR",
                   help="also copy the home into DIR (new or empty): warehouse under its lock, sqlite stores "
                        "through sqlite's backup API, artifacts; the copies are opened to verify them")
    p.set_defaults(func=cmd_doctor, creates_home=False)


def cmd_doctor(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.storage.doctor import backup_destination, backup_home, check_home

    if args.backup:
        backup_destination(ctx.paths, Path(args.backup))  # refused before the checks run, not after
    report = check_home(ctx.paths)
    for f in report.findings:
        print(f"{f.area:<10} {'ok' if f.ok else 'PROBLEM':<8} {f.what}")
        if f.repair:
            print(f"{'':<10} {'repair':<8} {f.repair}")
    if args.backup:
        manifest = backup_home(ctx.paths, Path(args.backup))
        print(f"backup     ok       {Path(args.backup).expanduser().resolve()}: "
              + json.dumps({k: v for k, v in manifest.items() if k not in ("home", "restore")}, default=str))
        print(f"{'':<10} {'restore':<8} {manifest['restore']}")
    print(f"{ctx.paths.home}: " + ("healthy" if report.healthy else f"{len(report.problems)} problem(s) found"))
    return 0 if report.healthy else 1
