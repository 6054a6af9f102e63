"""Kernel-process features: subsystem, trailers, Fixes:/stable, message rationale, hot areas,
author standing. Point in time like :mod:`kforge.features.jit`."""

import polars as pl

from kforge.features.history import YEAR_S, cumulative, sum_before

RATIONALE = (r"(?i)\b(because|since|otherwise|so that|in order to|this (fixes|avoids|ensures|prevents|causes)|"
             r"cause[sd]?|result(s|ed)? in|lead(s)? to|instead|without this|the problem|the issue)\b")
TRAILERS = ["signed_off_by", "reviewed_by", "acked_by", "tested_by", "reported_by", "suggested_by",
            "co_developed_by", "cc", "link"]


def message_features(commits: pl.DataFrame) -> pl.DataFrame:
    """Features of the commit's own message (known when it was written)."""
    body = pl.col("body").fill_null("")
    subject = pl.col("subject").fill_null("")
    cols = [pl.col(t).list.len().fill_null(0).alias(f"n_{t}") for t in TRAILERS if t in commits.columns]
    return commits.select(
        "repo", "sha", *cols,
        pl.col("fixes").list.len().fill_null(0).alias("n_fixes"),
        pl.col("cc_stable").fill_null(False).cast(pl.Int8).alias("cc_stable"),
        (pl.col("reverts_sha_raw").is_not_null() | pl.col("reverts_subject_raw").is_not_null()).cast(pl.Int8)
        .alias("is_revert"),
        pl.col("cve_ids").list.len().fill_null(0).alias("n_cve"),
        body.str.len_chars().alias("body_len"),
        body.str.count_matches("\n").alias("body_lines"),
        body.str.count_matches(RATIONALE).alias("rationale_words"),
        subject.str.len_chars().alias("subject_len"),
        subject.str.count_matches(":").alias("subject_colons"),
        (pl.col("author_email").str.to_lowercase() != pl.col("committer_email").str.to_lowercase())
        .cast(pl.Int8).alias("committer_differs"),
        ((pl.col("committer_ts") - pl.col("author_ts")) / 86400.0).clip(0).alias("days_author_to_commit"),
        pl.col("subject_prefix").fill_null("").alias("subject_prefix"),
    )


