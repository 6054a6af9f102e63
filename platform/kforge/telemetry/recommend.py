""""What to do" when an OOM is forecast: compact, reclaim, kill the largest process, or nothing,
chosen by simulated outcome. Each action is applied to forks of the running simulation that play
``futures`` imagined futures (fresh draws of the same workload mix from now on, never the run's real
future: :meth:`MemorySim.imagined`) for ``lookahead_s``; the action with the lowest mean cost wins (an
OOM kill costs 100, a chosen kill 30 plus the share of memory lost, compaction its stall, reclaim the
share of page cache dropped). Every action is judged on the same imagined futures.

:func:`closed_loop` runs a workload with the forecaster watching it and a strategy acting on
alarms, so the recommender can be compared with fixed strategies on held-out runs.
"""

from collections.abc import Callable
from typing import Any

import pandas as pd
import polars as pl

from kforge.telemetry.features import FEATURES, window_features
from kforge.telemetry.memsim import SAMPLE_SCHEMA, SAMPLE_TICKS, MemorySim
from kforge.telemetry.workloads import TICK_S, make_workload

ACTIONS = ("nothing", "compact", "reclaim", "kill_largest")
OOM_COST = 100.0
KILL_COST = 30.0


def apply_action(sim: MemorySim, action: str) -> float:
    """Apply ``action`` now; returns its direct cost."""
    n = sim.buddy.n_pages
    if action == "compact":
        moved = sim.compact()
        return 0.5 + 5.0 * moved / n
    if action == "reclaim":
        cache = sum(p for p, s in zip(sim.pages, sim.w.streams, strict=True) if s.kind == "cache")
        got = sim.reclaim(sim.buddy.free_pages + cache // 2, direct=True)
        return 10.0 * got / n
    if action == "kill_largest":
        g = sim.largest_killable()
        if g is None:
            return 0.0
        return KILL_COST + 20.0 * sim.kill(g, "recommended_kill") / n
    if action != "nothing":
        raise ValueError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
    return 0.0


FUTURES = 2
FUTURE_SEED_BASE = 1_000_003   # imagined futures' seeds: far from any run's own seed, one per (run, tick, draw)


def future_seeds(sim: MemorySim, futures: int = FUTURES) -> list[int]:
    """Seeds of the imagined futures at this moment (deterministic in the run and the tick; never the run's own)."""
    base = FUTURE_SEED_BASE + 7919 * (sim.w.seed % 100_000) + 31 * sim.tick
    return [s for s in (base + k for k in range(futures + 1)) if s != sim.w.seed][:futures]


def simulate_outcomes(sim: MemorySim, lookahead_s: float = 20.0,
                      futures: int = FUTURES) -> dict[str, dict[str, float]]:
    """Mean cost and OOM kills of every action over the next ``lookahead_s``, on ``futures`` imagined
    futures (the same ones for every action)."""
    if futures < 1:
        raise ValueError(f"futures must be at least 1, got {futures}")
    horizon = sim.tick + int(lookahead_s / TICK_S)
    worlds = [sim.imagined(seed) for seed in future_seeds(sim, futures)]
    out = {}
    for action in ACTIONS:
        costs, kills = [], []
        for world in worlds:
            f = world.fork()
            before = f.oom_count()
            cost = apply_action(f, action)
            f.run_until(horizon)
            ooms = f.oom_count() - before
            costs.append(cost + OOM_COST * ooms)
            kills.append(float(ooms))
        out[action] = {"ooms": sum(kills) / len(kills), "cost": sum(costs) / len(costs)}
    return out


def recommend(sim: MemorySim, lookahead_s: float = 20.0) -> tuple[str, dict[str, dict[str, float]]]:
    outcomes = simulate_outcomes(sim, lookahead_s)
    best = min(ACTIONS, key=lambda a: (outcomes[a]["cost"], ACTIONS.index(a)))
    return best, outcomes


def closed_loop(workload: str, seed: int, duration_s: float, scorer: Callable[[pd.DataFrame], float],
                threshold: float, strategy: str, cooldown_s: float = 10.0, lookahead_s: float = 20.0) -> dict[str, Any]:
    """Run a workload; each second the forecaster scores the latest window (a one-row frame with
    the :data:`FEATURES` columns, so a model fitted on named features sees names), and on an alarm
    (at most once per ``cooldown_s``) the strategy acts: ``none``, a fixed action, or ``recommender``."""
    sim = MemorySim(make_workload(workload, seed, duration_s), run_id=f"{workload}-{seed}-{strategy}")
    cost = 0.0
    actions: dict[str, int] = {a: 0 for a in ACTIONS}
    last_act = -1e9
    alarms = 0
    while sim.tick < sim.w.n_ticks:
        sim.run_until(sim.tick + SAMPLE_TICKS)
        window = pl.DataFrame(sim.samples[-31:], schema=SAMPLE_SCHEMA, orient="row")
        x = window_features(window).select(FEATURES).tail(1).to_pandas()
        if scorer(x) < threshold:
            continue
        alarms += 1
        now = sim.tick * TICK_S
        if strategy == "none" or now - last_act < cooldown_s:
            continue
        action = recommend(sim, lookahead_s)[0] if strategy == "recommender" else strategy
        cost += apply_action(sim, action)
        actions[action] += 1
        last_act = now
    ooms = sim.oom_count()
    return {"workload": workload, "seed": seed, "strategy": strategy, "oom_kills": ooms, "alarms": alarms,
            "cost": cost + OOM_COST * ooms, **{f"n_{a}": n for a, n in actions.items()}}


FIXED = ("compact", "reclaim", "kill_largest")
STRATEGIES = ("none", *FIXED, "recommender")
