"""Grounded explanations of the OOM recommender's state (seed 002's "LLM state inference").

A :class:`State` is what the recommender knows at one moment: memory pressure, the forecast risk
of an OOM kill, the features that contribute most to that risk, and the simulated cost of every
action with the simulator's best one. :func:`facts` writes it as the only text the LLM sees;
:func:`explain` asks the LLM for a short explanation ending in ``action: ...`` and accepts it only
when it is grounded (every number it states appears among the facts' numbers, to the precision it
is stated: :func:`ungrounded_numbers`) and recommends the simulator's best action. Otherwise the
answer is flagged and the explanation falls back to :func:`template_explanation`, built from the
facts alone.

Example::

    state = states_from_simulation(["leak"], [100], duration_s=200, per_run=1)[0]
    ex = explain(state, make_backend(LLMConfig()))
    ex.text, ex.source, ex.ungrounded
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from kforge.errors import InputError
from kforge.llm.base import Backend, GenParams, LLMAnswer, PromptTemplate, ask
from kforge.telemetry.features import FEATURES, window_features, with_heuristic
from kforge.telemetry.memsim import SAMPLE_SCHEMA, SAMPLE_TICKS, MemorySim
from kforge.telemetry.recommend import ACTIONS, recommend
from kforge.telemetry.workloads import make_workload

# the heuristic baseline's terms (kforge.telemetry.features.with_heuristic), as (feature, weight)
_HEURISTIC_TERMS = (("d_free_5", 0.4), ("frag_index", 0.3), ("fail_1", 0.2), ("d_frag_10", 0.1))
RiskFn = Callable[[pl.DataFrame], tuple[float, list[tuple[str, float, float]]]]


@dataclass(frozen=True)
class State:
    """The recommender's view of one machine at one moment."""

    run_id: str
    t_s: float
    pressure: dict[str, float]
    risk: float
    threshold: float
    risk_source: str
    top_features: list[tuple[str, float, float]]          # (feature, value, contribution to the risk)
    outcomes: dict[str, dict[str, float]] = field(default_factory=dict)   # action -> cost, ooms
    best_action: str | None = None
    horizon_s: float = 20.0


def heuristic_risk(feats: pl.DataFrame) -> tuple[float, list[tuple[str, float, float]]]:
    """The heuristic forecaster's score of the last row and each term's share of it."""
    row = with_heuristic(feats).tail(1).to_dicts()[0]
    terms = {"frag_index": 0.3 * float(row["frag_index"] > 0.7), "fail_1": 0.2 * float(row["fail_1"] > 0),
             "d_frag_10": 0.1 * min(max(float(row["d_frag_10"]) * 10, 0.0), 1.0)}
    terms["d_free_5"] = max(float(row["heuristic"]) - sum(terms.values()), 0.0)
    contribs = [(name, float(row[name]), terms[name]) for name, _ in _HEURISTIC_TERMS]
    return float(row["heuristic"]), sorted(contribs, key=lambda c: -c[2])


def forecaster_risk(model: Any) -> RiskFn:
    """A LightGBM forecaster's probability and its per-feature contributions (log-odds, SHAP-style)."""

    def risk(feats: pl.DataFrame) -> tuple[float, list[tuple[str, float, float]]]:
        x = feats.select(FEATURES).tail(1).to_pandas()
        p = float(model.predict_proba(x)[0, 1])
        contrib = model.booster_.predict(x, pred_contrib=True)[0][:-1]
        row = x.iloc[0]
        pairs = [(f, float(row[f]), float(c)) for f, c in zip(FEATURES, contrib, strict=True)]
        return p, sorted(pairs, key=lambda c: -abs(c[2]))

    return risk


def capture(sim: MemorySim, risk_fn: RiskFn = heuristic_risk, threshold: float = 0.5, risk_source: str = "heuristic",
            lookahead_s: float = 20.0, top_k: int = 3, with_outcomes: bool = True) -> State:
    """The state of ``sim`` now (the recommender's simulations run on forks; ``sim`` is not changed)."""
    if not sim.samples:
        raise InputError("the machine has no telemetry yet: run it for a few seconds first")
    window = window_features(pl.DataFrame(sim.samples[-31:], schema=SAMPLE_SCHEMA, orient="row"))
    last = window.tail(1).to_dicts()[0]
    risk, contribs = risk_fn(window)
    pressure = {"free_frac": float(last["free_frac"]), "avail_frac": float(last["avail_frac"]),
                "frag_index": float(last["frag_index"]), "stall_ms_5s": float(last["stall_5"]),
                "alloc_failures_30s": float(last["fail_30"])}
    best, outcomes = recommend(sim, lookahead_s) if with_outcomes else (None, {})
    return State(sim.run_id, float(last["t_s"]), pressure, risk, threshold, risk_source, contribs[:top_k],
                 outcomes, best, lookahead_s)


