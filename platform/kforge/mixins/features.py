"""Features for a (combination, node type): static traits introspected from the classes, set
interactions, and point-in-time historical outcome rates.

Historical rates for an observation at time t use only observations with ``observed_at < t``
(never the row itself, never a row recorded at the same instant). ``weights`` lets an evaluation
hide rows (weight 0: the held-out pairs contribute no history); masking blanks the exact-pair
history of chosen combinations so the model also learns the unseen-pair regime.
"""

import itertools
from typing import Any

import numpy as np
import polars as pl

from kforge.mixins.outcomes import combination_key

FLAGS = ("wraps_async", "hook_breaks_chain", "reinvokes", "short_circuits", "rewrites_request", "catches_broad",
         "acts_after_call", "uses_threads", "state_modifying", "side_effects", "has_invariants")
SINKS = ("log", "events", "audit", "store", "pool", "failures", "threads")
CATEGORIES = ("infrastructure", "resilience", "business", "data_access", "custom")
PRIOR = (1.0, 1.0)  # Beta(1, 1) smoothing of every historical rate
HIST_COLS = ("h_pair_n", "h_pair_rate", "h_combo_n", "h_combo_rate", "h_mixin_min_rate", "h_mixin_mean_rate",
             "h_mixin_min_n", "h_mixin_unseen", "h_mixin_node_min_rate", "h_mixin_node_mean_rate", "h_subpair_min_rate",
             "h_node_rate", "h_pair_post")
POST_STRENGTH = 4.0   # pseudo-observations of the node-type rate in the h_pair_post shrinkage
BASELINE_COLS = ("hb_pair_s", "hb_node_n", "hb_node_s")   # raw counts for the Beta-binomial, not model inputs


def _rate(s: float, n: float) -> float:
    return (s + PRIOR[0]) / (n + PRIOR[0] + PRIOR[1])


def static_features(mixins: list[str], node_type: str, traits: dict[str, dict[str, Any]],
                    known_mixins: list[str], known_nodes: list[str]) -> dict[str, float]:
    """Order-invariant features of a set of mixins on a node type (no outcome information)."""
    ts = [traits[m] for m in mixins]
    node = traits[node_type]
    f: dict[str, float] = {"set_size": len(mixins)}
    for n in known_nodes:
        f[f"node_is_{n}"] = float(node_type == n)
    f["node_state_modifying"] = float(node["state_modifying"])
    f["node_side_effects"] = float(node["side_effects"])
    f["node_async_steps"] = float(node["async_methods"] > 1)
    f["node_n_state_writes"] = float(node["n_state_writes"])
    for m in known_mixins:
        f[f"has_{m}"] = float(m in mixins)
    for c in CATEGORIES:
        f[f"cat_{c}"] = float(sum((t["category"] if t["category"] in CATEGORIES else "custom") == c for t in ts))
    for flag in FLAGS:
        f[f"any_{flag}"] = float(any(t[flag] for t in ts))
        f[f"n_{flag}"] = float(sum(bool(t[flag]) for t in ts))
    for s in SINKS:
        f[f"sink_{s}"] = float(sum(s in t["sinks"] for t in ts))
    f["sum_hooks"] = float(sum(t["n_hooks"] for t in ts))
    f["sum_state_writes"] = float(sum(t["n_state_writes"] for t in ts))
    f["sum_methods"] = float(sum(t["n_methods"] for t in ts))
    f["sum_lines"] = float(sum(t["n_lines"] for t in ts))
    f["n_raises"] = float(sum(len(t["raises"]) for t in ts))
    f["all_wrap_async"] = float(all(t["wraps_async"] or not t["wraps_sync"] for t in ts))
    # pair interactions, "any pair in the set"
    inter = {k: 0.0 for k in ("shared_state_attrs", "shared_hooks", "hook_conflict", "dependency_edge",
                              "both_state_modifying", "tag_overlap", "same_category", "reinvoke_x_sink",
                              "short_circuit_x_invariants", "rewrite_x_sink", "threads_x_store", "shared_raises")}
    for a, b in itertools.combinations(ts, 2):
        inter["shared_state_attrs"] += len(set(a["state_writes"]) & set(b["state_writes"]))
        inter["shared_hooks"] += len(set(a["hooks"]) & set(b["hooks"]))
        inter["hook_conflict"] += float((a["hook_breaks_chain"] and b["n_hooks"] > 0)
                                        or (b["hook_breaks_chain"] and a["n_hooks"] > 0))
        inter["dependency_edge"] += float(bool(set(a["depends_on"]) & {b["name"]})
                                          or bool(set(b["depends_on"]) & {a["name"]}))
        inter["both_state_modifying"] += float(a["state_modifying"] and b["state_modifying"])
        ta, tb = set(a["tags"]), set(b["tags"])
        inter["tag_overlap"] += len(ta & tb) / max(1, len(ta | tb))
        inter["same_category"] += float(a["category"] == b["category"])
        for x, y in ((a, b), (b, a)):
            inter["reinvoke_x_sink"] += float(x["reinvokes"] and (bool(y["sinks"]) or bool(y["raises"])))
            inter["short_circuit_x_invariants"] += float(x["short_circuits"] and y["has_invariants"])
            inter["rewrite_x_sink"] += float(x["rewrites_request"] and bool(set(y["sinks"]) & {"log", "events", "audit"}))
            inter["threads_x_store"] += float(x["uses_threads"] and ("store" in y["sinks"] or y["state_modifying"]))
        inter["shared_raises"] += len(set(a["raises"]) & set(b["raises"]))
    f.update(inter)
    f["reinvoke_x_node_effects"] = float(f["any_reinvokes"] and (node["side_effects"] or node["state_modifying"]))
    f["short_circuit_x_node_state"] = float(f["any_short_circuits"] and (node["side_effects"] or node["state_modifying"]))
    f["threads_x_node_effects"] = float(f["any_uses_threads"] and (node["side_effects"] or node["state_modifying"]))
    from kforge.mixins.baselines import rule_score_row

    f["rule_score"] = rule_score_row(f)
    return f


