"""Fix and revert chains: which commit fixes (``Fixes:``) or reverts which.

Resolution order for a reference, within the same repository:
1. by sha prefix (abbreviated hashes resolved to full shas; an ambiguous prefix falls through);
2. by the quoted subject (``Fixes: abc ("subject")`` or ``Revert "subject"``), taking the most
   recent earlier commit with that exact subject;
3. otherwise ``unresolved`` (typically a commit outside this repository, e.g. a kernel sha
   quoted in a mirror).

Output ``commit_chains``: one row per reference with ``kind`` (fixes|reverts), ``fix_sha`` (the
fixing/reverting commit), ``target_sha`` (null when unresolved), ``resolved_by``.
"""

import polars as pl

from kforge.git.rows import without_shallow_boundaries

CHAIN_SCHEMA = {
    "repo": pl.String, "kind": pl.String, "fix_sha": pl.String, "fix_ts": pl.Int64,
    "ref": pl.String, "ref_subject": pl.String, "target_sha": pl.String, "target_ts": pl.Int64,
    "resolved_by": pl.String,
}


def _norm(col: pl.Expr) -> pl.Expr:
    return col.str.strip_chars().str.to_lowercase()


def _references(commits: pl.DataFrame) -> pl.DataFrame:
    fixes = (
        commits.select("repo", pl.col("sha").alias("fix_sha"), pl.col("committer_ts").alias("fix_ts"), "fixes")
        .explode("fixes")
        .drop_nulls("fixes")
        .select(
            "repo", pl.lit("fixes").alias("kind"), "fix_sha", "fix_ts",
            pl.col("fixes").struct.field("sha").str.to_lowercase().alias("ref"),
            pl.col("fixes").struct.field("subject").alias("ref_subject"),
        )
    )
    reverts = commits.filter(
        pl.col("reverts_sha_raw").is_not_null() | pl.col("reverts_subject_raw").is_not_null()
    ).select(
        "repo", pl.lit("reverts").alias("kind"), pl.col("sha").alias("fix_sha"),
        pl.col("committer_ts").alias("fix_ts"),
        pl.col("reverts_sha_raw").str.to_lowercase().alias("ref"),
        pl.col("reverts_subject_raw").alias("ref_subject"),
    )
    return pl.concat([fixes, reverts], how="vertical_relaxed").with_row_index("ref_id")


def build_chains(commits: pl.DataFrame) -> pl.DataFrame:
    """Resolve every Fixes:/Revert reference in ``commits`` (columns of the commits table)."""
    refs = _references(commits)
    if refs.height == 0:
        return pl.DataFrame(schema=CHAIN_SCHEMA)
    pool = commits.select("repo", pl.col("sha").alias("target_sha"), pl.col("committer_ts").alias("target_ts"),
                          _norm(pl.col("subject")).alias("nsubject"))
    # 1. by prefix, one join per distinct prefix length
    by_sha = []
    for length in refs["ref"].drop_nulls().str.len_chars().unique().to_list():
        part = refs.filter(pl.col("ref").str.len_chars() == length)
        cand = pool.with_columns(pl.col("target_sha").str.slice(0, length).alias("ref"))
        by_sha.append(part.join(cand.select("repo", "ref", "target_sha", "target_ts"), on=["repo", "ref"], how="inner"))
    matched = pl.concat(by_sha) if by_sha else refs.head(0).with_columns(
        pl.lit(None, pl.String).alias("target_sha"), pl.lit(None, pl.Int64).alias("target_ts"))
    unique = matched.filter(pl.len().over("ref_id") == 1).with_columns(pl.lit("sha").alias("resolved_by"))
    # 2. by quoted subject, latest earlier commit with that subject
    rest = refs.join(unique.select("ref_id"), on="ref_id", how="anti").with_columns(
        _norm(pl.col("ref_subject")).alias("nsubject"))
    subj = (
        rest.filter(pl.col("nsubject").str.len_chars() > 0)
        .join(pool, on=["repo", "nsubject"], how="inner")
        .filter(pl.col("target_ts") <= pl.col("fix_ts"))
        .filter(pl.col("target_sha") != pl.col("fix_sha"))
        .sort("target_ts")
        .group_by("ref_id").last()
        .with_columns(pl.lit("subject").alias("resolved_by"))
        .drop("nsubject")
    )
    resolved = pl.concat([unique, subj.select(unique.columns)], how="vertical_relaxed")
    unresolved = refs.join(resolved.select("ref_id"), on="ref_id", how="anti").with_columns(
        pl.lit(None, pl.String).alias("target_sha"), pl.lit(None, pl.Int64).alias("target_ts"),
        pl.lit("unresolved").alias("resolved_by"),
    )
    out = pl.concat([resolved, unresolved.select(resolved.columns)], how="vertical_relaxed")
    return out.sort("ref_id").select(list(CHAIN_SCHEMA)).cast(CHAIN_SCHEMA)  # type: ignore[arg-type]


def commit_labels(commits: pl.DataFrame, chains: pl.DataFrame) -> pl.DataFrame:
    """Per commit: ``fixed_later``, ``reverted``, ``first_fix_ts`` (labels from the chains)."""
    resolved = chains.filter(pl.col("target_sha").is_not_null() & (pl.col("target_sha") != pl.col("fix_sha")))
    fixed = (
        resolved.filter(pl.col("kind") == "fixes")
        .group_by("repo", "target_sha")
        .agg(pl.col("fix_ts").min().alias("first_fix_ts"), pl.col("fix_sha").alias("fixed_by"))
    )
    reverted = resolved.filter(pl.col("kind") == "reverts").group_by("repo", "target_sha").agg(
        pl.col("fix_sha").alias("reverted_by"))
    base = without_shallow_boundaries(commits).select("repo", "sha")  # no labels for shallow boundaries
    return (
        base.join(fixed, left_on=["repo", "sha"], right_on=["repo", "target_sha"], how="left")
        .join(reverted, left_on=["repo", "sha"], right_on=["repo", "target_sha"], how="left")
        .with_columns(
            pl.col("first_fix_ts").is_not_null().alias("fixed_later"),
            pl.col("reverted_by").is_not_null().alias("reverted"),
        )
    )
