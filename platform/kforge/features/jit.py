"""The 14 just-in-time defect metrics of Kamei et al. (2013), point in time.

Per commit: size (la, ld, lt), diffusion (ns, nd, nf, entropy), purpose (fix), history (ndev,
age, nuc) and experience (exp, rexp, sexp). ``t`` is the commit's ``committer_ts``; history is
every commit with a strictly smaller ``t``.

Definitions where the literature leaves room (documented so they can be checked):
* ``lt``: mean over touched files of the file's size before the change, estimated as the
  running sum of earlier added - deleted lines (the history may start after the file existed);
* ``age``: mean days since each touched file was last changed (0 for new files);
* ``nuc``: number of distinct earlier changes that last touched the files;
* ``ndev``: the most distinct earlier authors of any one touched file (a lower bound of the union);
* ``rexp``: author's earlier commits weighted 1/(years ago + 1), in yearly buckets over 5 years;
* ``sexp``: author's earlier commits in the touched subsystems (max over subsystems).
"""

import polars as pl

from kforge.features.history import YEAR_S, cumulative, previous_ts, prior_sum, sum_before, window_count

FIX_WORDS = r"(?i)\b(fix(es|ed)?|bug|crash|leak|overflow|null|race|deadlock|wrong|incorrect|regression|oops|panic)\b"
JIT_COLUMNS = ["ns", "nd", "nf", "entropy", "la", "ld", "lt", "fix", "ndev", "age", "nuc", "exp", "rexp", "sexp"]


def commit_frame(commits: pl.DataFrame) -> pl.DataFrame:
    """The commit columns the features need, with ``t`` and the message-based ``fix`` flag."""
    return commits.filter(~pl.col("is_merge").fill_null(False)).select(
        "repo", "sha", pl.col("committer_ts").alias("t"), pl.col("author_email").str.to_lowercase().alias("author"),
        (pl.col("fixes").list.len().fill_null(0).gt(0) | pl.col("subject").str.contains(FIX_WORDS)).alias("fix"),
    )


def file_frame(files: pl.DataFrame, base: pl.DataFrame) -> pl.DataFrame:
    """File rows joined with their commit's time, author and fix flag."""
    return (files.select("repo", "sha", "path", pl.col("added").fill_null(0), pl.col("deleted").fill_null(0),
                         pl.col("subsystem").fill_null("other"))
            .unique(["repo", "sha", "path"])
            .join(base, on=["repo", "sha"], how="inner")
            .with_columns(pl.col("path").str.replace(r"/[^/]*$", "").alias("dir")))


def file_history(f: pl.DataFrame) -> pl.DataFrame:
    """Per (commit, file): earlier changes, size, previous change time, authors, recent fixes."""
    path = ["repo", "path"]
    f = prior_sum(f, path, pl.len(), "path_changes")
    f = prior_sum(f, path, (pl.col("added") - pl.col("deleted")), "path_size")
    f = previous_ts(f, path, "path_prev_t")
    firsts = f.group_by("repo", "path", "author").agg(pl.col("t").min())
    f = sum_before(f, cumulative(firsts, path, pl.len()), path, pl.col("t"), "path_authors")
    fixes = f.filter(pl.col("fix"))
    f = window_count(f, cumulative(fixes, path, pl.len()), path, YEAR_S, "path_fixes_1y")
    return f


def jit_metrics(base: pl.DataFrame, f: pl.DataFrame) -> pl.DataFrame:
    """One row per commit of ``base`` with the 14 metrics (``f`` from :func:`file_history`)."""
    lines = (pl.col("added") + pl.col("deleted")).cast(pl.Float64)
    share = lines / lines.sum().over("repo", "sha")
    per_commit = f.group_by("repo", "sha").agg(
        pl.col("subsystem").n_unique().alias("ns"),
        pl.col("dir").n_unique().alias("nd"),
        pl.len().alias("nf"),
        pl.col("added").sum().alias("la"),
        pl.col("deleted").sum().alias("ld"),
        pl.col("path_size").clip(0).mean().alias("lt"),
        pl.col("path_authors").max().alias("ndev"),
        ((pl.col("t") - pl.col("path_prev_t")) / 86400.0).fill_null(0.0).mean().alias("age"),
        pl.col("path_prev_t").drop_nulls().n_unique().alias("nuc"),
    )
    ent = (f.with_columns(share.alias("p"))
           .group_by("repo", "sha")
           .agg((-(pl.col("p") * pl.col("p").log(2)).fill_nan(0.0).fill_null(0.0)).sum().alias("entropy")))
    out = base.join(per_commit, on=["repo", "sha"], how="left").join(ent, on=["repo", "sha"], how="left")
    out = _experience(out, f)
    return out.with_columns(pl.col(c).fill_null(0) for c in JIT_COLUMNS if c != "fix")


def _experience(c: pl.DataFrame, f: pl.DataFrame) -> pl.DataFrame:
    author = ["repo", "author"]
    cum = cumulative(c, author, pl.len())
    c = sum_before(c, cum, author, pl.col("t"), "exp")
    rexp = pl.lit(0.0)
    for y in range(5):
        c = sum_before(c, cum, author, pl.col("t") - y * YEAR_S, f"_e{y}")
        c = sum_before(c, cum, author, pl.col("t") - (y + 1) * YEAR_S, f"_e{y}b")
        rexp = rexp + (pl.col(f"_e{y}") - pl.col(f"_e{y}b")) / (y + 1)
    c = c.with_columns(rexp.alias("rexp")).drop([f"_e{y}" for y in range(5)] + [f"_e{y}b" for y in range(5)])
    subs = f.select("repo", "sha", "author", "subsystem", "t").unique()
    subs = prior_sum(subs, ["repo", "author", "subsystem"], pl.len(), "sub_exp")
    sexp = subs.group_by("repo", "sha").agg(pl.col("sub_exp").max().alias("sexp"))
    return c.join(sexp, on=["repo", "sha"], how="left")
