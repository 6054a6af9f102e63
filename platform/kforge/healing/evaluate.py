"""Grouped held-out evaluation: baselines, single models, the calibrated ensemble and every hybrid mode.

Each row is held out exactly once (``GroupKFold`` over the task's group column: crash title,
notebook, program), so no near-duplicate crosses train and test. Everything is fitted on the
training folds only; rules are fixed data (not fitted). Reported per label, pooled over folds:

* ``accuracy`` / ``macro_f1`` with ``unknown`` counted as wrong, ``coverage`` (rows answered),
  ``selective_accuracy`` (accuracy on the rows answered);
* systems: ``dozen_regexes`` (kernel ``crash_class``), ``exc_type_majority`` (Python),
  ``tfidf_lr`` (named baseline), ``linear``, ``hashed``, ``gbm``, ``ensemble`` (calibrated,
  abstaining), ``rules_only``, the hybrid modes, and ``system``: the hybrid mode chosen inside
  each training fold (the shipped configuration).
"""

from collections import defaultdict
from typing import Any

import numpy as np
from kforge.healing.baselines import ExceptionTypeBaseline, dozen_regexes
from kforge.healing.classifiers import UNKNOWN, _group_folds, make_pipeline
from kforge.healing.features import frame_of, record, rule_tokens
from kforge.healing.hybrid import MODES, reconcile_all
from kforge.healing.model import fit_label
from kforge.healing.rules import RuleEngine, match_texts


def scores(y: list[str], pred: list[str]) -> dict[str, float]:
    from sklearn.metrics import f1_score

    y_arr, p_arr = np.array(y, dtype=object), np.array(pred, dtype=object)
    answered = p_arr != UNKNOWN
    labels = sorted(set(y))
    return {
        "accuracy": float(np.mean(y_arr == p_arr)),
        "macro_f1": float(f1_score(y_arr, p_arr, labels=labels, average="macro", zero_division=0)),
        "coverage": float(np.mean(answered)),
        "selective_accuracy": float(np.mean(y_arr[answered] == p_arr[answered])) if answered.any() else 0.0,
    }


def evaluate_task(rows: list[dict[str, Any]], kind: str, labels: tuple[str, ...], group: str,
                  rules: RuleEngine | None = None, n_folds: int = 5, seed: int = 0,
                  extra_models: tuple[str, ...] = ("tfidf_lr", "hashed"), keep_predictions: bool = False,
                  groups: np.ndarray | None = None) -> dict[str, Any]:
    """Metrics per label and system, plus per-fold chosen modes and sizes.

    ``groups`` overrides the group column (one id per row); ``keep_predictions`` adds every
    system's held-out predictions (``predictions``) and the true labels (``y``) per label.
    """
    rules = rules or RuleEngine.default()
    recs = [record(r) for r in rows]
    text_col = "log" if kind == "kernel" else "traceback"
    matches = [rules.match_text(kind, match_texts(kind, str(r.get(text_col) or ""), rec["parsed"]))
               for r, rec in zip(rows, recs, strict=True)]
    for rec, m in zip(recs, matches, strict=True):
        rec["rule"] = rule_tokens(m)
    X = frame_of(recs)
    if groups is None:
        groups = np.array([str(r.get(group, i)) for i, r in enumerate(rows)])
    exc_types = [rec["parsed"].short_type if kind == "python" else rec["parsed"].marker for rec in recs]
    folds = _group_folds(groups, n_folds)
    out: dict[str, Any] = {"kind": kind, "n_rows": len(rows), "n_groups": len(set(groups.tolist())),
                           "n_folds": len(folds), "labels": {}}
    for label in labels:
        y = np.array([str(r.get(label)) for r in rows], dtype=object)
        rl = [m.rule.labels.get(label) if m else None for m in matches]
        rc = [m.rule.confidence if m else 0.0 for m in matches]
        pred: dict[str, np.ndarray] = defaultdict(lambda n=len(y): np.full(n, UNKNOWN, dtype=object))
        chosen: list[str] = []
        for tr, te in folds:
            Xtr, Xte = X.iloc[tr].reset_index(drop=True), X.iloc[te].reset_index(drop=True)
            if kind == "kernel" and label == "crash_class":
                pred["dozen_regexes"][te] = [dozen_regexes(str(rows[i].get(text_col) or "")) for i in te]
            base = ExceptionTypeBaseline().fit([exc_types[i] for i in tr], y[tr].tolist())
            pred["exc_type_majority"][te] = base.predict([exc_types[i] for i in te])
            for k in extra_models:
                pred[k][te] = make_pipeline(k, seed).fit(Xtr, y[tr]).predict(Xte)
            lm = fit_label(Xtr, y[tr], groups[tr], [rl[i] for i in tr], [rc[i] for i in tr], seed=seed)
            if lm is None:
                continue
            ens = lm.ensemble
            for name, member in ens.members.items():
                pred[name][te] = member.predict(Xte)
            pte = ens.predict_proba(Xte)
            for mode in MODES:
                pred[mode][te] = reconcile_all(mode, [rl[i] for i in te], [rc[i] for i in te], pte, ens.classes,
                                               ens.threshold)[0]
            pred["ensemble"][te] = pred["ml_only"][te]
            pred["system"][te] = pred[lm.mode][te]
            pred["system_forced"][te] = reconcile_all(lm.mode, [rl[i] for i in te], [rc[i] for i in te], pte,
                                                      ens.classes, 0.0)[0]
            chosen.append(lm.mode)
        out["labels"][label] = {"n_classes": len(set(y.tolist())), "chosen_modes": chosen,
                                "systems": {k: scores(y.tolist(), v.tolist()) for k, v in pred.items()}}
        if keep_predictions:
            out["labels"][label]["y"] = y.tolist()
            out["labels"][label]["predictions"] = {k: v.tolist() for k, v in pred.items()}
    return out


def format_report(result: dict[str, Any]) -> str:
    lines = [f"== {result['kind']}: {result['n_rows']} rows, {result['n_groups']} groups, "
             f"{result['n_folds']}-fold grouped held-out"]
    for label, res in result["labels"].items():
        lines.append(f"-- {label} ({res['n_classes']} classes; mode chosen per fold: {','.join(res['chosen_modes'])})")
        lines.append(f"   {'system':<18} {'accuracy':>8} {'macro_f1':>8} {'coverage':>8} {'sel_acc':>8}")
        for name, s in sorted(res["systems"].items(), key=lambda kv: -kv[1]["accuracy"]):
            lines.append(f"   {name:<18} {s['accuracy']:8.3f} {s['macro_f1']:8.3f} {s['coverage']:8.3f} "
                         f"{s['selective_accuracy']:8.3f}")
    return "\n".join(lines)
