"""Evaluation gates with one vocabulary, for every model family.

Standard names: ``split_holds`` (time, group or seed split as fits), ``no_future_features``,
``test_size``, ``beats_<baseline>`` (one per named baseline) and ``beats_champion``. A family may
add its own (``generalizes``, a WARN-only target, ...). A :class:`ModelSpec` declares them once,
statically, so the Dagster asset checks exist before anything runs; a :class:`Check` is one
gate's outcome in a run. A check that did not run has ``passed=None``: it is never "passed", and
a blocking gate that did not run blocks promotion.
"""

from dataclasses import dataclass, field
from typing import Literal

SPLIT_HOLDS = "split_holds"
NO_FUTURE_FEATURES = "no_future_features"
TEST_SIZE = "test_size"
BEATS_CHAMPION = "beats_champion"
GENERALIZES = "generalizes"
SAVED_MODEL_REPRODUCES = "saved_model_reproduces"

SplitKind = Literal["time", "group", "seed"]


def beats(baseline: str) -> str:
    """The gate name for a named baseline: ``beats_<baseline>``."""
    return f"beats_{baseline}"


@dataclass(frozen=True)
class GateSpec:
    """A gate declared up front: its name, what it checks (metric and threshold) and whether a
    failure blocks promotion (``blocking``) or only warns."""

    name: str
    description: str
    blocking: bool = True
    blocks_when_not_run: bool = True  # False: a gate that could not run (nothing to leave out) only warns


@dataclass(frozen=True)
class Check:
    """One gate's outcome. ``passed=None``: the gate did not run (reported as WARN, never passed)."""

    name: str
    passed: bool | None
    detail: str = ""
    numbers: dict[str, float] = field(default_factory=dict)

    @property
    def ran(self) -> bool:
        return self.passed is not None


def not_run(name: str, why: str) -> Check:
    return Check(name, None, why)


@dataclass(frozen=True)
class ModelSpec:
    """What the release path needs to know about a model before it trains.

    ``metric`` is the primary held-out metric (``higher_is_better`` gives its direction);
    ``baselines`` are the named simple baselines the model must beat on the same rows;
    ``split`` and ``split_unit`` say what is held out; ``min_test_rows`` sizes the test set.
    """

    name: str
    family: str
    asset_key: str
    metric: str
    higher_is_better: bool = True
    baselines: tuple[str, ...] = ()
    split: SplitKind = "time"
    split_unit: str = "rows"
    min_test_rows: int = 20
    min_delta: float = 0.0
    point_in_time: bool = True
    generalizes_over: str = ""      # e.g. "repository": leave-one-group-out gate against ``generalizes_baseline``
    generalizes_baseline: str = ""
    extra_gates: tuple[GateSpec, ...] = ()
    descriptions: dict[str, str] = field(default_factory=dict)

    def better(self, a: float, b: float) -> float:
        """How much better ``a`` is than ``b`` by the primary metric (positive: better)."""
        return (a - b) if self.higher_is_better else (b - a)

    def _direction(self) -> str:
        return ">" if self.higher_is_better else "<"

    def gate_specs(self) -> list[GateSpec]:
        """Every gate of this model, standard ones first; ``beats_champion`` last."""
        d = self.descriptions
        out = [
            GateSpec(SPLIT_HOLDS, d.get(SPLIT_HOLDS, f"{self.split} split: no held-out {self.split_unit} is used "
                                                     "in training, calibration or threshold choice")),
        ]
        if self.point_in_time:
            out.append(GateSpec(NO_FUTURE_FEATURES, d.get(NO_FUTURE_FEATURES,
                                "no feature uses information from after the row's prediction point or the label")))
        out.append(GateSpec(TEST_SIZE, d.get(TEST_SIZE, f"at least {self.min_test_rows} held-out rows")))
        for b in self.baselines:
            out.append(GateSpec(beats(b), d.get(beats(b), f"{self.metric} {self._direction()} the {b} baseline's "
                                                           f"{self.metric} on the same held-out rows")))
        if self.generalizes_over:
            base = self.generalizes_baseline or (self.baselines[0] if self.baselines else "the baseline")
            out.append(GateSpec(GENERALIZES, d.get(GENERALIZES, (
                f"leave one {self.generalizes_over} out: {self.metric} {self._direction()} {base}'s on every held-out "
                f"{self.generalizes_over} (per-{self.generalizes_over} numbers and the worst one in the metadata); "
                f"not run, and not blocking, with fewer than two {self.generalizes_over}s")),
                blocks_when_not_run=False))
        out.extend(self.extra_gates)
        out.append(GateSpec(SAVED_MODEL_REPRODUCES, d.get(SAVED_MODEL_REPRODUCES, (
            f"the saved model, scored by the code that scores champions, reproduces the run's {self.metric} on the "
            "same held-out rows (what is registered is what was measured)")), blocking=False))
        out.append(GateSpec(BEATS_CHAMPION, d.get(BEATS_CHAMPION,
                            f"{self.metric} {self._direction()} the champion's by more than {self.min_delta:g} "
                            "on the same held-out rows (decides promotion)"), blocking=False))
        return out

    def blocking_gates(self) -> set[str]:
        return {g.name for g in self.gate_specs() if g.blocking and g.name != BEATS_CHAMPION}

    def blocks(self, check: "Check") -> bool:
        """Whether ``check``'s outcome blocks promotion: a failed blocking gate, or a blocking gate
        that did not run (unless it is declared not to block when it cannot run)."""
        spec = next((g for g in self.gate_specs() if g.name == check.name), None)
        if spec is None or not spec.blocking or spec.name == BEATS_CHAMPION:
            return False
        return check.passed is False or (check.passed is None and spec.blocks_when_not_run)