def static_frame(keys: pl.DataFrame, traits: dict[str, dict[str, Any]], known_mixins: list[str],
                 known_nodes: list[str]) -> pl.DataFrame:
    """Static features for each distinct (combination, node_type) in ``keys`` (needs ``mixins``)."""
    uniq = keys.select("combination", "node_type", "mixins").unique(subset=["combination", "node_type"])
    rows = [{"combination": c, "node_type": n, **static_features(list(m), n, traits, known_mixins, known_nodes)}
            for c, n, m in uniq.iter_rows()]
    return pl.DataFrame(rows)


def _prior_stats(df: pl.DataFrame, keys: list[str], prefix: str) -> pl.DataFrame:
    """Per row: weighted count/successes of rows with the same keys observed strictly earlier."""
    g = (df.group_by([*keys, "observed_at"]).agg(pl.col("w").sum().alias("_n"), pl.col("ws").sum().alias("_s"))
         .sort("observed_at")
         .with_columns((pl.col("_n").cum_sum().over(keys) - pl.col("_n")).alias(f"{prefix}_n"),
                       (pl.col("_s").cum_sum().over(keys) - pl.col("_s")).alias(f"{prefix}_s"))
         .drop("_n", "_s"))
    return g


def _rate_expr(prefix: str) -> pl.Expr:
    return ((pl.col(f"{prefix}_s") + PRIOR[0]) / (pl.col(f"{prefix}_n") + PRIOR[0] + PRIOR[1]))


