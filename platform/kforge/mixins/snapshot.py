"""History as of training time, for serving: the same definitions as :mod:`features`, computed
for a query made after every stored observation."""

import itertools
from dataclasses import dataclass, field

import polars as pl

from kforge.mixins.features import HIST_COLS, POST_STRENGTH, PRIOR
from kforge.mixins.outcomes import combination_key

Counts = dict[tuple[str, ...], tuple[float, float]]


@dataclass
class HistorySnapshot:
    pair: Counts = field(default_factory=dict)        # (combination, node) -> (n, s)
    combo: Counts = field(default_factory=dict)       # (combination,)
    node: Counts = field(default_factory=dict)        # (node,)
    mixin: Counts = field(default_factory=dict)       # (mixin,)
    mixin_node: Counts = field(default_factory=dict)  # (mixin, node)
    pairs_only: Counts = field(default_factory=dict)  # (pair combination, node), pairs observed as pairs

    @classmethod
    def of(cls, outcomes: pl.DataFrame) -> "HistorySnapshot":
        def counts(df: pl.DataFrame, keys: list[str]) -> Counts:
            g = df.group_by(keys).agg(pl.len().alias("n"), pl.col("passed").sum().alias("s"))
            return {tuple(r[:-2]): (float(r[-2]), float(r[-1])) for r in g.iter_rows()}

        ex = outcomes.explode("mixins").rename({"mixins": "mixin"})
        return cls(counts(outcomes, ["combination", "node_type"]), counts(outcomes, ["combination"]),
                   counts(outcomes, ["node_type"]), counts(ex, ["mixin"]), counts(ex, ["mixin", "node_type"]),
                   counts(outcomes.filter(pl.col("set_size") == 2), ["combination", "node_type"]))

    def features(self, mixins: list[str], node_type: str) -> dict[str, float | None]:
        combo = combination_key(mixins)

        def rate(ns: tuple[float, float] | None) -> float | None:
            if not ns or ns[0] == 0:
                return None
            return (ns[1] + PRIOR[0]) / (ns[0] + PRIOR[0] + PRIOR[1])

        pair, cmb = self.pair.get((combo, node_type)), self.combo.get((combo,))
        node = self.node.get((node_type,), (0.0, 0.0))
        m = [self.mixin.get((x,)) for x in mixins]
        mn = [self.mixin_node.get((x, node_type)) for x in mixins]
        m_rates = [r for r in map(rate, m) if r is not None]
        mn_rates = [r for r in map(rate, mn) if r is not None]
        sub = [rate(self.pairs_only.get((combination_key([a, b]), node_type)))
               for a, b in itertools.combinations(sorted(mixins), 2)]
        sub = [r for r in sub if r is not None]
        out: dict[str, float | None] = {
            "h_pair_n": pair[0] if pair else 0.0, "h_pair_rate": rate(pair),
            "h_combo_n": cmb[0] if cmb else 0.0, "h_combo_rate": rate(cmb),
            "h_mixin_min_rate": min(m_rates) if m_rates else None,
            "h_mixin_mean_rate": sum(m_rates) / len(m_rates) if m_rates else None,
            "h_mixin_min_n": min((x[0] if x else 0.0) for x in m),
            "h_mixin_unseen": float(sum(1 for x in m if not x or x[0] == 0)),
            "h_mixin_node_min_rate": min(mn_rates) if mn_rates else None,
            "h_mixin_node_mean_rate": sum(mn_rates) / len(mn_rates) if mn_rates else None,
            "h_subpair_min_rate": min(sub) if sub else None,
            "h_node_rate": (node[1] + PRIOR[0]) / (node[0] + PRIOR[0] + PRIOR[1]),
            "hb_pair_s": pair[1] if pair else 0.0, "hb_node_n": node[0], "hb_node_s": node[1],
        }
        out["h_pair_post"] = (out["hb_pair_s"] + POST_STRENGTH * out["h_node_rate"]) / (out["h_pair_n"] + POST_STRENGTH)
        assert set(HIST_COLS) <= set(out)
        return out
