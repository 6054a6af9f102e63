"""The two reference scorers every model run is measured against.

* :func:`beta_binomial`: posterior mean of a Beta-binomial per (combination, node type) from the
  observations before the prediction point, with an empirical-Bayes prior centred on the node
  type's rate (strength fitted on training rows). Honest for known pairs; for unseen pairs it
  falls back to the node-type rate.
* :func:`rule_score`: a hand-written structural scorer over the introspected traits (the kind of
  rules the original system generated its data from).
"""

import numpy as np
import polars as pl

STRENGTHS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def _posterior(frame: pl.DataFrame, k: float) -> np.ndarray:
    n = frame["h_pair_n"].fill_null(0).to_numpy()
    s = frame["hb_pair_s"].fill_null(0).to_numpy()
    m = ((frame["hb_node_s"].fill_null(0) + 1) / (frame["hb_node_n"].fill_null(0) + 2)).to_numpy()
    return (s + k * m) / (n + k)


def fit_strength(train: pl.DataFrame) -> float:
    """Prior strength maximising the training rows' point-in-time log-likelihood."""
    y = train["passed"].cast(pl.Float64).to_numpy()
    best, best_ll = STRENGTHS[0], -np.inf
    for k in STRENGTHS:
        p = np.clip(_posterior(train, k), 1e-6, 1 - 1e-6)
        ll = float(np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        if ll > best_ll:
            best, best_ll = k, ll
    return best


def beta_binomial(frame: pl.DataFrame, strength: float) -> np.ndarray:
    return np.clip(_posterior(frame, strength), 0.0, 1.0)


RULES: tuple[tuple[str, float, str], ...] = (
    ("hook_conflict", 0.30, "a lifecycle hook does not chain to super()"),
    ("shared_state_attrs", 0.30, "two mixins write the same instance attribute"),
    ("dependency_edge", 0.25, "one mixin extends the other (MRO order conflict)"),
    ("reinvoke_x_node_effects", 0.25, "re-invocation wraps a node with side effects/state"),
    ("short_circuit_x_node_state", 0.25, "short-circuiting in front of a stateful node"),
    ("short_circuit_x_invariants", 0.20, "short-circuiting in front of a mixin with a contract"),
    ("rewrite_x_sink", 0.15, "a request rewriter next to a log/event/audit sink"),
    ("threads_x_node_effects", 0.15, "thread-based wrapper around side effects"),
    ("reinvoke_x_sink", 0.10, "re-invocation next to a sink or raising mixin"),
    ("sink_pool", 0.10, "a connection pool (async concurrency)"),
)


def rule_score_row(features: dict[str, float]) -> float:
    """P(success) = 0.95 minus a fixed penalty per structural risk present (floored at 0.05)."""
    p = 0.95 - sum(penalty for col, penalty, _ in RULES if (features.get(col) or 0) > 0)
    return float(min(0.95, max(0.05, p)))


def rule_score(frame: pl.DataFrame) -> np.ndarray:
    cols = [c for c, _, _ in RULES if c in frame.columns]
    return np.array([rule_score_row(r) for r in frame.select(cols).iter_rows(named=True)])


def rule_reasons(row: dict[str, float]) -> list[str]:
    return [doc for col, _, doc in RULES if row.get(col, 0) and row.get(col, 0) > 0]
