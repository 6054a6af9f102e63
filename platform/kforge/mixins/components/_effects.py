"""Shared helpers for contracts: what a request left behind in the environment."""

from typing import Any

from kforge.mixins.components.base import Env


def side_effect_count(env: Env, node: Any, rid: int) -> int:
    """Committed writes plus in-memory state applications attributed to request ``rid``."""
    writes = sum(1 for r, _, _ in env.store.committed if r == rid)
    applied = sum(1 for r in getattr(node, "applied", ()) if r == rid)
    return writes + applied


def status(env: Env, rid: int) -> tuple[str, Any]:
    return env.results.get(rid, ("missing", None))
