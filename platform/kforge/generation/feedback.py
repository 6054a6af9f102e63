"""Feedback for the generation family: a reviewer's verdict on a generated commit message.

``verdict`` accept/edit/reject; for ``edit`` the reviewer's ``final_message`` is required. With the
``diff`` the row becomes a training example on the next retraining (train split only).

Example::

    kforge feedback add generation verdict=edit generated_message="net/ice: fix" \\
        final_message="net/ice: fix Rx queue leak" model_version=3 reviewer=alice
"""

from typing import Any

from kforge.errors import InputError
from kforge.feedback import FeedbackSchema, Field
from kforge.storage import Warehouse


def _check(row: dict[str, Any], wh: Warehouse) -> None:
    if row["verdict"] == "edit" and not (row.get("final_message") or "").strip():
        raise InputError("verdict=edit needs final_message (the message the reviewer kept)")
    if not (row.get("generated_message") or "").strip():
        raise InputError("generated_message must not be empty")
    mv = row.get("model_version")
    if mv is not None and mv < 1:
        raise InputError(f"model_version must be >= 1, got {mv}")


SCHEMA = FeedbackSchema(
    family="generation",
    fields=(
        Field("verdict", "str", choices=("accept", "edit", "reject"), doc="the reviewer's decision"),
        Field("generated_message", "str", doc="the message kforge generated"),
        Field("final_message", "str", required=False, doc="the message kept after editing (verdict=edit)"),
        Field("diff", "str", required=False, doc="the diff the message was generated for"),
        Field("sha", "str", required=False, doc="commit the message ended up in, if known"),
        Field("subsystem", "str", required=False, doc="predicted subsystem shown to the reviewer"),
        Field("model_version", "int", required=False, doc="kforge-generation-lm version that generated it"),
        Field("reviewer", "str", required=False),
    ),
    doc="A reviewer's accept/edit/reject of a generated commit message.",
    check=_check,
)
