"""The healing classifier bundle: parsers + rule engine + one calibrated ensemble per label.

``train_bundle`` fits, for each kind of input (kernel, python) and each label field, a calibrated
ensemble and picks the hybrid mode on the training rows' out-of-fold predictions.
``HealingModel.classify`` turns input rows (``id`` + ``log`` or ``traceback``) into output rows
(``id``, ``pred_<label>`` for every trained label of that kind, ``confidence``, ``rule_id``,
``params``).

Example::

    model = train_bundle({"python": (rows, ("label_root_cause",), "fname")})
    model.classify([{"id": "a", "traceback": tb}])
"""

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from kforge.errors import InputError
from kforge.healing.classifiers import UNKNOWN, CalibratedEnsemble, fit_calibrated
from kforge.healing.features import frame_of, kind_of, raw_text, record, rule_tokens
from kforge.healing.hybrid import choose_mode, reconcile
from kforge.healing.rules import RuleEngine, RuleMatch, match_texts

MIN_ROWS = 8


@dataclass
class LabelModel:
    label: str
    ensemble: CalibratedEnsemble
    mode: str
    mode_scores: dict[str, float] = field(default_factory=dict)
    n_train: int = 0


@dataclass
class HealingModel:
    rules: RuleEngine
    models: dict[str, dict[str, LabelModel]] = field(default_factory=dict)   # kind -> label -> model

    def labels(self, kind: str) -> list[str]:
        return list(self.models.get(kind, {}))

    def _rule(self, rec: dict[str, Any]) -> RuleMatch | None:
        return self.rules.match_text(rec["kind"], match_texts(rec["kind"], rec["raw_full"], rec["parsed"]))

    def classify(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One output row per input row (in order)."""
        recs = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or "id" not in row:
                raise InputError(f"row {i + 1}: each row needs an 'id'")
            kind = kind_of(row)
            if kind not in ("kernel", "python"):
                raise InputError(f"row {i + 1} (id {row['id']!r}): needs a 'log' (kernel console log) or a 'traceback' (Python)")
            rec = record(row)
            rec["raw_full"] = str(row.get("log") or row.get("traceback") or "")
            recs.append(rec)
        out: list[dict[str, Any]] = [{} for _ in rows]
        for kind in ("kernel", "python"):
            idx = [i for i, r in enumerate(recs) if r["kind"] == kind]
            if not idx:
                continue
            sub = [recs[i] for i in idx]
            matches = [self._rule(r) for r in sub]
            for rec, m in zip(sub, matches, strict=True):
                rec["rule"] = rule_tokens(m)
            X = frame_of(sub)
            per_label: dict[str, list[tuple[str, float, str]]] = {}
            for label, lm in self.models.get(kind, {}).items():
                proba = lm.ensemble.predict_proba(X)
                per_label[label] = [
                    reconcile(lm.mode, m.rule.labels.get(label) if m else None, m.rule.confidence if m else 0.0,
                              p, lm.ensemble.classes, lm.ensemble.threshold)
                    for m, p in zip(matches, proba, strict=True)]
            for j, i in enumerate(idx):
                m, rec = matches[j], sub[j]
                params = dict(rec["parsed"].params())
                if m:
                    params.update(m.params)
                row = {"id": rows[i]["id"], "kind": kind}
                confs = []
                for label, preds in per_label.items():
                    lab, conf, _src = preds[j]
                    row[f"pred_{label}"] = lab
                    row[f"confidence_{label}"] = round(float(conf), 4)
                    confs.append(conf)
                if not per_label and m:   # no model for this kind: rules only
                    for label, v in m.rule.labels.items():
                        row[f"pred_{label}"] = v
                    confs.append(m.rule.confidence)
                row["confidence"] = round(float(np.mean(confs)), 4) if confs else 0.0
                row["rule_id"] = m.rule.id if m else None
                row["root_cause"] = m.rule.root_cause if m else None
                row["suggested_fix"] = _fill(m.rule.suggested_fix, params) if m else None
                row["params"] = params
                out[i] = row
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(self))
        return path

    @staticmethod
    def load(path: str | Path) -> "HealingModel":
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: no such model file")
        obj = pickle.loads(path.read_bytes())
        if not isinstance(obj, HealingModel):
            raise InputError(f"{path}: not a kforge healing model")
        return obj


def _fill(template: str, params: dict[str, Any]) -> str:
    try:
        return template.format(**{k: v for k, v in params.items() if isinstance(v, str | int)})
    except (KeyError, IndexError, ValueError):
        return template


def fit_label(X: Any, y: np.ndarray, groups: np.ndarray, rule_labels: list[str | None], rule_confs: list[float],
              kinds: tuple[str, ...] = ("linear", "gbm"), seed: int = 0) -> LabelModel | None:
    if len(y) < MIN_ROWS or len(set(y.tolist())) < 2:
        return None
    ens, diag = fit_calibrated(X, y, groups, kinds=kinds, seed=seed)
    mode, scores = choose_mode(rule_labels, rule_confs, diag["oof_proba"], ens.classes, ens.threshold, y.tolist())
    return LabelModel("", ens, mode, scores, len(y))


def train_bundle(tasks: dict[str, tuple[list[dict[str, Any]], tuple[str, ...], str]], rules: RuleEngine | None = None,
                 kinds: tuple[str, ...] = ("linear", "gbm"), seed: int = 0) -> HealingModel:
    """``tasks``: kind -> (rows, label fields, group column)."""
    rules = rules or RuleEngine.default()
    model = HealingModel(rules)
    for kind, (rows, labels, group) in tasks.items():
        recs = [record(r) for r in rows]
        groups = np.array([str(r.get(group, i)) for i, r in enumerate(rows)])
        matches = [rules.match_text(kind, match_texts(kind, raw_text(r), rec["parsed"])) for rec, r in zip(recs, rows, strict=True)]
        for rec, m in zip(recs, matches, strict=True):
            rec["rule"] = rule_tokens(m)
        X = frame_of(recs)
        model.models[kind] = {}
        for label in labels:
            keep = np.array([r.get(label) not in (None, "") for r in rows])
            y = np.array([str(r.get(label)) for r in rows])
            rl = [m.rule.labels.get(label) if m else None for m in matches]
            rc = [m.rule.confidence if m else 0.0 for m in matches]
            lm = fit_label(X[keep].reset_index(drop=True), y[keep], groups[keep],
                           [x for x, k in zip(rl, keep, strict=True) if k], [x for x, k in zip(rc, keep, strict=True) if k],
                           kinds, seed)
            if lm is not None:
                lm.label = label
                model.models[kind][label] = lm
    return model


__all__ = ["HealingModel", "LabelModel", "UNKNOWN", "train_bundle", "fit_label"]
