"""Assemble the ``patch_features`` table: JIT metrics + kernel specifics + the text of the message.

Example::

    feats = build_patch_features(wh.read_table("commits"), wh.read_table("file_changes"))
"""

import polars as pl

from kforge.commits.chains import build_chains
from kforge.errors import InputError
from kforge.features.diff import DIFF_NUMERIC, diff_features
from kforge.features.jit import JIT_COLUMNS, commit_frame, file_frame, file_history, jit_metrics
from kforge.features.kernel import TRAILERS, area_features, bug_history, message_features
from kforge.features.line_origins import LINE_ORIGIN_NUMERIC
from kforge.git.rows import without_shallow_boundaries

KERNEL_NUMERIC = [
    *(f"n_{t}" for t in TRAILERS), "n_fixes", "cc_stable", "is_revert", "n_cve", "body_len", "body_lines",
    "rationale_words", "subject_len", "subject_colons", "committer_differs", "days_author_to_commit",
    "subsystem_commits", "subsystem_commits_1y", "subsystem_fix_rate_1y", "files_recently_fixed",
    "file_fixes_1y", "new_files", "header_files", "test_files", "doc_files", "la_code", "ld_code", "nf_code",
    "la_code_new_files", "la_code_existing_files", "la_test", "la_doc", "la_build", "author_prior_fixes",
    "author_tenure_days", "file_prior_bugs", "files_with_prior_bugs", "author_prior_bugs",
]
NUMERIC_FEATURES = [*JIT_COLUMNS, *KERNEL_NUMERIC, *DIFF_NUMERIC, *LINE_ORIGIN_NUMERIC]
CATEGORICAL_FEATURES = ["subsystem"]
TEXT_COLUMN = "text"
FEATURE_COLUMNS = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES, TEXT_COLUMN]
REQUIRED_COMMIT_COLUMNS = ("repo", "sha", "author_email", "committer_email", "author_ts", "committer_ts",
                           "subject", "body", "fixes", "cc_stable", "reverts_sha_raw", "reverts_subject_raw")
TEXT_CHARS = 2000


def normalize_commits(commits: pl.DataFrame) -> pl.DataFrame:
    """Accept the warehouse ``commits`` table or a ``*.commits.parquet`` file's frame (minus shallow-clone
    boundary commits, whose diff is the whole tree)."""
    commits = without_shallow_boundaries(commits)
    missing = [c for c in REQUIRED_COMMIT_COLUMNS if c not in commits.columns]
    if missing:
        raise InputError(f"commit table lacks columns: {', '.join(missing)} "
                         "(expected the commits table or ../shared/data/kernel/*.commits.parquet)")
    add = []
    if "is_merge" not in commits.columns:
        add.append((pl.col("parents").list.len() > 1).alias("is_merge") if "parents" in commits.columns
                   else pl.lit(False).alias("is_merge"))
    if "subject_prefix" not in commits.columns:
        add.append(pl.lit("").alias("subject_prefix"))
    for col in (*TRAILERS, "cve_ids"):
        if col not in commits.columns:
            add.append(pl.lit([], pl.List(pl.String)).alias(col))
    commits = commits.with_columns(add) if add else commits
    return commits.with_columns(pl.col("reverts_sha_raw", "reverts_subject_raw", "subject", "body").cast(pl.String))


def _chain_ready(commits: pl.DataFrame) -> pl.DataFrame:
    """The commits frame with ``fixes`` as list[struct{sha, subject}] (what the chain builder reads)."""
    fx = pl.col("fixes").list.eval(pl.struct(pl.element().struct.field("sha"), pl.element().struct.field("subject")))
    return commits.with_columns(fx.alias("fixes"))


def commit_event_times(chains: pl.DataFrame) -> pl.DataFrame:
    """Per (repo, sha): the first time a later commit fixed or reverted it."""
    resolved = chains.filter(pl.col("target_sha").is_not_null() & (pl.col("target_sha") != pl.col("fix_sha")))
    return (resolved.group_by("repo", pl.col("target_sha").alias("sha"))
            .agg(pl.col("fix_ts").min().alias("event_ts"), (pl.col("kind") == "reverts").any().alias("reverted")))


