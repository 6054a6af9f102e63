"""Feedback family ``mixins``: a combination that worked or failed in production.

    kforge feedback add mixins mixins=Caching,Retry node_type=EFFECT outcome=failure \
        conflict_reason=duplicate_side_effect
"""

from datetime import datetime
from typing import Any

from kforge.config import Paths
from kforge.errors import InputError
from kforge.feedback import FeedbackSchema, Field
from kforge.storage import Warehouse


def _check(row: dict[str, Any], warehouse: Warehouse) -> None:
    from kforge.mixins.catalogue import load_catalogue

    cat = load_catalogue(Paths(warehouse.path.parent))
    names = [m for m in str(row["mixins"]).replace("+", ",").split(",") if m.strip()]
    canon = sorted({cat.canonical(m) for m in names})
    if len(canon) < 2:
        raise InputError(f"mixins needs at least two different mixins, got {row['mixins']!r}")
    row["mixins"] = ",".join(canon)
    row["node_type"] = cat.node_type(row["node_type"])
    if row["outcome"] == "success" and row.get("conflict_reason"):
        raise InputError("conflict_reason is only meaningful for outcome=failure")
    if row.get("observed_at"):
        try:
            datetime.fromisoformat(str(row["observed_at"]).replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"observed_at must be an ISO timestamp, got {row['observed_at']!r}") from None


SCHEMA = FeedbackSchema(
    family="mixins",
    doc="an observed outcome of a mixin combination on a node type",
    fields=(
        Field("mixins", "str", doc="comma-separated mixin names (2 or more), e.g. Caching,Retry"),
        Field("node_type", "str", doc="EFFECT, COMPUTE, REDUCER, ORCHESTRATOR or a registered node type"),
        Field("outcome", "str", choices=("success", "failure")),
        Field("conflict_reason", "str", required=False, doc="what went wrong (failures only)"),
        Field("mode", "str", required=False, choices=("sync", "async", "unknown")),
        Field("observed_at", "str", required=False, doc="ISO timestamp of the observation (default: now)"),
        Field("notes", "str", required=False),
    ),
    check=_check,
)