def states_from_simulation(workloads: list[str], seeds: list[int], duration_s: float = 300.0, per_run: int = 3,
                           threshold: float = 0.5, gap_s: float = 15.0, risk_fn: RiskFn = heuristic_risk,
                           warmup_s: float = 30.0) -> list[State]:
    """Up to ``per_run`` states per run, each where the forecast risk crosses ``threshold`` (at least
    ``gap_s`` apart, none in the first ``warmup_s`` while the 30 s feature window fills): the moments
    the recommender would be asked what to do. Runs are taken seed by seed, workloads interleaved."""
    out: list[State] = []
    for seed in seeds:
        for w in workloads:
            sim = MemorySim(make_workload(w, seed, duration_s), run_id=f"{w}-{seed}")
            taken, last = 0, -1e9
            while sim.tick < sim.w.n_ticks and taken < per_run:
                sim.run_until(sim.tick + SAMPLE_TICKS)
                feats = window_features(pl.DataFrame(sim.samples[-31:], schema=SAMPLE_SCHEMA, orient="row"))
                t = sim.tick * 0.1
                if t < warmup_s or t - last < gap_s or risk_fn(feats)[0] < threshold:
                    continue
                out.append(capture(sim, risk_fn, threshold))
                taken, last = taken + 1, t
    return out


# -- the facts the LLM sees, and the checks of its answer ------------------------------------------

def _n(x: float) -> str:
    """Numbers as the facts state them: 3 decimals at most, no trailing zeros."""
    if not math.isfinite(x):
        return "unknown"
    s = f"{x:.3f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def facts(state: State, include_outcomes: bool = True) -> str:
    """The state as plain lines; every number the explanation may use is written here."""
    p = state.pressure
    lines = [
        f"machine: {state.run_id} at t = {_n(state.t_s)} s",
        f"memory pressure: free {_n(p['free_frac'])} of memory, available (free + page cache) {_n(p['avail_frac'])}, "
        f"fragmentation index {_n(p['frag_index'])}, stall {_n(p['stall_ms_5s'])} ms in the last 5 s, "
        f"{_n(p['alloc_failures_30s'])} allocation failures in the last 30 s",
        f"forecast risk of an OOM kill within {_n(state.horizon_s)} s: {_n(state.risk)} "
        f"(alarm threshold {_n(state.threshold)}, {state.risk_source})",
        "top contributing features: " + "; ".join(f"{f} = {_n(v)} (contribution {_n(c)})"
                                                  for f, v, c in state.top_features),
    ]
    if include_outcomes and state.outcomes:
        lines.append(f"simulated outcome of each action over the next {_n(state.horizon_s)} s: " + "; ".join(
            f"{a}: cost {_n(o['cost'])}, {_n(o['ooms'])} OOM kills" for a, o in state.outcomes.items()))
        lines.append(f"simulator's best action: {state.best_action}")
    return "\n".join(lines)


_NUMBER = re.compile(r"(?<![A-Za-z_\d.])[-+]?\d+(?:\.\d+)?")


def numbers_in(text: str) -> list[str]:
    """Numbers as written in ``text`` (digits inside identifiers such as ``d_free_5`` are not numbers)."""
    return [m.group(0).rstrip(".") for m in _NUMBER.finditer(text)]


def ungrounded_numbers(answer: str, source: str) -> list[str]:
    """The numbers of ``answer`` that no number of ``source`` supports. A number stated with ``k``
    decimals is supported by a source number that rounds to it at ``k`` decimals (``0.78`` by
    ``0.781``), or by a fraction that is it as a percentage (``78%`` by ``0.781``)."""
    known = [float(x) for x in numbers_in(source)]
    bad = []
    for m in _NUMBER.finditer(answer):
        raw = m.group(0).rstrip(".")
        value = float(raw)
        k = len(raw.split(".")[1]) if "." in raw else 0
        pct = answer[m.end():m.end() + 2].lstrip().startswith("%")
        ok = any(abs(round(v, k) - value) < 10 ** -(k + 3) or (pct and abs(round(100 * v, k) - value) < 10 ** -(k + 3))
                 for v in known)
        if not ok:
            bad.append(raw + ("%" if pct else ""))
    return bad


