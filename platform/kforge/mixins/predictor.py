"""The deployable bundle: the calibrated model, the history snapshot it serves with, and the
observed conflict reasons used to explain predictions.

Example::

    p = predictor.predict([(["Caching", "Authorization"], "COMPUTE")], cat.traits())[0]
    p["probability"], p["regime"], p["top_features"], p["similar_conflicts"]
    p["scorer"]    # "learner"; for a mixin with little history "transfer", or "rules" (the fallback)
    p["top_features_of"]   # the scorer whose log-odds ``top_features`` decompose (the one that answered)
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from kforge.mixins.baselines import beta_binomial, rule_reasons
from kforge.mixins.evaluate import needs_transfer, served_proba
from kforge.mixins.features import static_features
from kforge.mixins.model import CompatModel
from kforge.mixins.outcomes import combination_key
from kforge.mixins.snapshot import HistorySnapshot
from kforge.mixins.transfer import MIN_MIXIN_HISTORY, TransferScorer

Query = tuple[list[str], str]


def conflict_reasons(outcomes: pl.DataFrame) -> dict[tuple[str, str], Counter]:
    out: dict[tuple[str, str], Counter] = {}
    fails = outcomes.filter(~pl.col("passed") & pl.col("conflict_reason").is_not_null())
    for combo, node, reason in fails.select("combination", "node_type", "conflict_reason").iter_rows():
        out.setdefault((combo, node), Counter())[reason] += 1
    return out


@dataclass
class MixinPredictor:
    model: CompatModel
    snapshot: HistorySnapshot
    known_mixins: list[str]
    known_nodes: list[str]
    strength: float
    reasons: dict[tuple[str, str], Counter]
    trained_until: datetime            # training rows are strictly before this instant
    history_through_id: int            # the snapshot includes outcomes up to this id
    metrics: dict[str, float] = field(default_factory=dict)
    transfer: TransferScorer | None = None   # serves rows with a little-known mixin (None: bundles before it)

    def scorer_of(self, cold: bool) -> tuple[str, str]:
        """(scorer, why) for a row: ``learner``, ``transfer`` or ``rules``."""
        transfer = getattr(self, "transfer", None)
        if not cold or transfer is None:
            return "learner", "the history learner"
        if transfer.served_by == "rules":
            return "rules", (f"a mixin observed fewer than {MIN_MIXIN_HISTORY} times: the rule score, because the "
                             "learner was not clearly better than the rules on held-out mixins in validation")
        return "transfer", (f"a mixin observed fewer than {MIN_MIXIN_HISTORY} times: the rule score re-ranked by the "
                            f"transfer learner (shrink {transfer.shrink:g}, chosen on held-out mixins)")

    def frame(self, queries: list[Query], traits: dict[str, dict[str, Any]]) -> pl.DataFrame:
        rows = []
        for mixins, node in queries:
            rows.append({"combination": combination_key(mixins), "node_type": node,
                         **static_features(sorted(mixins), node, traits, self.known_mixins, self.known_nodes),
                         **self.snapshot.features(sorted(mixins), node)})
        return pl.DataFrame(rows, infer_schema_length=None)

    def similar_conflicts(self, mixins: list[str], node: str, k: int = 3) -> list[dict[str, Any]]:
        """Observed failure reasons of this combination, then of combinations sharing a mixin (same node)."""
        combo = combination_key(mixins)
        exact = self.reasons.get((combo, node), Counter())
        near: Counter = Counter()
        mine = set(mixins)
        for (c, n), cnt in self.reasons.items():
            if n == node and c != combo and mine & set(c.split("+")):
                for reason, count in cnt.items():
                    near[(reason, c)] += count
        out = [{"reason": r, "combination": combo, "count": n, "match": "exact"} for r, n in exact.most_common(k)]
        out += [{"reason": r, "combination": c, "count": n, "match": "shares a mixin"}
                for (r, c), n in near.most_common(k)]
        return out

    def predict(self, queries: list[Query], traits: dict[str, dict[str, Any]], explain: bool = True,
                k: int = 5, frame: pl.DataFrame | None = None) -> list[dict[str, Any]]:
        """``frame``: :meth:`frame` of the same queries, when the caller built it already."""
        frame = self.frame(queries, traits) if frame is None else frame
        probs = served_proba(self.model, getattr(self, "transfer", None), frame)
        cold = needs_transfer(frame)
        base = beta_binomial(frame, self.strength)
        expl = self.model.explain(frame, k) if explain else [[] for _ in queries]
        transfer = getattr(self, "transfer", None)
        if explain and transfer is not None and cold.any():   # explain the scorer that answered, not the learner
            idx = [i for i in range(len(queries)) if cold[i]]
            for i, e in zip(idx, transfer.explain(frame[idx], k), strict=True):
                expl[i] = e
        out = []
        for i, (mixins, node) in enumerate(queries):
            row = frame.row(i, named=True)
            seen = [m for m in mixins if m in self.known_mixins and (self.snapshot.mixin.get((m,)) or (0, 0))[0] > 0]
            regime = ("seen_pair" if row["h_pair_n"] > 0 else "unseen_pair" if len(seen) == len(mixins)
                      else "unseen_mixin")
            scorer, why = self.scorer_of(bool(cold[i]))
            out.append({
                "mixins": sorted(mixins), "node_type": node, "probability": float(probs[i]),
                "scorer": scorer, "scorer_reason": why,
                "compatible": bool(probs[i] >= 0.5), "regime": regime, "observed": int(row["h_pair_n"]),
                "observed_success_rate": row["h_pair_rate"], "beta_binomial": float(base[i]),
                "rule_score": row["rule_score"], "structural_risks": rule_reasons(row),
                "top_features": [{"feature": f, "value": v, "contribution": round(c, 4)} for f, v, c in expl[i]],
                "top_features_of": scorer,
                "similar_conflicts": self.similar_conflicts(sorted(mixins), node) if explain else [],
            })
        return out