def event_times_for(commits: pl.DataFrame, chains: pl.DataFrame | None = None) -> pl.DataFrame:
    """:func:`commit_event_times` of ``chains``, resolved from ``commits`` when not given."""
    if chains is None:
        chains = build_chains(_chain_ready(normalize_commits(commits)))
    return commit_event_times(chains)


def files_from_commit_files(commits: pl.DataFrame, rules: object | None = None) -> pl.DataFrame:
    """``file_changes``-like rows from a commits parquet's nested ``files`` column."""
    from kforge.git.subsystems import SubsystemRules

    if "files" not in commits.columns:
        raise InputError("commit table has no nested 'files' column; pass the file_changes table instead")
    rules = rules or SubsystemRules.load()
    f = (commits.select("repo", "sha", "files").explode("files").drop_nulls("files")
         .select("repo", "sha", pl.col("files").struct.field("path"), pl.col("files").struct.field("added"),
                 pl.col("files").struct.field("deleted")))
    return f.with_columns(rules.column(f["path"]))  # type: ignore[attr-defined]


def _diff_block(diffs: pl.DataFrame | None) -> pl.DataFrame:
    if diffs is None or diffs.height == 0:
        return pl.DataFrame(schema={"sha": pl.String, **dict.fromkeys(DIFF_NUMERIC, pl.Float64)})
    return diff_features(diffs)


def _line_origin_block(line_origins: pl.DataFrame | None) -> pl.DataFrame:
    if line_origins is None or line_origins.height == 0:
        return pl.DataFrame(schema={"sha": pl.String, **dict.fromkeys(LINE_ORIGIN_NUMERIC, pl.Float64)})
    return line_origins.select("sha", *LINE_ORIGIN_NUMERIC)


def build_patch_features(commits: pl.DataFrame, files: pl.DataFrame, chains: pl.DataFrame | None = None,
                         diffs: pl.DataFrame | None = None, line_origins: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per non-merge commit: keys, ``t`` (committer_ts), features and ``text``.

    ``chains`` (``commit_chains``; default: resolved from ``commits``) gives the bug-history
    features, each counted at the time the fix landed. ``diffs`` (``commit_diffs`` /
    ``*.diffs.parquet``; optional) gives the diff-content features; commits without a stored
    diff get zeros and ``has_diff`` = 0. ``line_origins`` (:mod:`kforge.features.line_origins`,
    from a git clone; optional) gives the line-origin features, likewise ``has_line_origins``.
    """
    commits = normalize_commits(commits)
    base = commit_frame(commits)
    if base.height == 0:
        raise InputError("no non-merge commits to compute features for")
    f = file_history(file_frame(files, base))
    jit = jit_metrics(base, f)
    msg = message_features(commits)
    area = area_features(base, f)
    if chains is None:
        chains = build_chains(_chain_ready(commits))
    bugs = bug_history(base, f, commit_event_times(chains))
    text = commits.select("repo", "sha", (pl.col("subject").fill_null("") + "\n" + pl.col("body").fill_null(""))
                          .str.slice(0, TEXT_CHARS).alias(TEXT_COLUMN))
    out = (jit.with_columns(pl.col("fix").cast(pl.Int8))
           .join(msg, on=["repo", "sha"], how="left")
           .join(area, on=["repo", "sha"], how="left")
           .join(bugs, on=["repo", "sha"], how="left")
           .join(_diff_block(diffs), on="sha", how="left")
           .join(_line_origin_block(line_origins), on="sha", how="left")
           .join(text, on=["repo", "sha"], how="left"))
    out = out.with_columns(
        [pl.col(c).cast(pl.Float64).fill_null(0.0) for c in NUMERIC_FEATURES]
    ).with_columns(pl.col("subsystem").fill_null("none"))
    return out.select("repo", "sha", "t", "author", "subject_prefix", *FEATURE_COLUMNS).sort("repo", "t", "sha")
