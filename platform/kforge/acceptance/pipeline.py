"""What the acceptance assets do, as plain functions over the warehouse (no Dagster here)."""

from pathlib import Path

import numpy as np
import polars as pl

from kforge.acceptance.dataset import commit_survival_frame
from kforge.acceptance.email_features import email_frame
from kforge.acceptance.spec import TargetSpec
from kforge.errors import InputError
from kforge.feedback import feedback_since
from kforge.storage import Warehouse

PREDICTIONS = "acceptance_predictions"
EMAIL_TABLE = "mail_patches"


def acceptance_feedback(wh: Warehouse) -> pl.DataFrame:
    fb = feedback_since("acceptance", wh, 0)
    if fb.height == 0:
        return fb
    seen = pl.col("received_at").dt.epoch("s")
    return fb.with_columns(pl.coalesce(pl.col("observed_ts"), seen).alias("observed_ts"))


def commit_frame(wh: Warehouse, repos: list[str] | None = None) -> pl.DataFrame:
    """``patch_features`` + event times from ``commit_chains`` + commit feedback."""
    for t in ("patch_features", "commit_chains"):
        if not wh.has_table(t):
            raise InputError(f"table {t!r} is missing: materialize patch_features and kernel_commits first")
    feats = wh.read_table("patch_features")
    if repos:
        feats = feats.filter(pl.col("repo").is_in(repos))
        if feats.height == 0:
            raise InputError(f"no patch_features rows for repositories {repos}")
    return commit_survival_frame(feats, wh.read_table("commit_chains"), acceptance_feedback(wh))


def email_source(data_root: Path | None, wh: Warehouse) -> tuple[pl.DataFrame | None, str]:
    """The patch e-mails to learn from: the real LTP table when a data dir is set, else what
    ``kforge ingest-list`` stored, else none."""
    if data_root is not None and (data_root / "kernel" / "acceptance_ltp.parquet").exists():
        path = data_root / "kernel" / "acceptance_ltp.parquet"
        return pl.read_parquet(path), str(path)
    if wh.has_table(EMAIL_TABLE):
        return wh.read_table(EMAIL_TABLE), f"warehouse:{EMAIL_TABLE}"
    return None, "none"


def email_training_frame(mails: pl.DataFrame, wh: Warehouse) -> pl.DataFrame:
    frame = email_frame(mails)
    fb = acceptance_feedback(wh)
    if fb.height:
        fb = (fb.filter(pl.col("target") == "email").select(pl.col("item_id").alias("email_id"), "outcome",
                                                              pl.col("observed_ts").alias("fb_ts")))
        # the latest word decides; a merge is dated when it was first reported (not by an earlier "not merged")
        frame = (frame.join(fb.group_by("email_id").agg(pl.col("outcome").last(),
                                                          pl.col("fb_ts").filter(pl.col("outcome")).min()),
                            on="email_id", how="left")
                 .with_columns(pl.when(pl.col("outcome").fill_null(False) & pl.col("event_ts").is_null())
                               .then(pl.col("fb_ts")).otherwise(pl.col("event_ts")).alias("event_ts"))
                 .drop("outcome", "fb_ts"))
    return frame


def predictions_frame(frame: pl.DataFrame, spec: TargetSpec, p: np.ndarray, version: int) -> pl.DataFrame:
    repo = frame["repo"] if "repo" in frame.columns else pl.Series("repo", ["mail"] * frame.height)
    return pl.DataFrame({"target": [spec.target] * frame.height, "repo": repo, "item_id": frame[spec.id_col],
                         "model_version": [version] * frame.height, "p": p})


def store_predictions(wh: Warehouse, preds: pl.DataFrame) -> int:
    """Replace this (target, version)'s predictions (the drift check reads them)."""
    from kforge.storage import warehouse as whm

    with wh.writer() as con:
        if whm.exists(con, PREDICTIONS):
            target, version = preds["target"][0], int(preds["model_version"][0])
            con.execute(f"delete from {PREDICTIONS} where target = ? and model_version = ?", [target, version])
        return whm.append(con, PREDICTIONS, preds)
