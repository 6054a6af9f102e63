"""Match patch e-mails to merged commits: ``git patch-id --stable`` first, then the normalised title.

Evidence per e-mail: ``match_by`` (patch_id | title | inherited | none), ``merged_commit``,
``merged_author_email_match``, ``days_to_merge``. A commit matches only if committed no earlier
than 2 days before the e-mail. Earlier versions of a series inherit the merge of a later version
with the same normalised title and sender (under the same 2-day rule: never a merge from before them).
"""

from pathlib import Path

import polars as pl

from kforge.errors import InputError
from kforge.git.gitcmd import run_git
from kforge.mail.archive import _git, git_dir
from kforge.mail.parse import diff_of, normalise_title

SLACK_S = 2 * 86400


def project_commits(path: Path, since: str = "") -> pl.DataFrame:
    repo = git_dir(path)
    args = ["log", "--no-merges", "--format=%H%x00%ae%x00%ct%x00%s"] + ([f"--since={since}"] if since else [])
    rows = [line.split("\x00") for line in _git(repo, *args, "HEAD").decode(errors="replace").splitlines() if line]
    df = pl.DataFrame({"sha": [r[0] for r in rows], "author_email": [r[1].lower() for r in rows],
                       "committer_ts": [int(r[2]) for r in rows], "subject": [r[3] for r in rows]})
    return df.with_columns(pl.col("subject").map_elements(normalise_title, return_dtype=pl.String).alias("title_norm"))


def _patch_ids(stream: bytes) -> pl.DataFrame:
    proc = run_git(None, "patch-id", "--stable", input_bytes=stream)
    if proc.returncode != 0:
        raise InputError(f"git patch-id failed: {proc.stderr.decode(errors='replace')[:300]}")
    out = proc.stdout
    pairs = [line.split() for line in out.decode().splitlines() if line.strip()]
    return pl.DataFrame({"patch_id": [p[0] for p in pairs], "id": [p[1] for p in pairs]},
                        schema={"patch_id": pl.String, "id": pl.String})


def commit_patch_ids(path: Path, since: str = "") -> pl.DataFrame:
    repo = git_dir(path)
    args = ["log", "--no-merges", "-p", "--format=commit %H"] + ([f"--since={since}"] if since else [])
    return _patch_ids(_git(repo, *args, "HEAD")).rename({"id": "sha"})


def email_patch_ids(mails: pl.DataFrame) -> pl.DataFrame:
    chunks = [f"commit {a}\n{diff_of(raw)}".encode(errors="replace")
              for a, raw in mails.select("archive_commit", "raw_email").iter_rows() if "\ndiff --git " in raw]
    return _patch_ids(b"\n".join(chunks)).rename({"id": "archive_commit"})


def match_emails(mails: pl.DataFrame, project: Path, since: str = "") -> pl.DataFrame:
    """``since`` defaults to 30 days before the oldest e-mail: older commits cannot be their merges."""
    if not since and mails.height:
        from datetime import UTC, datetime

        since = datetime.fromtimestamp(max(int(mails["ts"].min()) - 30 * 86400, 0), UTC).date().isoformat()  # type: ignore[arg-type]
    commits = project_commits(project, since)
    pid = commit_patch_ids(project, since).join(commits.select("sha", "committer_ts", "author_email"), on="sha")
    epid = email_patch_ids(mails)
    base = mails.select("archive_commit", "ts", "from_email", "title_norm")
    by_pid = (base.join(epid, on="archive_commit").join(pid, on="patch_id")
              .filter(pl.col("committer_ts") >= pl.col("ts") - SLACK_S)
              .sort("committer_ts").group_by("archive_commit").first()
              .select("archive_commit", pl.col("sha").alias("merged_commit"), "committer_ts", "author_email",
                      pl.lit("patch_id").alias("match_by")))
    rest = base.join(by_pid.select("archive_commit"), on="archive_commit", how="anti")
    by_title = (rest.join(commits, on="title_norm")
                .filter(pl.col("committer_ts") >= pl.col("ts") - SLACK_S)
                .sort("committer_ts").group_by("archive_commit").first()
                .select("archive_commit", pl.col("sha").alias("merged_commit"), "committer_ts", "author_email",
                        pl.lit("title").alias("match_by")))
    direct = pl.concat([by_pid, by_title])
    out = mails.join(direct, on="archive_commit", how="left")
    # earlier versions inherit the merge of a later e-mail with the same title and sender: the first
    # such merge committed no earlier than the slack before the e-mail (a resend after the merge, or a
    # new patch reusing an old title, is not merged by it)
    merges = (out.filter(pl.col("merged_commit").is_not_null())
              .select("title_norm", "from_email", pl.col("merged_commit").alias("_m"),
                      pl.col("committer_ts").alias("_c"), pl.col("author_email").alias("_a")).unique())
    inherit = (out.filter(pl.col("merged_commit").is_null() & ~pl.col("is_cover"))
               .select("archive_commit", "title_norm", "from_email", "ts")
               .join(merges, on=["title_norm", "from_email"])
               .filter(pl.col("_c") >= pl.col("ts") - SLACK_S)
               .sort("_c", "_m").group_by("archive_commit").first()
               .select("archive_commit", "_m", "_c", "_a"))
    out = out.join(inherit, on="archive_commit", how="left").with_columns(
        pl.when(pl.col("_m").is_not_null()).then(pl.lit("inherited")).otherwise(pl.col("match_by")).alias("match_by"),
        pl.coalesce(pl.col("merged_commit"), pl.col("_m")).alias("merged_commit"),
        pl.coalesce(pl.col("committer_ts"), pl.col("_c")).alias("committer_ts"),
        pl.coalesce(pl.col("author_email"), pl.col("_a")).alias("author_email"),
    )
    return out.with_columns(
        pl.col("match_by").fill_null("none"),
        (pl.col("author_email") == pl.col("from_email")).alias("merged_author_email_match"),
        pl.when(pl.col("merged_commit").is_not_null())
        .then(((pl.col("committer_ts") - pl.col("ts")) / 86400.0).clip(0)).alias("days_to_merge"),
    ).drop("_m", "_c", "_a", "committer_ts", "author_email")


def agreement(ours: pl.DataFrame, reference: pl.DataFrame) -> dict[str, float]:
    """Compare merged labels with a reference table (e.g. acceptance_ltp.parquet) on shared e-mails."""
    j = ours.select("archive_commit", "match_by", pl.col("merged_commit").is_not_null().alias("ours")).join(
        reference.select("archive_commit", pl.col("merged_commit").is_not_null().alias("ref")), on="archive_commit")
    tp = int((j["ours"] & j["ref"]).sum())
    return {
        "shared_emails": j.height, "agreement": float((j["ours"] == j["ref"]).mean() or 0.0),
        "ours_merged": int(j["ours"].sum()), "reference_merged": int(j["ref"].sum()), "both_merged": tp,
        "recall_of_reference": tp / max(int(j["ref"].sum()), 1), "precision_vs_reference": tp / max(int(j["ours"].sum()), 1),
        "patch_id_only_merges": int(j.filter(pl.col("ours") & ~pl.col("ref") & (pl.col("match_by") == "patch_id")).height),
        "by_patch_id": int((j["match_by"] == "patch_id").sum()), "by_title": int((j["match_by"] == "title").sum()),
        "inherited": int((j["match_by"] == "inherited").sum()),
    }
