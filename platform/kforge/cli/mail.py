"""``kforge ingest-list ARCHIVE --project REPO``: patch e-mails from a public-inbox git archive or
an mbox, matched to the project's merged commits (patch-id, then title), stored as ``mail_patches``.
Messages whose headers cannot be decoded are skipped; the output counts them by reason."""

import argparse
import json
from pathlib import Path

from kforge.cli.common import Ctx
from kforge.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest-list", help="read a mailing-list archive (public-inbox git or mbox) and label patches")
    p.add_argument("archive", help="public-inbox git archive directory (message per commit, blob 'm') or mbox/.patch")
    p.add_argument("--project", required=True, help="git repository of the project the patches target")
    p.add_argument("--since", default="", help="only messages/commits after this date (git --since syntax)")
    p.add_argument("--reference", default=None,
                   help="parquet with archive_commit + merged_commit (e.g. acceptance_ltp.parquet): report agreement")
    p.set_defaults(func=cmd_ingest_list)


def cmd_ingest_list(ctx: Ctx, args: argparse.Namespace) -> int:
    import polars as pl

    from kforge.acceptance.pipeline import EMAIL_TABLE
    from kforge.mail.match import agreement, match_emails
    from kforge.mail.reader import read_patch_emails

    project = Path(args.project)
    if not project.exists():
        raise InputError(f"--project {project}: no such repository")
    read = read_patch_emails(args.archive, args.since)
    matched = match_emails(read.frame, project, args.since).with_columns(pl.lit(project.name).alias("project"))
    added = ctx.warehouse().append_new(EMAIL_TABLE, matched, keys=["archive_commit"])
    report: dict[str, object] = {**read.report(), "stored_new": added,
                                 "matched": int(matched["merged_commit"].is_not_null().sum()),
                                 "by": dict(matched["match_by"].value_counts().iter_rows())}
    if args.reference:
        ref_path = Path(args.reference)
        if not ref_path.exists():
            raise InputError(f"--reference {ref_path}: no such file")
        try:
            ref = pl.read_parquet(ref_path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise InputError(f"--reference {ref_path} is not a readable parquet file: {exc}") from None
        if not {"archive_commit", "merged_commit"} <= set(ref.columns):
            raise InputError(f"--reference {ref_path} needs columns archive_commit and merged_commit")
        report["agreement"] = agreement(matched, ref)
    print(json.dumps(report))
    return 0