def size_check(n_rows: int, minimum: int, **numbers: float) -> Check:
    ok = n_rows >= minimum
    return Check(TEST_SIZE, ok, f"{n_rows} held-out rows (minimum {minimum})",
                 {"rows": float(n_rows), "minimum": float(minimum), **numbers})


def beats_check(spec: ModelSpec, baseline: str, model_score: float, baseline_score: float | None) -> Check:
    """``beats_<baseline>`` on the primary metric (strictly better)."""
    if baseline_score is None or baseline_score != baseline_score:
        return not_run(beats(baseline), f"the {baseline} baseline was not scored")
    if model_score != model_score:
        return Check(beats(baseline), False, f"the model has no {spec.metric}")
    delta = spec.better(model_score, baseline_score)
    return Check(beats(baseline), delta > 0,
                 f"{spec.metric} {model_score:.4f} vs {baseline} {baseline_score:.4f} ({delta:+.4f})",
                 {"model": round(model_score, 4), baseline: round(baseline_score, 4), "delta": round(delta, 4)})


def generalizes_check(spec: ModelSpec, per_group: dict[str, tuple[float, float]], min_groups: int = 2,
                      ties_pass: bool = False) -> Check:
    """``generalizes``: the model beats its baseline on every held-out group.

    ``per_group`` maps a held-out group (a repository, a kernel, a notebook source, a mixin) to
    (model score, baseline score) on that group's rows, from a model that never saw the group.
    The numbers include each group's delta, the mean over groups and the worst group.
    ``ties_pass``: a group where the model equals the baseline passes (for a family whose target is
    "at least the baseline", e.g. one that serves the baseline itself where it is not better).
    """
    if len(per_group) < min_groups:
        return not_run(GENERALIZES, f"{len(per_group)} held-out {spec.generalizes_over or 'group'}(s) "
                                    f"< {min_groups}: nothing to leave out")
    deltas = {g: spec.better(m, b) for g, (m, b) in per_group.items()}
    worst = min(deltas, key=lambda g: deltas[g])
    losing = sorted(g for g, d in deltas.items() if not (d >= 0 if ties_pass else d > 0))
    mean_model = sum(m for m, _ in per_group.values()) / len(per_group)
    mean_base = sum(b for _, b in per_group.values()) / len(per_group)
    numbers = {"groups": float(len(per_group)), "mean_model": round(mean_model, 4),
               "mean_baseline": round(mean_base, 4), "worst_delta": round(deltas[worst], 4),
               **{f"delta[{g}]": round(d, 4) for g, d in sorted(deltas.items())}}
    detail = (f"worst {spec.generalizes_over or 'group'} {worst}: {per_group[worst][0]:.4f} vs "
              f"{per_group[worst][1]:.4f} ({deltas[worst]:+.4f}); mean {mean_model:.4f} vs {mean_base:.4f}")
    if losing:
        detail = f"loses on {', '.join(losing)}; " + detail
    return Check(GENERALIZES, not losing, detail, numbers)
