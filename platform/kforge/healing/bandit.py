"""Fix-strategy selection: Thompson sampling over strategies, per error class (the context).

Each (error class, strategy) has a Beta posterior; its prior borrows the strategy's success
counts over all classes (``prior_weight`` pseudo-observations), so a new class starts from what
the strategy does elsewhere. :func:`replay` simulates the policy on recorded outcomes and reports
regret against always choosing the best strategy of the class (hindsight) and against random.

:meth:`ThompsonBandit.to_state` / :meth:`ThompsonBandit.from_state` turn the posteriors into plain
JSON counts (what the registered ``kforge-healing-bandit`` holds, see :mod:`kforge.healing.json_pyfunc`);
:func:`policy_success` scores the greedy policy (highest posterior mean) on held-out errors;
:func:`rank_strategies` is what ``kforge healing explain`` serves: the candidate strategies of an
error class by posterior mean, with the number of recorded outcomes behind each.
"""

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ThompsonBandit:
    prior_weight: float = 2.0
    seed: int = 0
    counts: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0, 0.0]))
    totals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0, 0.0]))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _posterior(self, context: str, arm: str) -> tuple[float, float]:
        s, f = self.totals[arm]
        rate = (s + 1.0) / (s + f + 2.0)
        cs, cf = self.counts[(context, arm)]
        return 1.0 + self.prior_weight * rate + cs, 1.0 + self.prior_weight * (1 - rate) + cf

    def choose(self, context: str, arms: Sequence[str]) -> str:
        draws = {a: self.rng.betavariate(*self._posterior(context, a)) for a in arms}
        return max(draws, key=draws.__getitem__)

    def mean(self, context: str, arm: str) -> float:
        a, b = self._posterior(context, arm)
        return a / (a + b)

    def observations(self, context: str, arm: str) -> int:
        """Recorded outcomes of ``arm`` on ``context`` (the class-specific part of the posterior)."""
        s, f = self.counts.get((context, arm), (0.0, 0.0))
        return int(s + f)

    def arms_seen(self, context: str) -> list[str]:
        """The arms with at least one recorded outcome on ``context``, by name."""
        return sorted(a for (c, a), (s, f) in self.counts.items() if c == context and s + f)

    def update(self, context: str, arm: str, success: bool) -> None:
        self.counts[(context, arm)][0 if success else 1] += 1
        self.totals[arm][0 if success else 1] += 1

    def fit(self, outcomes: Sequence[dict[str, Any]]) -> "ThompsonBandit":
        for o in outcomes:
            self.update(str(o["error_class"]), str(o["strategy"]), bool(o["success"]))
        return self

    def best(self, context: str, arms: Sequence[str]) -> str:
        """The arm with the highest posterior mean (ties: the first by name): what kforge recommends."""
        return max(sorted(arms), key=lambda a: self.mean(context, a))

    def to_state(self) -> dict[str, Any]:
        """The posteriors as JSON-ready counts (no pickle)."""
        return {"kind": "bandit", "prior_weight": self.prior_weight,
                "counts": [[c, a, s, f] for (c, a), (s, f) in sorted(self.counts.items()) if s or f],
                "totals": {a: [s, f] for a, (s, f) in sorted(self.totals.items()) if s or f}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "ThompsonBandit":
        b = cls(prior_weight=float(state["prior_weight"]))
        for c, a, s, f in state["counts"]:
            b.counts[(str(c), str(a))] = [float(s), float(f)]
        for a, (s, f) in state["totals"].items():
            b.totals[str(a)] = [float(s), float(f)]
        return b


@dataclass(frozen=True)
class Ranked:
    strategy: str
    posterior_mean: float | None    # None when no bandit ranked it (static order)
    observations: int               # recorded outcomes of the strategy on this error class


def rank_strategies(error_class: str, rule_strategies: Sequence[str], generic: str,
                    bandit: ThompsonBandit | None) -> list[Ranked]:
    """The candidate strategies of ``error_class``: the matched rule's, the generic one and any other
    the bandit has outcomes for on this class. With a bandit: by posterior mean (ties: static order);
    without: the static order (the rule's list, then the generic strategy)."""
    static = list(dict.fromkeys((*rule_strategies, generic)))
    if bandit is None:
        return [Ranked(s, None, 0) for s in static]
    arms = static + [a for a in bandit.arms_seen(error_class) if a not in static]
    order = sorted(range(len(arms)), key=lambda i: (-bandit.mean(error_class, arms[i]), i))
    return [Ranked(arms[i], bandit.mean(error_class, arms[i]), bandit.observations(error_class, arms[i])) for i in order]


def arms_by_error(outcomes: Sequence[dict[str, Any]]) -> dict[str, tuple[str, dict[str, bool]]]:
    """error id -> (error class, strategy -> recorded success), for errors with >= 2 tried strategies."""
    table: dict[str, dict[str, bool]] = defaultdict(dict)
    cls: dict[str, str] = {}
    for o in outcomes:
        table[str(o["error_id"])][str(o["strategy"])] = bool(o["success"])
        cls[str(o["error_id"])] = str(o["error_class"])
    return {e: (cls[e], arms) for e, arms in sorted(table.items()) if len(arms) >= 2}


def policy_success(choose: Callable[[str, list[str]], str], errors: dict[str, tuple[str, dict[str, bool]]]) -> float:
    """Mean recorded success of the strategy ``choose(error_class, tried strategies)`` picks, per error."""
    if not errors:
        return float("nan")
    return sum(arms[choose(c, sorted(arms))] for c, arms in errors.values()) / len(errors)


def random_success(errors: dict[str, tuple[str, dict[str, bool]]]) -> float:
    """Expected success of a uniform choice among the tried strategies."""
    if not errors:
        return float("nan")
    return sum(sum(arms.values()) / len(arms) for _, arms in errors.values()) / len(errors)


def static_rule_chooser(rule_strategies: dict[str, Sequence[str]], generic: str) -> Callable[[str, list[str]], str]:
    """The static policy: the matched rule's first listed strategy that was tried, else the generic one,
    else the first tried strategy by name."""

    def choose(error_class: str, arms: list[str]) -> str:
        for s in (*rule_strategies.get(error_class, ()), generic):
            if s in arms:
                return s
        return arms[0]

    return choose


def replay(outcomes: Sequence[dict[str, Any]], steps: int = 2000, seeds: Sequence[int] = (0, 1, 2, 3, 4)) -> dict[str, float]:
    """Replay recorded outcomes: each step draws an error (with >= 2 tried strategies), the policy
    picks one of them and receives that recorded outcome."""
    table: dict[str, dict[str, bool]] = defaultdict(dict)
    cls: dict[str, str] = {}
    for o in outcomes:
        table[o["error_id"]][o["strategy"]] = bool(o["success"])
        cls[o["error_id"]] = str(o["error_class"])
    errors = [e for e, arms in table.items() if len(arms) >= 2]
    if not errors:
        return {"errors": 0.0}
    # always-best: the strategy with the highest success rate in the error's class (in hindsight)
    rate: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for e in errors:
        for a, ok in table[e].items():
            rate[(cls[e], a)][0] += int(ok)
            rate[(cls[e], a)][1] += 1
    best = {e: max(table[e], key=lambda a, e=e: rate[(cls[e], a)][0] / rate[(cls[e], a)][1]) for e in errors}
    res: dict[str, list[float]] = defaultdict(list)
    for seed in seeds:
        rng = random.Random(1000 + seed)
        bandit = ThompsonBandit(seed=seed)
        r_ts = r_rand = r_best = 0.0
        for _ in range(steps):
            e = rng.choice(errors)
            arms = sorted(table[e])
            a = bandit.choose(cls[e], arms)
            ok = table[e][a]
            bandit.update(cls[e], a, ok)
            r_ts += ok
            r_rand += sum(table[e].values()) / len(arms)     # expected reward of a uniform choice
            r_best += table[e][best[e]]
        res["thompson"].append(r_ts / steps)
        res["random"].append(r_rand / steps)
        res["always_best"].append(r_best / steps)
        res["regret_thompson"].append(r_best - r_ts)
        res["regret_random"].append(r_best - r_rand)
    out = {k: sum(v) / len(v) for k, v in res.items()}
    out.update({"errors": float(len(errors)), "steps": float(steps)})
    return out
