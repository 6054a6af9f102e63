"""Point-in-time features of patch e-mails (the schema of ``acceptance_ltp.parquet`` and of
``kforge ingest-list``'s ``mail_patches`` table).

Per e-mail: what the message itself says (series position, version, RFC, size of the diff,
trailers, recipients, the touched area) and the sender's record *as of the e-mail's date*
(earlier e-mails, earlier merges counted at the time they were merged, earlier versions of the
same title). Cover letters are excluded (they are never merged themselves).
"""

import polars as pl

from kforge.errors import InputError
from kforge.features.history import cumulative, sum_before

REQUIRED = ("archive_commit", "from_email", "ts", "subject", "version", "index", "total", "is_cover", "is_rfc",
            "title_norm", "raw_email")
EMAIL_NUMERIC = [
    "version", "index", "total", "is_rfc", "has_diff", "la", "ld", "nf", "subject_len", "message_len",
    "n_recipients", "has_signed_off", "n_review_tags", "is_reply", "sender_prior_emails",
    "sender_prior_merged", "sender_merge_rate", "title_prior_versions", "sender_tenure_days",
]


def email_frame(mails: pl.DataFrame) -> pl.DataFrame:
    """Features + ``t`` + ``event_ts`` (merge time when merged) for the non-cover patch e-mails."""
    missing = [c for c in REQUIRED if c not in mails.columns]
    if missing:
        raise InputError(f"e-mail table lacks columns: {', '.join(missing)} "
                         "(expected the schema of acceptance_ltp.parquet or kforge ingest-list)")
    raw = pl.col("raw_email").fill_null("")
    body = raw.str.replace(r"(?s)^.*?\n\n", "")
    headers = raw.str.extract(r"(?s)^(.*?)\n\n", 1).fill_null("")
    diff = body.str.extract(r"(?s)(\ndiff --git .*)$", 1).fill_null("")
    message = body.str.replace(r"(?s)\n---\n.*$", "").str.replace(r"(?s)\ndiff --git .*$", "")
    merged = pl.col("merged_commit").is_not_null() if "merged_commit" in mails.columns else pl.lit(False)
    days = pl.col("days_to_merge") if "days_to_merge" in mails.columns else pl.lit(None, pl.Float64)
    df = mails.filter(~pl.col("is_cover").fill_null(False)).select(
        pl.col("archive_commit").alias("email_id"), pl.col("from_email").str.to_lowercase().alias("sender"),
        pl.col("ts").cast(pl.Int64).alias("t"), "subject", "title_norm",
        pl.col("version").fill_null(1).cast(pl.Float64), pl.col("index").fill_null(1).cast(pl.Float64),
        pl.col("total").fill_null(1).cast(pl.Float64), pl.col("is_rfc").fill_null(False).cast(pl.Float64),
        diff.str.len_chars().gt(0).cast(pl.Float64).alias("has_diff"),
        diff.str.count_matches(r"(?m)^\+[^+]").cast(pl.Float64).alias("la"),
        diff.str.count_matches(r"(?m)^-[^-]").cast(pl.Float64).alias("ld"),
        diff.str.count_matches(r"(?m)^diff --git ").cast(pl.Float64).alias("nf"),
        pl.col("subject").str.len_chars().cast(pl.Float64).alias("subject_len"),
        message.str.len_chars().cast(pl.Float64).alias("message_len"),
        headers.str.extract(r"(?ims)^(?:to|cc):(.*?)\n\S", 1).fill_null("").str.count_matches("@")
        .cast(pl.Float64).alias("n_recipients"),
        message.str.contains(r"(?i)signed-off-by:").cast(pl.Float64).alias("has_signed_off"),
        message.str.count_matches(r"(?im)^(reviewed|acked|tested)-by:").cast(pl.Float64).alias("n_review_tags"),
        headers.str.contains(r"(?im)^in-reply-to:").cast(pl.Float64).alias("is_reply"),
        diff.str.extract(r"diff --git a/((?:[^/\s]+/){0,3})", 1).fill_null("").str.strip_chars("/")
        .alias("area"),
        (pl.col("subject") + "\n" + message.str.slice(0, 2000)).alias("text"),
        pl.when(merged).then(pl.col("ts") + (days.fill_null(0.0) * 86400).cast(pl.Int64)).alias("event_ts"),
    ).with_columns(pl.when(pl.col("area") == "").then(pl.lit("none")).otherwise(pl.col("area")).alias("area"))
    return _history(df).sort("t", "email_id")


def _history(df: pl.DataFrame) -> pl.DataFrame:
    s = ["sender"]
    df = sum_before(df, cumulative(df, s, pl.len()), s, pl.col("t"), "sender_prior_emails")
    merges = df.filter(pl.col("event_ts").is_not_null()).select("sender", pl.col("event_ts").alias("t"))
    df = sum_before(df, cumulative(merges, s, pl.len()), s, pl.col("t"), "sender_prior_merged")
    df = sum_before(df, cumulative(df, ["title_norm"], pl.len()), ["title_norm"], pl.col("t"), "title_prior_versions")
    first = df.group_by(s).agg(pl.col("t").min().alias("_first"))
    return df.join(first, on=s, how="left").with_columns(
        (pl.col("sender_prior_merged") / (pl.col("sender_prior_emails") + 1)).alias("sender_merge_rate"),
        ((pl.col("t") - pl.col("_first")) / 86400.0).alias("sender_tenure_days"),
        *(pl.col(c).cast(pl.Float64) for c in ("sender_prior_emails", "sender_prior_merged", "title_prior_versions")),
    ).drop("_first")
