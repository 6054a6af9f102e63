"""The exercise harness: compose mixins onto a node type, run scenarios, record what happened.

Outcomes come from running the composed classes: a trial passes when no request crashed, the
class could be built (method resolution order), every lifecycle hook in the MRO ran (lifecycle
scenario), and the node's and every mixin's own contract (``invariants``) held afterwards. The
first violated contract is the trial's conflict reason.

Example::

    cat = load_catalogue()
    run_trial(cat, ["Caching", "Authorization"], "COMPUTE", "auth", seed=1).conflict_reason
    # -> 'authorization_bypass' (cache in front of the authorisation check)
"""

import asyncio
import itertools
import random
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from kforge.mixins.catalogue import Catalogue
from kforge.mixins.components.base import EXPECTED_ERRORS, NodeBase
from kforge.mixins.scenarios import SCENARIOS, Scenario, build

HARNESS_VERSION = "1"
HOOKS = ("on_start", "on_stop")


@dataclass
class Trial:
    mixins: list[str]              # canonical, sorted
    order: list[str]               # composition order (first = outermost)
    node_type: str
    scenario: str
    mode: str
    seed: int
    passed: bool
    conflict_reason: str | None
    detail: str
    duration_ms: float


def compose(cat: Catalogue, order: list[str], node_type: str) -> type[NodeBase]:
    """``class Composed(*mixins, Node)``; raises TypeError on an inconsistent MRO."""
    bases = tuple(cat.mixins[m] for m in order) + (cat.nodes[node_type],)
    return type("_".join(order) + "_" + node_type, bases, {})


def _crash_reason(exc: BaseException) -> str:
    if "on_start" in str(exc):
        return "lifecycle_hook_skipped"
    if isinstance(exc, AttributeError):
        return "uninitialised_state"
    return f"crash:{type(exc).__name__}"


class _HookTracer:
    """Records which functions ran (sys.setprofile), to see whether every hook in the MRO ran."""

    def __init__(self) -> None:
        self.codes: set[Any] = set()

    def __enter__(self) -> "_HookTracer":
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_name in HOOKS:
            self.codes.add(frame.f_code)


def _call(node: Any, hook: str, tracer: _HookTracer | None) -> None:
    if tracer is None:
        getattr(node, hook)()
        return
    with tracer:
        getattr(node, hook)()