_SYNONYMS = {"kill_largest": r"kill[_ ]largest|kill the (?:largest|biggest)", "compact": r"compact(?:ion)?\b",
             "reclaim": r"reclaim", "nothing": r"\bnothing\b|no action"}


def parse_action(text: str) -> str | None:
    """The action on the answer's last ``action:`` line (None without one: prose that merely names
    actions, such as "the risk of an OOM kill", recommends nothing)."""
    lines = re.findall(r"(?im)^\W*(?:recommended\s+)?action\W*[:=-]\s*(.+)$", text)
    if not lines:
        return None
    hits = [(mm.start(), a) for a, pat in _SYNONYMS.items() for mm in [re.search(pat, lines[-1], flags=re.I)] if mm]
    return min(hits)[1] if hits else None


def template_explanation(state: State) -> str:
    """The fallback: a fixed sentence pattern filled from the facts (grounded by construction)."""
    p = state.pressure
    drivers = ", ".join(f"{f} = {_n(v)}" for f, v, _ in state.top_features[:2])
    text = (f"{state.run_id} at t = {_n(state.t_s)} s: the forecast risk of an OOM kill within {_n(state.horizon_s)} s is "
            f"{_n(state.risk)} (threshold {_n(state.threshold)}); free memory is {_n(p['free_frac'])}, available "
            f"{_n(p['avail_frac'])}, fragmentation {_n(p['frag_index'])}. Main drivers: {drivers}.")
    if state.best_action:
        best = state.outcomes[state.best_action]
        other = "nothing" if state.best_action != "nothing" else min(
            (a for a in state.outcomes if a != "nothing"), key=lambda a: state.outcomes[a]["cost"], default="nothing")
        alt = state.outcomes.get(other, best)
        text += (f" Simulated over the next {_n(state.horizon_s)} s, {state.best_action} costs {_n(best['cost'])} "
                 f"with {_n(best['ooms'])} OOM kills, against {_n(alt['cost'])} with {_n(alt['ooms'])} OOM kills for {other}.")
    return text + f"\naction: {state.best_action or 'unknown'}"


EXPLAIN_TEMPLATE = PromptTemplate(
    "telemetry-explain-v1",
    system="You explain the memory state of a Linux machine to an operator. Use only numbers from the facts.",
    user=("Facts:\n{facts}\n\nIn at most two sentences, explain why the machine is or is not at risk of an OOM kill, "
          "quoting numbers only from the facts. Then write a last line 'action: X' where X is one of "
          "nothing, compact, reclaim, kill_largest."))


@dataclass(frozen=True)
class Explanation:
    text: str
    action: str | None
    source: str                                  # "llm" or "template"
    llm_text: str = ""
    llm_action: str | None = None
    ungrounded: list[str] = field(default_factory=list)
    agrees: bool | None = None                   # the LLM's action is the simulator's best
    answer: LLMAnswer | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "answer"}
        d["provenance"] = self.answer.provenance() if self.answer else None
        return d


def explain(state: State, backend: Backend | None, params: GenParams | None = None, include_outcomes: bool = True) -> Explanation:
    """An LLM explanation of ``state`` if it is grounded and agrees with the simulator, else the template
    (``backend=None``: the template only)."""
    if backend is None:
        return Explanation(template_explanation(state), state.best_action, "template")
    source = facts(state, include_outcomes)
    ans = ask(backend, EXPLAIN_TEMPLATE, {"facts": source}, params or GenParams(max_tokens=96))
    bad = ungrounded_numbers(ans.text, source)
    action = parse_action(ans.text)
    agrees = None if state.best_action is None else action == state.best_action
    if not bad and agrees is not False and action is not None:
        return Explanation(ans.text, action, "llm", ans.text, action, [], agrees, ans)
    return Explanation(template_explanation(state), state.best_action, "template", ans.text, action, bad, agrees, ans)


__all__ = ["ACTIONS", "Explanation", "State", "capture", "explain", "facts", "forecaster_risk", "heuristic_risk",
           "numbers_in", "parse_action", "states_from_simulation", "template_explanation", "ungrounded_numbers"]
