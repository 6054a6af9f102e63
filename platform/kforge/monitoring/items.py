"""Per-item predictions, so feedback that arrives later can be joined to what a model said.

Serving code logs one :class:`Item` per prediction it hands out (an acceptance score for a sha, a
healing label for an error id, a generated message, a mixin-pair verdict). The key is what the
family's feedback rows carry (see :mod:`kforge.monitoring.feedback_join`), so "was it followed?"
and "was it right?" are computed from the feedback tables, never typed in twice.

Table ``prediction_items`` (append-only): ``item_log_id``, ``log_id`` (the call in
``prediction_log``), ``logged_at``, ``family``, ``model_name``, ``model_version``, ``item_key``,
``field``, ``prediction``, ``score``.
"""

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from kforge.errors import InputError
from kforge.storage import Warehouse

ITEMS = "prediction_items"
ITEM_SCHEMA = {
    "item_log_id": pl.Int64, "log_id": pl.Int64, "logged_at": pl.Datetime("us", "UTC"), "family": pl.String,
    "model_name": pl.String, "model_version": pl.String, "item_key": pl.String, "field": pl.String,
    "prediction": pl.String, "score": pl.Float64,
}


@dataclass(frozen=True)
class Item:
    """One prediction handed out: ``key`` identifies the thing predicted, ``field`` what was predicted."""

    key: str
    field: str
    prediction: str
    score: float | None = None


def message_key(message: str) -> str:
    """The join key of a generated commit message: its subject line, whitespace-normalised and
    lower-cased, without a ``Subject: [PATCH]`` header (reviewers paste the message, not the mail)."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    subject = next((ln for ln in lines if ln.lower().startswith("subject:")), lines[0] if lines else "")
    subject = re.sub(r"^subject:\s*(\[[^\]]*\]\s*)?", "", subject, flags=re.I)
    return hashlib.sha1(" ".join(subject.lower().split()).encode()).hexdigest()


def log_items(warehouse: Warehouse, family: str, model_name: str, model_version: int | str, items: Sequence[Item],
              log_id: int = 0, logged_at: datetime | None = None) -> int:
    """Append ``items``; returns how many were written."""
    from kforge.monitoring.log import _append_with_id, _check

    _check(family, model_name)
    if not items:
        return 0
    bad = [i for i in items if not isinstance(i, Item) or not i.key or not i.field]
    if bad:
        raise InputError(f"prediction items need a non-empty key and field, got {bad[0]!r}")
    now = logged_at or datetime.now(UTC)
    rows = [{"log_id": int(log_id), "logged_at": now, "family": family, "model_name": model_name,
             "model_version": str(model_version), "item_key": i.key, "field": i.field, "prediction": str(i.prediction),
             "score": None if i.score is None else float(i.score)} for i in items]
    _append_with_id(warehouse, ITEMS, "item_log_id", rows, ITEM_SCHEMA)
    return len(rows)


def read_items(warehouse: Warehouse, family: str) -> pl.DataFrame:
    if not warehouse.has_table(ITEMS):
        return pl.DataFrame(schema=ITEM_SCHEMA)
    return warehouse.read(f"select * from {ITEMS} where family = ?", [family])
