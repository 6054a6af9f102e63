"""The strategy bandit and the fix-effectiveness model through the release path.

Both hold out the fix outcomes of the same programs (by :func:`kforge.registry.heldout.in_test` on
the ``program`` key), train on the rest and are registered as JSON-state pyfuncs
(:mod:`kforge.healing.json_pyfunc`):

* ``kforge-healing-bandit``: primary metric ``heldout_success_rate``, the recorded success of the
  strategy it recommends (highest posterior mean) on each held-out error with >= 2 tried strategies;
  baseline ``random`` (uniform among the tried strategies, a blocking gate) and ``static_rule`` (the
  matched rule's first listed strategy, else ``guard-try``; a WARN-only gate);
* ``kforge-healing-effectiveness``: primary metric ``heldout_brier`` (lower is better) of P(fix
  works) on the held-out outcomes; baseline ``constant`` (the old 0.7).

The scores table ``healing_strategy_scores`` holds both models' numbers per (class, strategy).

Serving: :func:`champion_bandit` loads ``kforge-healing-bandit@champion`` (its JSON state) and
:func:`strategy_ranking` turns it into what ``kforge healing explain`` prints: the error class's
strategies by posterior mean, or the static rule order when no bandit is champion.
"""

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from kforge.errors import InputError
from kforge.healing.bandit import (
    Ranked,
    ThompsonBandit,
    arms_by_error,
    policy_success,
    random_success,
    rank_strategies,
    replay,
    static_rule_chooser,
)
from kforge.healing.baselines import CONSTANT_FIX_SUCCESS
from kforge.healing.config import HealingConfig, HealingRelease
from kforge.healing.effectiveness import FixEffectiveness, metrics
from kforge.healing.fixes import GENERIC
from kforge.healing.json_pyfunc import INPUT_COLUMNS, STATE_FILE, read_state, save_state_model
from kforge.healing.rules import RuleEngine
from kforge.healing.specs import BANDIT, CONSTANT, EFFECTIVENESS, static_rule_check
from kforge.registry.gates import SPLIT_HOLDS, Check, size_check
from kforge.registry.heldout import stable_group_split
from kforge.registry.release import Candidate, Scored, release
from kforge.registry.tracking import Tracker
from kforge.storage import Warehouse

Outcomes = list[dict[str, Any]]


def split_outcomes(outcomes: Sequence[dict[str, Any]], share: float, salt: str) -> tuple[Outcomes, Outcomes, Check]:
    """(train, test, ``split_holds``): whole programs by a hash of the program name."""
    keys = [str(o.get("program") or o["error_id"]) for o in outcomes]
    tr, te = stable_group_split(keys, share, salt)
    tr_g, te_g = {keys[i] for i in tr}, {keys[i] for i in te}
    overlap = len(tr_g & te_g)
    check = Check(SPLIT_HOLDS, overlap == 0 and bool(tr_g) and bool(te_g),
                  f"{len(te_g)} held-out programs, {len(tr_g)} training programs, {overlap} in both",
                  {"test_groups": float(len(te_g)), "train_groups": float(len(tr_g)),
                   "overlapping_groups": float(overlap)})
    return [outcomes[i] for i in tr], [outcomes[i] for i in te], check


def outcomes_table(outcomes: Sequence[dict[str, Any]]) -> pl.DataFrame:
    cols = ("error_id", "program", "error_class", "exc_type", "strategy")
    return pl.DataFrame({**{c: [str(o.get(c) or "") for o in outcomes] for c in cols},
                         "success": [bool(o["success"]) for o in outcomes]})


