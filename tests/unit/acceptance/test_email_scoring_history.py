"""Scoring e-mails counts the sender's and the title's stored history, as training did (session 9 audit).

Before, `kforge acceptance score` on a file of e-mails computed sender_prior_emails, sender_prior_merged,
title_prior_versions and sender_tenure_days from that file alone, so a regular contributor scored like a
first-time sender: a train/serve skew on the model's history features."""

from pathlib import Path

import polars as pl
from kforge.acceptance.pipeline import EMAIL_TABLE
from kforge.acceptance.scoring import email_rows


def _mails(ids: list[str], ts: list[int], merged: list[str | None], title: str) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame({"archive_commit": ids, "from_email": ["Dev@x.org"] * n, "ts": ts,
                         "subject": [f"[PATCH] {title}"] * n, "version": [1] * n, "index": [1] * n,
                         "total": [1] * n, "is_cover": [False] * n, "is_rfc": [False] * n,
                         "title_norm": [title] * n, "raw_email": ["Subject: x\n\nbody"] * n,
                         "merged_commit": merged, "days_to_merge": [1.0 if m else None for m in merged]})


def test_scored_e_mails_see_the_stored_history(warehouse, tmp_path: Path) -> None:  # noqa: ANN001
    day = 86400
    stored = _mails(["s1", "s2", "s3"], [10 * day, 20 * day, 30 * day], ["c1", "c2", None], "net: fix")
    warehouse.replace(EMAIL_TABLE, stored)
    new = _mails(["n1"], [100 * day], [None], "net: fix")
    path = tmp_path / "new.parquet"
    new.write_parquet(path)

    alone = email_rows(path).row(0, named=True)
    assert alone["sender_prior_emails"] == 0 and alone["sender_tenure_days"] == 0

    row = email_rows(path, warehouse)
    assert row.height == 1 and row["email_id"].to_list() == ["n1"]   # only the scored e-mails come back
    r = row.row(0, named=True)
    assert r["sender_prior_emails"] == 3 and r["sender_prior_merged"] == 2
    assert r["title_prior_versions"] == 3 and r["sender_tenure_days"] == 90


def test_a_scored_e_mail_already_stored_is_counted_once(warehouse, tmp_path: Path) -> None:  # noqa: ANN001
    day = 86400
    warehouse.replace(EMAIL_TABLE, _mails(["s1", "s2"], [10 * day, 20 * day], [None, None], "mm: fix"))
    path = tmp_path / "again.parquet"
    _mails(["s2"], [20 * day], [None], "mm: fix").write_parquet(path)
    r = email_rows(path, warehouse).row(0, named=True)
    assert r["sender_prior_emails"] == 1   # s1 only: s2 is not its own history
