"""Reconciling the rule engine and the models.

Modes (per label; the rule's label for that target, if it names one, against the model):

* ``rules_only``   - the rule's label, else ``UNKNOWN`` (no answer);
* ``ml_only``      - the calibrated model, ``UNKNOWN`` below its threshold;
* ``ml_fallback``  - the rule's label when a rule matched, else the model;
* ``arbitration``  - both run; the more confident one answers (rule confidence vs model probability);
* ``ensemble``     - the model's probabilities mixed with the rule's vote (weight = rule confidence / 2).

In ``arbitration`` and ``ensemble`` a rule whose label the model never saw in training answers: the
model cannot name that class, whatever its confidence.

:func:`choose_mode` picks the mode on grouped out-of-fold predictions of the *training* rows;
evaluation then reports every mode on held-out rows, so the choice is measured, not assumed.
"""

from collections.abc import Sequence

import numpy as np
from kforge.healing.classifiers import UNKNOWN, WRONG_COST

MODES = ("rules_only", "ml_only", "ml_fallback", "arbitration", "ensemble")


def reconcile(mode: str, rule_label: str | None, rule_conf: float, proba: np.ndarray, classes: Sequence[str],
              threshold: float) -> tuple[str, float, str]:
    """One row: (label, confidence, source) where source is rule | model | both | none."""
    i = int(np.argmax(proba))
    ml_label, ml_conf = classes[i], float(proba[i])
    ml = (ml_label, ml_conf, "model") if ml_conf >= threshold else (UNKNOWN, ml_conf, "none")
    if mode == "ml_only":
        return ml
    if mode == "rules_only":
        return (rule_label, rule_conf, "rule") if rule_label else (UNKNOWN, 0.0, "none")
    if not rule_label:
        return ml
    if mode == "ml_fallback":
        return rule_label, rule_conf, "rule"
    if rule_label not in classes:   # a class the model never saw in training: only the rule can name it
        return rule_label, rule_conf, "rule"
    if mode == "arbitration":
        if rule_label == ml_label:
            return rule_label, max(rule_conf, ml_conf), "both"
        return (rule_label, rule_conf, "rule") if rule_conf >= ml_conf else ml
    if mode == "ensemble":
        w = rule_conf / 2.0
        q = (1.0 - w) * np.asarray(proba, dtype=float)
        q[list(classes).index(rule_label)] += w
        j = int(np.argmax(q))
        lab, conf = classes[j], float(q[j])
        return (lab, conf, "both") if conf >= threshold else (UNKNOWN, conf, "none")
    raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")


def reconcile_all(mode: str, rule_labels: Sequence[str | None], rule_confs: Sequence[float], proba: np.ndarray,
                  classes: Sequence[str], threshold: float) -> tuple[list[str], np.ndarray, list[str]]:
    out = [reconcile(mode, r, c, p, classes, threshold) for r, c, p in zip(rule_labels, rule_confs, proba, strict=True)]
    return [o[0] for o in out], np.array([o[1] for o in out]), [o[2] for o in out]


def utility(pred: Sequence[str], y: Sequence[str]) -> float:
    """Correct answers minus WRONG_COST x wrong answers (abstentions cost nothing), per row."""
    good = sum(p == t for p, t in zip(pred, y, strict=True))
    bad = sum(p != t and p != UNKNOWN for p, t in zip(pred, y, strict=True))
    return (good - WRONG_COST * bad) / max(len(y), 1)


def choose_mode(rule_labels: Sequence[str | None], rule_confs: Sequence[float], oof_proba: np.ndarray,
                classes: Sequence[str], threshold: float, y: Sequence[str]) -> tuple[str, dict[str, float]]:
    """The mode with the best utility on the training rows' out-of-fold predictions."""
    scores = {m: utility(reconcile_all(m, rule_labels, rule_confs, oof_proba, classes, threshold)[0], y) for m in MODES}
    return max(scores, key=lambda m: (scores[m], -MODES.index(m))), scores