def history_frame(outcomes: pl.DataFrame, weights: pl.Series | None = None,
                  mask_rows: set[int] | None = None, hide_mixin: dict[int, str] | None = None) -> pl.DataFrame:
    """Point-in-time history features per outcome_id (see module docstring).

    ``mask_rows``: outcome ids whose exact combination history is blanked (as for an unseen pair);
    ``hide_mixin``: outcome id -> a mixin whose own history is blanked for that row (unseen mixin).
    """
    df = outcomes.select("outcome_id", "combination", "mixins", "node_type", "observed_at", "passed")
    w = weights if weights is not None else pl.Series(np.ones(df.height))
    df = df.with_columns(w=w.cast(pl.Float64)).with_columns(ws=pl.col("w") * pl.col("passed").cast(pl.Float64))
    out = df.select("outcome_id", "combination", "node_type", "observed_at")
    pair = _prior_stats(df, ["combination", "node_type"], "pair")
    combo = _prior_stats(df, ["combination"], "combo")
    node = _prior_stats(df, ["node_type"], "node")
    out = (out.join(pair, on=["combination", "node_type", "observed_at"], how="left")
           .join(combo, on=["combination", "observed_at"], how="left")
           .join(node, on=["node_type", "observed_at"], how="left"))
    ex = df.explode("mixins").rename({"mixins": "mixin"})
    m_all = _prior_stats(ex, ["mixin"], "m")
    m_node = _prior_stats(ex, ["mixin", "node_type"], "mn")
    per_m = (ex.select("outcome_id", "mixin", "node_type", "observed_at")
             .join(m_all, on=["mixin", "observed_at"], how="left")
             .join(m_node, on=["mixin", "node_type", "observed_at"], how="left"))
    if hide_mixin:
        hidden = pl.DataFrame({"outcome_id": list(hide_mixin), "mixin": list(hide_mixin.values()), "_hide": True},
                              schema={"outcome_id": pl.Int64, "mixin": pl.String, "_hide": pl.Boolean})
        per_m = (per_m.join(hidden, on=["outcome_id", "mixin"], how="left")
                 .with_columns(*(pl.when(pl.col("_hide")).then(0.0).otherwise(pl.col(c)).alias(c)
                                 for c in ("m_n", "m_s", "mn_n", "mn_s"))).drop("_hide"))
    per_m = (per_m.with_columns(pl.when(pl.col("m_n") > 0).then(_rate_expr("m")).alias("m_rate"),
                                pl.when(pl.col("mn_n") > 0).then(_rate_expr("mn")).alias("mn_rate"))
             .group_by("outcome_id")
             .agg(pl.col("m_rate").min().alias("h_mixin_min_rate"), pl.col("m_rate").mean().alias("h_mixin_mean_rate"),
                  pl.col("m_n").min().alias("h_mixin_min_n"), (pl.col("m_n") == 0).sum().alias("h_mixin_unseen"),
                  pl.col("mn_rate").min().alias("h_mixin_node_min_rate"),
                  pl.col("mn_rate").mean().alias("h_mixin_node_mean_rate")))
    out = out.join(per_m, on="outcome_id", how="left")
    # sub-pairs of larger sets: their own exact history (pairs: the pair itself)
    sub = _subpair_history(df)
    out = out.join(sub, on="outcome_id", how="left")
    out = out.with_columns(h_pair_n=pl.col("pair_n"), h_pair_rate=_rate_expr("pair"), h_combo_n=pl.col("combo_n"),
                           h_combo_rate=_rate_expr("combo"), h_node_rate=_rate_expr("node"))
    masked = set(mask_rows or ()) | set(hide_mixin or ())
    if masked:
        hide = pl.col("outcome_id").is_in(sorted(masked))
        out = out.with_columns(
            *(pl.when(hide).then(0.0).otherwise(pl.col(c)).alias(c) for c in ("h_pair_n", "h_combo_n")),
            *(pl.when(hide).then(None).otherwise(pl.col(c)).alias(c) for c in ("h_pair_rate", "h_combo_rate")),
            pl.when(hide & (pl.col("combination").str.count_matches(r"\+") == 1)).then(None)
            .otherwise(pl.col("h_subpair_min_rate")).alias("h_subpair_min_rate"))
    # an unobserved key has no rate (the smoothed prior would otherwise pose as a measurement)
    out = out.with_columns(
        pl.when(pl.col("h_pair_n") > 0).then(pl.col("h_pair_rate")).otherwise(None).alias("h_pair_rate"),
        pl.when(pl.col("h_combo_n") > 0).then(pl.col("h_combo_rate")).otherwise(None).alias("h_combo_rate"))
    out = out.with_columns(
        h_pair_post=(pl.when(pl.col("h_pair_n") > 0).then(pl.col("pair_s")).otherwise(0.0)
                     + POST_STRENGTH * pl.col("h_node_rate")) / (pl.col("h_pair_n") + POST_STRENGTH))
    out = out.with_columns(hb_pair_s=pl.when(pl.col("h_pair_n") > 0).then(pl.col("pair_s")).otherwise(0.0),
                           hb_node_n=pl.col("node_n"), hb_node_s=pl.col("node_s"))
    return out.select("outcome_id", *HIST_COLS, *BASELINE_COLS)


def _subpair_history(df: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for oid, mixins, nt, ts in df.select("outcome_id", "mixins", "node_type", "observed_at").iter_rows():
        for a, b in itertools.combinations(sorted(mixins), 2):
            rows.append((oid, combination_key([a, b]), nt, ts))
    if not rows:
        return pl.DataFrame(schema={"outcome_id": pl.Int64, "h_subpair_min_rate": pl.Float64})
    sp = pl.DataFrame(rows, schema={"outcome_id": pl.Int64, "combination": pl.String, "node_type": pl.String,
                                    "observed_at": df.schema["observed_at"]}, orient="row")
    pairs_only = df.filter(pl.col("combination").str.count_matches(r"\+") == 1)
    # inclusive running totals per key and instant; joined to the latest instant strictly before t
    stats = (pairs_only.group_by(["combination", "node_type", "observed_at"])
             .agg(pl.col("w").sum().alias("_n"), pl.col("ws").sum().alias("_s")).sort("observed_at")
             .with_columns(pl.col("_n").cum_sum().over(["combination", "node_type"]).alias("sp_n"),
                           pl.col("_s").cum_sum().over(["combination", "node_type"]).alias("sp_s"))
             .drop("_n", "_s"))
    joined = sp.sort("observed_at").join_asof(stats, on="observed_at", by=["combination", "node_type"],
                                              strategy="backward", allow_exact_matches=False,
                                              check_sortedness=False)
    joined = joined.with_columns(
        pl.when(pl.col("sp_n").is_null() | (pl.col("sp_n") == 0)).then(None)
        .otherwise(_rate_expr("sp")).alias("r"))
    return joined.group_by("outcome_id").agg(pl.col("r").min().alias("h_subpair_min_rate"))
