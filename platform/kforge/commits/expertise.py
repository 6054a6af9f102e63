"""Author expertise per subsystem, point in time: for each commit, what its author had done
*before* that commit (strictly earlier author timestamps) in the subsystems it touches.
"""

import polars as pl

from kforge.git.rows import without_shallow_boundaries


def author_expertise(commits: pl.DataFrame, files: pl.DataFrame, maintainers: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per (repo, sha, subsystem): the author's prior commits there and overall.

    ``maintainer_now`` comes from the MAINTAINERS file at the ingested head: it is *current*
    status, not point in time, so feature builders must not use it for historical predictions.
    Shallow-clone boundary commits (their whole tree as one change) count for nobody.
    """
    commits = without_shallow_boundaries(commits)
    touched = (
        files.select("repo", "sha", "subsystem").unique()
        .join(commits.select("repo", "sha", "author_email", "author_ts"), on=["repo", "sha"], how="inner")
    )
    out = touched.with_columns(
        (pl.col("author_ts").rank("min").over("repo", "author_email", "subsystem") - 1)
        .cast(pl.Int64).alias("prior_commits_in_subsystem"),
    )
    overall = commits.select(
        "repo", "sha",
        (pl.col("author_ts").rank("min").over("repo", "author_email") - 1).cast(pl.Int64).alias("prior_commits_total"),
        pl.col("author_ts").min().over("repo", "author_email").alias("author_first_ts"),
    )
    out = out.join(overall, on=["repo", "sha"], how="left")
    if maintainers is not None and maintainers.height:
        m = maintainers.select("repo", pl.col("email").alias("author_email"), "subsystem").unique().with_columns(
            pl.lit(True).alias("maintainer_now"))
        out = out.join(m, on=["repo", "author_email", "subsystem"], how="left").with_columns(
            pl.col("maintainer_now").fill_null(False))
    else:
        out = out.with_columns(pl.lit(False).alias("maintainer_now"))
    return out.sort("repo", "author_ts", "sha")
