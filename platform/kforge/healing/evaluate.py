"""Grouped held-out evaluation: baselines, single models, the calibrated ensemble and every hybrid mode.

Each row is held out exactly once (``GroupKFold`` over the task's group column: crash title,
notebook, program), so no near-duplicate crosses train and test. Everything is fitted on the
training folds only; rules are fixed data (not fitted). Reported per label, pooled over folds:

* ``accuracy`` / ``macro_f1`` with ``UNKNOWN`` (abstained) counted as wrong, ``coverage`` (rows answered),
  ``selective_accuracy`` (accuracy on the rows answered);
* systems: ``dozen_regexes`` (kernel ``crash_class``), ``exc_type_majority`` (Python),
  ``tfidf_lr`` (named baseline), ``linear``, ``hashed``, ``gbm``, ``ensemble`` (calibrated,
  abstaining), ``rules_only``, the hybrid modes, ``system``: what ``healing classify`` answers in
  ``pred_<label>`` (the hybrid mode chosen inside each training fold, always top-1), and
  ``system_abstaining``: the same with ``UNKNOWN`` where ``abstain_<label>`` is set (its
  ``selective_accuracy`` is the precision at the threshold tuned on the training folds);
* ``abstention``: the threshold, and coverage/precision on the training folds' validation rows
  (grouped out-of-fold) and on the held-out rows;
* ``held_out_only``: ``system`` scored without the rows a hand-written rule was written after reading
  (``data/rule_provenance.json``), when the task names such rows.
"""

from collections import defaultdict
from typing import Any

import numpy as np
from kforge.healing.baselines import ExceptionTypeBaseline, dozen_regexes
from kforge.healing.classifiers import PRECISION_TARGET, UNKNOWN, _group_folds, make_pipeline
from kforge.healing.features import frame_of, record, rule_tokens
from kforge.healing.hybrid import MODES, reconcile_all
from kforge.healing.model import crash_flags, fit_label, members_for
from kforge.healing.rules import RuleEngine, match_texts


def read_rows() -> set[str]:
    """Ids of the training rows that hand-written rules were written after reading: not held out for them
    (``data/rule_provenance.json`` says how they were found)."""
    import json
    from importlib import resources

    return set(json.loads((resources.files("kforge.healing") / "data" / "rule_provenance.json").read_text())["rows"])


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
                  groups: np.ndarray | None = None, not_held_out: set[str] | None = None,
                  precision_target: float = PRECISION_TARGET,
                  kinds: tuple[str, ...] = ("linear", "gbm"), text_encoder: bool = False) -> dict[str, Any]:
    """Metrics per label and system, plus per-fold chosen modes and sizes.

    ``groups`` overrides the group column (one id per row); ``keep_predictions`` adds every
    system's held-out predictions (``predictions``), the confidence of ``system`` (``system_confidence``) and the
    true labels (``y``) per label;
    ``not_held_out``: ids of rows a rule was written after reading (also scored without them; default: the
    rows :func:`read_rows` names).
    """
    not_held_out = read_rows() if not_held_out is None else not_held_out
    rules = rules or RuleEngine.default()
    recs = [record(r) for r in rows]
    text_col = "log" if kind == "kernel" else "traceback"
    matches = [rules.match_text(kind, match_texts(kind, str(r.get(text_col) or ""), rec["parsed"]))
               for r, rec in zip(rows, recs, strict=True)]
    for rec, m in zip(recs, matches, strict=True):
        rec["rule"] = rule_tokens(m)
    X = frame_of(recs)
    found, systems = crash_flags(recs)
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
        system_conf = np.zeros(len(y))
        chosen: list[str] = []
        folds_abst: list[tuple[float, float, float, int]] = []
        for tr, te in folds:
            Xtr, Xte = X.iloc[tr].reset_index(drop=True), X.iloc[te].reset_index(drop=True)
            if kind == "kernel" and label == "crash_class":
                pred["dozen_regexes"][te] = [dozen_regexes(str(rows[i].get(text_col) or "")) for i in te]
            base = ExceptionTypeBaseline().fit([exc_types[i] for i in tr], y[tr].tolist())
            pred["exc_type_majority"][te] = base.predict([exc_types[i] for i in te])
            for k in extra_models:
                pred[k][te] = make_pipeline(k, seed).fit(Xtr, y[tr]).predict(Xte)
            lm = fit_label(Xtr, y[tr], groups[tr], [rl[i] for i in tr], [rc[i] for i in tr], members_for(kind, kinds, text_encoder),
                           seed=seed,
                           crash_found=[found[i] for i in tr], systems=[systems[i] for i in tr],
                           precision_target=precision_target)
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
            labs, conf = lm.answer([rl[i] for i in te], [rc[i] for i in te], pte, [found[i] for i in te],
                                   [systems[i] for i in te])
            pred["system"][te] = labs
            system_conf[te] = conf
            pred["system_abstaining"][te] = [lab if c >= lm.abstain_threshold else UNKNOWN
                                             for lab, c in zip(labs, conf, strict=True)]
            chosen.append(lm.mode)
            folds_abst.append((lm.abstain_threshold, lm.val_coverage, lm.val_precision, len(te)))
        out["labels"][label] = {"n_classes": len(set(y.tolist())), "chosen_modes": chosen,
                                "systems": {k: scores(y.tolist(), v.tolist()) for k, v in pred.items()}}
        if folds_abst:
            w = np.array([f[3] for f in folds_abst], dtype=float)
            held = out["labels"][label]["systems"]["system_abstaining"]
            out["labels"][label]["abstention"] = {
                "precision_target": precision_target,
                "threshold": float(np.average([f[0] for f in folds_abst], weights=w)),
                "validation_coverage": float(np.average([f[1] for f in folds_abst], weights=w)),
                "validation_precision": float(np.nanmean([f[2] for f in folds_abst])),
                "heldout_coverage": held["coverage"], "heldout_precision": held["selective_accuracy"]}
        if not_held_out:
            keep = np.array([str(r.get("id")) not in not_held_out for r in rows])
            if keep.any() and (~keep).any():
                out["labels"][label]["held_out_only"] = {
                    "n_rows": int(keep.sum()), "n_not_held_out": int((~keep).sum()),
                    **{k: scores(y[keep].tolist(), pred[k][keep].tolist()) for k in ("system", "rules_only", "tfidf_lr")
                       if k in pred}}
        if keep_predictions:
            out["labels"][label]["y"] = y.tolist()
            out["labels"][label]["predictions"] = {k: v.tolist() for k, v in pred.items()}
            out["labels"][label]["system_confidence"] = system_conf.tolist()
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
        a = res.get("abstention")
        if a:
            lines.append(f"   abstention (precision target {a['precision_target']:.2f}, threshold tuned on the training "
                         f"folds' grouped out-of-fold rows; mean threshold {a['threshold']:.3f}): validation coverage "
                         f"{a['validation_coverage']:.3f} precision {a['validation_precision']:.3f} | held-out coverage "
                         f"{a['heldout_coverage']:.3f} precision {a['heldout_precision']:.3f}")
        h = res.get("held_out_only")
        if h:
            lines.append(f"   without the {h['n_not_held_out']} rows rules were written after reading ({h['n_rows']} rows): "
                         + " | ".join(f"{k} {v['accuracy']:.3f}/{v['macro_f1']:.3f}" for k, v in h.items()
                                      if isinstance(v, dict)) + "  (accuracy/macro_f1)")
    return "\n".join(lines)