def _run_requests(node: Any, sc: Scenario, loop: asyncio.AbstractEventLoop) -> None:
    env = node.env

    def record(rid: int, fn: Any) -> None:
        try:
            env.results[rid] = ("ok", fn())
        except EXPECTED_ERRORS as exc:
            env.results[rid] = ("error", type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - a crash is an outcome
            env.results[rid] = ("crash", _crash_reason(exc) + f" ({exc})")

    if sc.mode == "sync":
        for r in sc.requests:
            record(r.rid, lambda r=r: node.process(r))
        return

    async def one(r: Any) -> None:
        try:
            env.results[r.rid] = ("ok", await node.aprocess(r))
        except EXPECTED_ERRORS as exc:
            env.results[r.rid] = ("error", type(exc).__name__)
        except Exception as exc:  # noqa: BLE001
            env.results[r.rid] = ("crash", _crash_reason(exc) + f" ({exc})")

    async def main() -> None:
        if sc.concurrent:
            await asyncio.gather(*(one(r) for r in sc.requests))
        else:
            for r in sc.requests:
                await one(r)

    loop.run_until_complete(main())


def _judge(cls: type, node: Any, sc: Scenario, tracer: _HookTracer | None) -> tuple[str | None, str]:
    env = node.env
    crashes = [v for s, v in env.results.values() if s == "crash"]
    if crashes:
        return crashes[0].split(" (", 1)[0], crashes[0]
    if tracer is not None:
        for hook in HOOKS:
            for c in cls.__mro__:
                fn = vars(c).get(hook)
                if fn is not None and getattr(fn, "__code__", None) not in tracer.codes:
                    return "lifecycle_hook_skipped", f"{c.__name__}.{hook} never ran"
    for reason in node.node_invariants(env, sc.requests):
        return reason, f"{node.node_type} node contract"
    for c in cls.__mro__:
        inv = vars(c).get("invariants")
        if inv is not None:
            for reason in inv(node, env, sc.requests):
                return reason, f"{c.__name__} contract"
    return None, ""


def run_trial(cat: Catalogue, order: list[str], node_type: str, scenario: str, seed: int,
              loop: asyncio.AbstractEventLoop | None = None) -> Trial:
    """Compose ``order`` onto ``node_type`` and run one scenario."""
    t0 = time.perf_counter()
    sc = build(scenario, seed)
    own_loop = loop is None
    loop = loop or asyncio.new_event_loop()
    try:
        reason, detail = _execute(cat, order, node_type, sc, loop)
    finally:
        if own_loop:
            loop.close()
    return Trial(sorted(order), list(order), node_type, scenario, sc.mode, seed, reason is None, reason, detail,
                 (time.perf_counter() - t0) * 1000)


def run_scenario(cat: Catalogue, order: list[str], node_type: str, sc: Scenario) -> tuple[str | None, str]:
    """Run a hand-built scenario; returns (conflict reason or None, detail)."""
    loop = asyncio.new_event_loop()
    try:
        return _execute(cat, order, node_type, sc, loop)
    finally:
        loop.close()


def _execute(cat: Catalogue, order: list[str], node_type: str, sc: Scenario,
             loop: asyncio.AbstractEventLoop) -> tuple[str | None, str]:
    try:
        cls = compose(cat, order, node_type)
    except TypeError as exc:
        return "mro_conflict", str(exc)
    env = sc.env()
    tracer = _HookTracer() if sc.check_lifecycle else None
    try:
        node = cls(env)
        _call(node, "on_start", tracer)
        _run_requests(node, sc, loop)
        _call(node, "on_stop", tracer)
    except Exception as exc:  # noqa: BLE001 - construction or hook failure is an outcome
        return _crash_reason(exc), f"{type(exc).__name__}: {exc}"
    try:
        return _judge(cls, node, sc, tracer)
    finally:
        for t in env.threads:
            t.join(0.5)


def plan_trials(cat: Catalogue, *, trials_per_pair: int, n_sets: int, trials_per_set: int, seed: int,
                set_size: int = 3, node_types: list[str] | None = None,
                mixins: list[str] | None = None) -> list[tuple[list[str], str, str, int]]:
    """(composition order, node type, scenario, seed) for every pair and a random sample of sets."""
    rng = random.Random(seed)
    names = sorted(mixins or cat.mixins)
    nodes = node_types or sorted(cat.nodes)
    plan = []
    for pair in itertools.combinations(names, 2):
        for nt in nodes:
            for _ in range(trials_per_pair):
                order = list(pair)
                rng.shuffle(order)
                plan.append((order, nt, rng.choice(SCENARIOS), rng.randrange(2**31)))
    sets = list(itertools.combinations(names, set_size))
    for combo in rng.sample(sets, min(n_sets, len(sets))):
        nt = rng.choice(nodes)
        for _ in range(trials_per_set):
            order = list(combo)
            rng.shuffle(order)
            plan.append((order, nt, rng.choice(SCENARIOS), rng.randrange(2**31)))
    rng.shuffle(plan)
    return plan


def exercise(cat: Catalogue, *, trials_per_pair: int = 8, n_sets: int = 60, trials_per_set: int = 6,
             seed: int = 0, node_types: list[str] | None = None, mixins: list[str] | None = None,
             started_at: datetime | None = None) -> pl.DataFrame:
    """Run the harness; one row per trial (see :func:`outcomes.OUTCOME_SCHEMA`)."""
    from kforge.mixins.outcomes import trials_frame

    plan = plan_trials(cat, trials_per_pair=trials_per_pair, n_sets=n_sets, trials_per_set=trials_per_set,
                       seed=seed, node_types=node_types, mixins=mixins)
    loop = asyncio.new_event_loop()
    start = started_at or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    try:
        for i, (order, nt, scenario, s) in enumerate(plan):
            trial = run_trial(cat, order, nt, scenario, s, loop)
            rows.append({**asdict(trial), "observed_at": start + timedelta(milliseconds=i)})
    finally:
        loop.close()
    return trials_frame(rows, source="harness")