def _frame(rows: Sequence[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame({c: [str(r.get(c) or "") for r in rows] for c in INPUT_COLUMNS})


def _load(model_dir: Path) -> Any:
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(model_dir))


def _saver(state: dict[str, Any]) -> Callable[[Path], None]:
    def save(out: Path) -> None:
        save_state_model(state, out)

    return save


def _means_chooser(means: dict[tuple[str, str], float]) -> Callable[[str, list[str]], str]:
    return lambda c, arms: max(sorted(arms), key=lambda a: means[(c, a)])


def bandit_candidate(outcomes: Outcomes, train: Outcomes, test: Outcomes, split: Check, config: HealingConfig,
                     rules: RuleEngine) -> tuple[Candidate, ThompsonBandit, dict[str, float]]:
    bandit = ThompsonBandit(prior_weight=config.prior_weight).fit(train)
    errors = arms_by_error(test)
    keys = sorted(errors)
    score = policy_success(bandit.best, errors)
    static = static_rule_chooser({r.id: r.strategies for r in rules.rules}, GENERIC)
    baselines = {"random": random_success(errors), "static_rule": policy_success(static, errors)}
    rep = replay(test, steps=config.replay_steps) if errors else {}
    m = {"heldout_success_rate": score, "heldout_errors": float(len(errors)), "train_outcomes": float(len(train)),
         **{f"baseline_{k}_success_rate": v for k, v in baselines.items()},
         **{f"heldout_replay_{k}": v for k, v in rep.items()}}
    pairs = [{"error_class": c, "strategy": a} for c, arms in errors.values() for a in sorted(arms)]

    def score_registered(model_dir: Path) -> Scored:
        if not pairs:
            return Scored(float("nan"), keys)
        means = _load(model_dir).predict(_frame(pairs))["posterior_mean"].tolist()
        chooser = _means_chooser({(p["error_class"], p["strategy"]): float(v) for p, v in zip(pairs, means, strict=True)})
        return Scored(policy_success(chooser, errors), keys)

    state = bandit.to_state()
    cand = Candidate(
        BANDIT, train_table=outcomes_table(outcomes), eval_keys=keys, score=score, baselines=baselines,
        checks=[split, size_check(len(keys), BANDIT.min_test_rows),
                static_rule_check(score, baselines["static_rule"])],
        params={"prior_weight": config.prior_weight, "policy": "greedy_posterior_mean", "test_share": config.test_share,
                "salt": config.salt, "replay_steps": config.replay_steps},
        metrics=m, save_model=_saver(state), score_registered=score_registered)
    return cand, bandit, m


def effectiveness_candidate(outcomes: Outcomes, train: Outcomes, test: Outcomes, split: Check,
                            config: HealingConfig) -> tuple[Candidate, FixEffectiveness, dict[str, float]]:
    model = FixEffectiveness().fit(train)
    keys = [f"{o['error_id']}|{o['strategy']}" for o in test]
    y = np.array([float(bool(o["success"])) for o in test])

    def brier(p: np.ndarray) -> float:
        return float(np.mean((p - y) ** 2)) if len(y) else float("nan")

    p = model.predict(test) if test else np.zeros(0)
    score, base = brier(p), brier(np.full(len(y), CONSTANT_FIX_SUCCESS))
    by: dict[str, list[float]] = {}
    for o in train:
        by.setdefault(str(o["strategy"]), []).append(float(bool(o["success"])))
    prior = float(np.mean([v for vs in by.values() for v in vs])) if by else CONSTANT_FIX_SUCCESS
    rate = np.array([float(np.mean(by[str(o["strategy"])])) if str(o["strategy"]) in by else prior for o in test])
    m = {"heldout_brier": score, "baseline_constant_brier": base, "baseline_strategy_rate_brier": brier(rate),
         "heldout_outcomes": float(len(test)), "train_outcomes": float(len(train))}
    if len(y) and len(set(y.tolist())) == 2:
        m.update({f"heldout_{k}": v for k, v in metrics(y, p).items() if k != "brier"})

    def score_registered(model_dir: Path) -> Scored:
        got = np.asarray(_load(model_dir).predict(_frame(test))["p_fix_works"], dtype=float) if test else np.zeros(0)
        return Scored(brier(got), keys)

    state = model.to_state()
    cand = Candidate(
        EFFECTIVENESS, train_table=outcomes_table(outcomes), eval_keys=keys, score=score, baselines={CONSTANT: base},
        checks=[split, size_check(len(keys), EFFECTIVENESS.min_test_rows)],
        params={"model": "one-hot logistic regression", "C": 1.0, "test_share": config.test_share, "salt": config.salt},
        metrics=m, save_model=_saver(state), score_registered=score_registered)
    return cand, model, m


def release_strategies(tracker: Tracker, wh: Warehouse, outcomes: Outcomes, config: HealingConfig,
                       out: HealingRelease, *,
                       dagster_run_id: str = "") -> None:
    """Release the bandit and/or the effectiveness model (``config.models``) into ``out`` and store
    the scores table."""
    train, test, split = split_outcomes(outcomes, config.test_share, config.salt)
    bandit: ThompsonBandit | None = None
    eff: FixEffectiveness | None = None
    if "bandit" in config.models:
        cand, bandit, out.metrics["bandit"] = bandit_candidate(outcomes, train, test, split, config,
                                                               RuleEngine.default())
        out.bandit = release(tracker, cand, dagster_run_id=dagster_run_id)
    if "effectiveness" in config.models:
        cand, eff, out.metrics["effectiveness"] = effectiveness_candidate(outcomes, train, test, split, config)
        out.effectiveness = release(tracker, cand, dagster_run_id=dagster_run_id)
    pairs = sorted({(str(o["error_class"]), str(o["strategy"]), str(o.get("exc_type", ""))) for o in outcomes})
    rows = [{"error_class": c, "strategy": s, "exc_type": t} for c, s, t in pairs]
    table = pl.DataFrame({
        "error_class": [c for c, _, _ in pairs], "strategy": [s for _, s, _ in pairs],
        "posterior_mean": [bandit.mean(c, s) if bandit else None for c, s, _ in pairs],
        "p_fix_works": eff.predict(rows).tolist() if eff and rows else [None] * len(pairs)},
        schema={"error_class": pl.String, "strategy": pl.String, "posterior_mean": pl.Float64, "p_fix_works": pl.Float64})
    wh.replace("healing_strategy_scores", table)
    out.strategy_scores = table


@dataclass(frozen=True)
class ServedBandit:
    bandit: ThompsonBandit
    version: int


@dataclass(frozen=True)
class StrategyRanking:
    error_class: str
    ranked: list[Ranked]
    source: str          # "bandit" (the champion's posterior) or "static" (the rule order)
    text: str


def champion_bandit(tracker: Tracker) -> ServedBandit | None:
    """``kforge-healing-bandit@champion`` rebuilt from its JSON state; None without a champion."""
    import mlflow.artifacts

    champ = tracker.champion(BANDIT.name)
    if champ is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=f"{champ.source}/data/{STATE_FILE}", dst_path=d,
                                                        tracking_uri=tracker.tracking_uri)
            state = read_state(Path(local))
        except Exception as exc:  # noqa: BLE001 - any failure to read the served model is the user's to know
            raise InputError(f"{BANDIT.name} v{champ.version} (champion) cannot be read: {type(exc).__name__}: {exc}") from None
    return ServedBandit(ThompsonBandit.from_state(state), int(champ.version))


def strategy_ranking(error_class: str, served: ServedBandit | None, rules: RuleEngine | None = None) -> StrategyRanking:
    """The fix strategies for ``error_class`` (a rule id, or "unmatched") as served to the user."""
    rules = rules or RuleEngine.default()
    rule = next((r for r in rules.rules if r.id == error_class), None)
    ranked = rank_strategies(error_class, rule.strategies if rule else (), GENERIC, served.bandit if served else None)
    if served is None:
        head = (f"fix strategies for {error_class}, in the static rule order (no champion {BANDIT.name}; "
                "`kforge healing train` releases one when it passes its gates):")
        body = [f"  {i}. {r.strategy}" for i, r in enumerate(ranked, 1)]
    else:
        head = (f"fix strategies for {error_class}, ranked by the posterior of {BANDIT.name} v{served.version} "
                "(champion): posterior mean P(fix works), n = recorded outcomes on this error class:")
        body = [f"  {i}. {r.strategy:<22} posterior mean {r.posterior_mean:.3f}  n={r.observations}"
                + ("  (prior only)" if r.observations == 0 else "") for i, r in enumerate(ranked, 1)]
    return StrategyRanking(error_class, ranked, "static" if served is None else "bandit", "\n".join([head, *body]))
