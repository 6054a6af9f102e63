"""Feedback family ``acceptance``: observed fates of patches and commits.

* ``target=email``: ``item_id`` is the e-mail id (public-inbox commit / Message-Id), ``outcome``
  true when the patch was merged;
* ``target=commit``: ``item_id`` is the commit sha, ``outcome`` true when it was later fixed or
  reverted.
``observed_ts`` (unix seconds) is when the outcome became known; ``p_predicted`` optionally
records what the model said (the drift check falls back to stored champion predictions).
"""

from typing import Any

from kforge.errors import InputError
from kforge.feedback.store import FeedbackSchema, Field
from kforge.storage import Warehouse


def _check(row: dict[str, Any], warehouse: Warehouse) -> None:
    p = row.get("p_predicted")
    if p is not None and not 0.0 <= p <= 1.0:
        raise InputError(f"p_predicted must be within [0, 1], got {p}")
    ts = row.get("observed_ts")
    if ts is not None and ts < 0:
        raise InputError(f"observed_ts must be unix seconds >= 0, got {ts}")
    if row["target"] == "commit" and len(row["item_id"]) < 7:
        raise InputError(f"item_id for a commit must be a sha (>= 7 hex chars), got {row['item_id']!r}")
    if row["target"] == "commit":
        known = warehouse.read("select count(*) as n from commits where repo = ? and sha like ?",
                               [row["repo"], row["item_id"].lower() + "%"])["n"][0] if warehouse.has_table("commits") else 0
        if known == 0:
            raise InputError(f"unknown commit {row['item_id']!r} in repository {row['repo']!r}: "
                             "feedback must refer to an ingested commit")


SCHEMA = FeedbackSchema(
    family="acceptance",
    doc="observed fate of a patch e-mail (merged?) or a merged commit (later fixed/reverted?)",
    fields=(
        Field("target", "str", choices=("commit", "email"), doc="commit | email"),
        Field("repo", "str", doc="repository (commits) or project/list (e-mails)"),
        Field("item_id", "str", doc="commit sha or e-mail id"),
        Field("outcome", "bool", doc="commit: later fixed/reverted; email: merged"),
        Field("observed_ts", "int", required=False, doc="unix seconds when the outcome was observed"),
        Field("p_predicted", "float", required=False, doc="the model's probability, if known"),
    ),
    check=_check,
)