def area_features(base: pl.DataFrame, f: pl.DataFrame) -> pl.DataFrame:
    """Hot / recently fixed areas and the author's standing in the touched subsystems.

    ``f`` is the per-file history of :func:`kforge.features.jit.file_history`.
    """
    lines = (pl.col("added") + pl.col("deleted"))
    code = pl.col("path").str.contains(r"\.(c|h|cc|cpp|hpp|s|S|py|rs|go)$") & ~pl.col("path").str.contains(
        r"(?i)(^|/)(test|tests|selftests?|app/test[^/]*)/")
    main_sub = (f.group_by("repo", "sha", "subsystem").agg(lines.sum().alias("_l"))
                .sort(["repo", "sha", "_l", "subsystem"], descending=[False, False, True, False])
                .group_by("repo", "sha").first().select("repo", "sha", pl.col("subsystem")))
    sub = ["repo", "subsystem"]
    commits_sub = f.select("repo", "sha", "subsystem", "t", "fix").unique()
    cum_all = cumulative(commits_sub, sub, pl.len())
    cum_fix = cumulative(commits_sub.filter(pl.col("fix")), sub, pl.len())
    per = (commits_sub.join(main_sub, on=["repo", "sha", "subsystem"], how="semi"))
    per = sum_before(per, cum_all, sub, pl.col("t"), "subsystem_commits")
    per = sum_before(per, cum_fix, sub, pl.col("t"), "subsystem_fixes")
    per = sum_before(per, cum_all, sub, pl.col("t") - YEAR_S, "_all_then")
    per = sum_before(per, cum_fix, sub, pl.col("t") - YEAR_S, "_fix_then")
    per = per.select(
        "repo", "sha", "subsystem", "subsystem_commits",
        (pl.col("subsystem_commits") - pl.col("_all_then")).alias("subsystem_commits_1y"),
        ((pl.col("subsystem_fixes") - pl.col("_fix_then")) / (pl.col("subsystem_commits") - pl.col("_all_then") + 1))
        .alias("subsystem_fix_rate_1y"),
    )
    files = f.group_by("repo", "sha").agg(
        (pl.col("path_fixes_1y") > 0).sum().alias("files_recently_fixed"),
        pl.col("path_fixes_1y").sum().alias("file_fixes_1y"),
        (pl.col("path_changes") == 0).sum().alias("new_files"),
        pl.col("path").str.contains(r"\.(h|hpp)$").sum().alias("header_files"),
        pl.col("path").str.contains(r"(?i)(^|/)(test|tests|selftests?)/").sum().alias("test_files"),
        pl.col("path").str.contains(r"(?i)^(doc|documentation)/|\.(rst|md|txt)$").sum().alias("doc_files"),
        pl.col("added").filter(code).sum().alias("la_code"),
        pl.col("deleted").filter(code).sum().alias("ld_code"),
        code.sum().alias("nf_code"),
        pl.col("added").filter(code & (pl.col("path_changes") == 0)).sum().alias("la_code_new_files"),
        pl.col("added").filter(code & (pl.col("path_changes") > 0)).sum().alias("la_code_existing_files"),
        pl.col("added").filter(pl.col("path").str.contains(r"(?i)(^|/)(test|tests|selftests?|app/test[^/]*)/"))
        .sum().alias("la_test"),
        pl.col("added").filter(pl.col("path").str.contains(r"(?i)^(doc|documentation)/|\.(rst|md|txt)$"))
        .sum().alias("la_doc"),
        pl.col("added").filter(pl.col("path").str.contains(r"(?i)(meson|makefile|kconfig|\.mk$|\.build$)"))
        .sum().alias("la_build"),
    )
    author = ["repo", "author"]
    a = base.select("repo", "sha", "author", "t", "fix")
    a = sum_before(a, cumulative(a.filter(pl.col("fix")), author, pl.len()), author, pl.col("t"), "author_prior_fixes")
    first = a.group_by(author).agg(pl.col("t").min().alias("_first"))
    a = a.join(first, on=author, how="left").with_columns(
        ((pl.col("t") - pl.col("_first")) / 86400.0).alias("author_tenure_days"))
    return (base.select("repo", "sha").join(per, on=["repo", "sha"], how="left")
            .join(files, on=["repo", "sha"], how="left")
            .join(a.select("repo", "sha", "author_prior_fixes", "author_tenure_days"), on=["repo", "sha"], how="left")
            .with_columns(pl.col("subsystem").fill_null("none")))


def bug_history(base: pl.DataFrame, f: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """How often earlier work in the same files / by the same author needed a fix, counted at the
    time the fix landed (``events``: repo, sha, event_ts = first later Fixes:/revert), so only
    fixes that happened before the commit are seen."""
    ev = events.select("repo", "sha", pl.col("event_ts").alias("et"))
    fe = f.select("repo", "sha", "path").join(ev, on=["repo", "sha"], how="inner").rename({"et": "t"})
    ff = sum_before(f.select("repo", "sha", "path", "t"), cumulative(fe, ["repo", "path"], pl.len()),
                    ["repo", "path"], pl.col("t"), "path_bugs")
    files = ff.group_by("repo", "sha").agg(pl.col("path_bugs").sum().alias("file_prior_bugs"),
                                          (pl.col("path_bugs") > 0).sum().alias("files_with_prior_bugs"))
    ae = base.select("repo", "sha", "author").join(ev, on=["repo", "sha"], how="inner").rename({"et": "t"})
    a = sum_before(base.select("repo", "sha", "author", "t"), cumulative(ae, ["repo", "author"], pl.len()),
                   ["repo", "author"], pl.col("t"), "author_prior_bugs")
    return (base.select("repo", "sha").join(files, on=["repo", "sha"], how="left")
            .join(a.select("repo", "sha", "author_prior_bugs"), on=["repo", "sha"], how="left"))
