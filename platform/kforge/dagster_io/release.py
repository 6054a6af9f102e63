"""Asset checks and metadata for the release path, with one vocabulary for every model.

``release_checks(spec)`` declares a model's checks up front (``split_holds``,
``no_future_features``, ``test_size``, ``beats_<baseline>``, the family's extras,
``beats_champion``), each described by its metric and threshold. ``release_check_results`` turns
a :class:`ReleaseResult` into one result per declared check: a gate that did not run is reported
as not run (WARN, never passed).
"""

from typing import Any

import dagster as dg

from kforge.registry.gates import BEATS_CHAMPION, ModelSpec
from kforge.registry.release import ReleaseResult


def release_checks(spec: ModelSpec) -> list[dg.AssetCheckSpec]:
    """The asset check specs of one model (non-blocking: a failed gate blocks promotion inside
    the release path and shows red in the UI, but the run and its challenger stay inspectable)."""
    return [dg.AssetCheckSpec(g.name, asset=spec.asset_key, description=g.description, blocking=False)
            for g in spec.gate_specs()]


def _num(v: float) -> float:
    return round(float(v), 4)


def release_check_results(result: ReleaseResult) -> list[dg.AssetCheckResult]:
    """One result per declared check of ``result.spec``."""
    spec = result.spec
    out = []
    for g in spec.gate_specs():
        c = result.check(g.name)
        if c is None or c.passed is None:
            why = c.detail if c is not None else "the gate produced no outcome"
            out.append(dg.AssetCheckResult(
                asset_key=spec.asset_key, check_name=g.name, passed=False, severity=dg.AssetCheckSeverity.WARN,
                description=f"not run: {why}", metadata={"status": "not run", "detail": why}))
            continue
        severity = dg.AssetCheckSeverity.ERROR if (g.blocking and g.name != BEATS_CHAMPION) \
            else dg.AssetCheckSeverity.WARN
        out.append(dg.AssetCheckResult(
            asset_key=spec.asset_key, check_name=g.name, passed=bool(c.passed), severity=severity,
            description=c.detail[:500] or None,
            metadata={"status": "passed" if c.passed else "failed", "detail": c.detail[:500],
                      **{k: _num(v) for k, v in c.numbers.items()}}))
    return out


def release_metadata(result: ReleaseResult) -> dict[str, Any]:
    """Materialization metadata: version, decision, scores, digests."""
    return dict(result.metadata())
