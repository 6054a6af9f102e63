"""A documented heuristic quality score for commits as training examples (0..1).

Points (sum, then halved for merges, reverts and automated sync/bot commits):

| criterion | points |
|---|---|
| subject 15-75 characters | 0.20 |
| a subsystem prefix (``net/ice: ...``) | 0.15 |
| a body with at least two non-trailer lines of rationale | 0.20 |
| Signed-off-by present | 0.10 |
| reviewed, acked or tested by someone | 0.15 |
| diff present, not truncated, 1-400 changed lines | 0.20 |
"""

import polars as pl

BOT_SUBJECT = r"(?i)^(merge |sync:|automated|bump version|update .* from upstream)"
TRAILER_LINE = r"^[A-Za-z-]+-by:|^(Cc|Link|Fixes|Closes):"


def quality_score(df: pl.DataFrame) -> pl.Series:
    """Columns needed: subject, body, subject_prefix, signed_off_by, reviewed_by, acked_by,
    tested_by, lines_added, lines_deleted, truncated (bool), has_diff (bool)."""
    body_lines = (
        pl.col("body").fill_null("").str.split("\n").list.eval(
            pl.element().filter((pl.element().str.strip_chars().str.len_chars() > 0)
                                & ~pl.element().str.contains(TRAILER_LINE)))
        .list.len()
    )
    slen = pl.col("subject").str.len_chars()
    size = pl.col("lines_added").fill_null(0) + pl.col("lines_deleted").fill_null(0)
    score = (
        pl.when((slen >= 15) & (slen <= 75)).then(0.20).otherwise(0.0)
        + pl.when(pl.col("subject_prefix").fill_null("") != "").then(0.15).otherwise(0.0)
        + pl.when(body_lines >= 2).then(0.20).otherwise(0.0)
        + pl.when(pl.col("signed_off_by").list.len() > 0).then(0.10).otherwise(0.0)
        + pl.when((pl.col("reviewed_by").list.len() + pl.col("acked_by").list.len() + pl.col("tested_by").list.len()) > 0)
        .then(0.15).otherwise(0.0)
        + pl.when(pl.col("has_diff") & ~pl.col("truncated").fill_null(False) & (size >= 1) & (size <= 400))
        .then(0.20).otherwise(0.0)
    )
    penalised = pl.col("subject").str.contains(BOT_SUBJECT) | pl.col("subject").str.starts_with("Revert ")
    return df.select(pl.when(penalised).then(score * 0.5).otherwise(score).round(3).alias("quality")).to_series()
