"""Scenario suites: what a trial feeds a composed node (requests, failures, timing, sync/async).

Each scenario is drawn from a seeded RNG so a trial is reproducible from (scenario, seed).
"""

import random
from dataclasses import dataclass, field

from kforge.mixins.components.base import Env, FailurePlan, Request

SCENARIOS = ("sync_basic", "sync_failures", "async_concurrent", "async_failures", "auth",
             "slow_sync", "slow_async", "lifecycle")
FAIL_POINTS = ("before", "after", "between", "commit")


@dataclass
class Scenario:
    name: str
    mode: str                      # "sync" | "async"
    concurrent: bool
    requests: list[Request]
    env_kwargs: dict = field(default_factory=dict)
    check_lifecycle: bool = False

    def env(self) -> Env:
        return Env(**self.env_kwargs)


def _requests(rng: random.Random, n: int, repeat: bool) -> list[Request]:
    out = [Request(key=rng.choice("ab"), value=rng.randint(1, 9), rid=i) for i in range(n)]
    if repeat and n >= 2:
        first = out[0]
        out[-1] = Request(key=first.key, value=first.value, rid=n - 1)
    return out


def _failures(rng: random.Random) -> FailurePlan:
    plan: dict[str, set[int]] = {}
    for _ in range(rng.randint(1, 2)):
        plan.setdefault(rng.choice(FAIL_POINTS), set()).add(rng.randint(0, 2))
    return FailurePlan(plan)


def build(name: str, seed: int) -> Scenario:
    """The scenario ``name`` instantiated with ``seed``."""
    rng = random.Random(f"{name}:{seed}")
    if name == "sync_basic":
        reqs = _requests(rng, 3, repeat=rng.random() < 0.7)
        if rng.random() < 0.4:
            reqs.append(Request(key="a", value=-rng.randint(1, 5), rid=len(reqs)))
        return Scenario(name, "sync", False, reqs)
    if name == "sync_failures":
        return Scenario(name, "sync", False, _requests(rng, 3, repeat=rng.random() < 0.5),
                        {"failures": _failures(rng)})
    if name == "async_concurrent":
        return Scenario(name, "async", True, _requests(rng, rng.randint(2, 4), repeat=rng.random() < 0.5),
                        {"delay_s": 0.0})
    if name == "async_failures":
        return Scenario(name, "async", True, _requests(rng, rng.randint(2, 3), repeat=False),
                        {"failures": _failures(rng)})
    if name == "auth":
        base = Request(key=rng.choice("ab"), value=rng.randint(1, 9), rid=0)
        reqs = [base, Request(key=base.key, value=base.value, user="mallory", rid=1)]
        if rng.random() < 0.5:
            reqs.append(Request(key="b", value=rng.randint(1, 9), user="mallory", rid=2))
        return Scenario(name, "sync", False, reqs)
    if name in ("slow_sync", "slow_async"):
        return Scenario(name, name.removeprefix("slow_"), False, _requests(rng, rng.randint(1, 2), repeat=False),
                        {"delay_s": 0.004, "timeout_s": 0.0015})
    if name == "lifecycle":
        return Scenario(name, "sync", False, _requests(rng, 2, repeat=False), check_lifecycle=True)
    raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
