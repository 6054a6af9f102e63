"""The healing classifier bundle: parsers + rule engine + one calibrated ensemble per label.

``train_bundle`` fits, for each kind of input (kernel, python) and each label field, a calibrated
ensemble and picks the hybrid mode on the training rows' out-of-fold predictions.
``HealingModel.classify`` turns input rows (``id`` + ``log`` or ``traceback``) into output rows
(``id``, for every trained label of that kind ``pred_<label>`` - always the top-1 class -,
``confidence_<label>`` and ``abstain_<label>``, then ``confidence``, ``rule_id``, ``params``).

Abstention is a separate flag, not a missing answer: ``abstain_<label>`` is true when the confidence is
below the label's ``abstain_threshold``, the lowest confidence at which the training rows' grouped
out-of-fold (validation) answers were right ``precision_target`` (0.8) of the time. Two guards hold
whatever the model says: a kernel log with a recognised crash report is never ``no-crash``, and a report
from a system the model never saw in training (FreeBSD, gVisor, ... when trained on Linux) takes the
rule's class when a rule names one.

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
from kforge.healing.classifiers import (
    PRECISION_TARGET,
    UNKNOWN,
    CalibratedEnsemble,
    choose_threshold,
    coverage_precision,
    fit_calibrated,
)
from kforge.healing.features import frame_of, kind_of, raw_text, record, rule_tokens
from kforge.healing.hybrid import MODES, reconcile
from kforge.healing.rules import RuleEngine, RuleMatch, match_texts
from kforge.registry.trusted import Reader, record_saved, unpickle

MIN_ROWS = 8
NO_CRASH = frozenset({"no-crash", "NO_CRASH"})   # the "nothing to report" class of the kernel labels
# Members added per kind of input: on notebook tracebacks the raw-text TF-IDF model carries words the structured
# fields drop (issue 16: root cause 0.425 -> 0.443 at full coverage, grouped by notebook).
EXTRA_MEMBERS: dict[str, tuple[str, ...]] = {"python": ("tfidf_lr",)}
# Members added when the pretrained text encoder is switched on (``HealingConfig.text_encoder``, off by default, issue 20):
# on notebook root cause they raise full-coverage accuracy (0.443 -> 0.464) but lower coverage at the 0.8-precision
# threshold; on kernel logs they did not help (docs/notes/issue-16-healing-session7.md).
ENCODER_MEMBERS: dict[str, tuple[str, ...]] = {"python": ("embed_lr", "embed_knn")}


def members_for(kind: str, kinds: tuple[str, ...], text_encoder: bool = False) -> tuple[str, ...]:
    """The ensemble members of one kind of input: ``kinds``, that kind's extras, and its encoder members if on."""
    extra = EXTRA_MEMBERS.get(kind, ()) + (ENCODER_MEMBERS.get(kind, ()) if text_encoder else ())
    return kinds + tuple(k for k in extra if k not in kinds)


@dataclass
class LabelModel:
    label: str
    ensemble: CalibratedEnsemble
    mode: str
    mode_scores: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    abstain_threshold: float = 0.0       # abstain below this confidence (tuned on validation rows)
    precision_target: float = PRECISION_TARGET
    val_coverage: float = 1.0            # share answered on the validation rows at the threshold
    val_precision: float = float("nan")  # accuracy of those answers
    systems: tuple[str, ...] = ()        # report formats seen in training (kernel: linux, freebsd, ...)

    def answer(self, rule_labels: list[str | None], rule_confs: list[float], proba: np.ndarray,
               crash_found: list[bool], systems: list[str]) -> tuple[list[str], np.ndarray]:
        """Top-1 label and confidence per row at full coverage (see :func:`system_answer`)."""
        return system_answer(self.mode, self.ensemble.classes, rule_labels, rule_confs, proba, crash_found,
                             [bool(s) and bool(self.systems) and s not in self.systems for s in systems])


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
            found, systems = crash_flags(sub)
            per_label: dict[str, list[tuple[str, float, bool]]] = {}
            for label, lm in self.models.get(kind, {}).items():
                labs, confs_ = lm.answer([m.rule.labels.get(label) if m else None for m in matches],
                                         [m.rule.confidence if m else 0.0 for m in matches],
                                         lm.ensemble.predict_proba(X), found, systems)
                per_label[label] = [(lab, float(c), bool(c < lm.abstain_threshold)) for lab, c in zip(labs, confs_, strict=True)]
            for j, i in enumerate(idx):
                m, rec = matches[j], sub[j]
                params = dict(rec["parsed"].params())
                if m:
                    params.update(m.params)
                row = {"id": rows[i]["id"], "kind": kind}
                confs = []
                for label, preds in per_label.items():
                    lab, conf, abstain = preds[j]
                    row[f"pred_{label}"] = lab
                    row[f"confidence_{label}"] = round(float(conf), 4)
                    row[f"abstain_{label}"] = abstain
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

    def abstention_metrics(self) -> dict[str, float]:
        """Per trained label: the abstention threshold and the coverage/precision it had on the validation rows
        (``abstain_threshold_<kind>_<label>``, ``train_oof_coverage_...``, ``train_oof_precision_...``: out-of-fold on training rows), for MLflow."""
        out: dict[str, float] = {}
        for kind, labels in self.models.items():
            for label, lm in labels.items():
                out[f"abstain_threshold_{kind}_{label}"] = float(lm.abstain_threshold)
                out[f"train_oof_coverage_{kind}_{label}"] = float(lm.val_coverage)
                out[f"train_oof_precision_{kind}_{label}"] = float(lm.val_precision)
        return out

    def abstention_summary(self, out: list[dict[str, Any]]) -> list[str]:
        """One line per label of classified rows: how many it answered, and what its threshold promised."""
        lines = []
        for kind, labels in self.models.items():
            rows = [r for r in out if r.get("kind") == kind]
            for label, lm in labels.items():
                if not rows:
                    continue
                answered = sum(not r.get(f"abstain_{label}", False) for r in rows)
                lines.append(f"{kind}.{label}: answered {answered}/{len(rows)} (abstain below confidence "
                             f"{lm.abstain_threshold:.3f}, tuned to precision {lm.precision_target:.2f} on validation "
                             f"rows: coverage {lm.val_coverage:.3f}, precision {lm.val_precision:.3f})")
        return lines

    def save(self, path: str | Path, *, tracker: Any = None) -> Path:
        """Pickle the bundle to ``path``. The file loads again only where its sha256 was recorded: by the
        release path (:func:`kforge.healing.pyfunc.save_pyfunc`, inside the MLflow run), or here in
        ``tracker``'s registry when one is given (``--model`` in that home)."""
        from kforge.healing.pyfunc import BUNDLE_FILE

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(self))
        if tracker is not None:
            record_saved(tracker, path, BUNDLE_FILE, group="healing")
        return path

    @staticmethod
    def load(path: str | Path, *, read: Reader) -> "HealingModel":
        """The bundle at ``path``. ``read`` checks the file against the sha256 recorded in the registry
        before anything is unpickled (see :mod:`kforge.registry.trusted`)."""
        from kforge.healing.pyfunc import BUNDLE_FILE

        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: no such model file")
        obj = unpickle(path, BUNDLE_FILE, read)
        if not isinstance(obj, HealingModel):
            raise InputError(f"{path}: not a kforge healing model")
        return obj


def _fill(template: str, params: dict[str, Any]) -> str:
    try:
        return template.format(**{k: v for k, v in params.items() if isinstance(v, str | int)})
    except (KeyError, IndexError, ValueError):
        return template


def crash_flags(recs: list[dict[str, Any]]) -> tuple[list[bool], list[str]]:
    """Per parsed record: whether a kernel crash report was recognised, and whose format it is."""
    found = [bool(getattr(r["parsed"], "marker", "")) for r in recs]
    return found, [str(getattr(r["parsed"], "os", "") or "") for r in recs]


def system_answer(mode: str, classes: list[str], rule_labels: list[str | None], rule_confs: list[float],
                  proba: np.ndarray, crash_found: list[bool], foreign: list[bool]) -> tuple[list[str], np.ndarray]:
    """The shipped top-1 answer per row (never the abstention marker ``UNKNOWN``) and its confidence.

    ``mode`` reconciles rule and model (see :mod:`kforge.healing.hybrid`); on a row whose report format the model
    never saw (``foreign``) a matching rule answers; where a crash report was found (``crash_found``) the
    "nothing to report" class is ruled out."""
    labels, confs = [], np.zeros(len(rule_labels))
    no_crash_cols = [i for i, c in enumerate(classes) if c in NO_CRASH]
    for i, (rl, rc, p) in enumerate(zip(rule_labels, rule_confs, proba, strict=True)):
        p = np.asarray(p, dtype=float)
        if crash_found[i] and no_crash_cols and len(no_crash_cols) < len(classes):
            p = p.copy()
            p[no_crash_cols] = 0.0
            p = p / max(float(p.sum()), 1e-12)
        if crash_found[i] and rl in NO_CRASH:
            rl, rc = None, 0.0
        lab, conf, _ = reconcile("ml_fallback" if foreign[i] else mode, rl, rc, p, classes, 0.0)
        if lab == UNKNOWN:   # rules_only without a rule: the model's top-1 still answers
            j = int(np.argmax(p))
            lab, conf = classes[j], float(p[j])
        labels.append(lab)
        confs[i] = conf
    return labels, confs


def fit_label(X: Any, y: np.ndarray, groups: np.ndarray, rule_labels: list[str | None], rule_confs: list[float],
              kinds: tuple[str, ...] = ("linear", "gbm"), seed: int = 0, crash_found: list[bool] | None = None,
              systems: list[str] | None = None, precision_target: float = PRECISION_TARGET) -> LabelModel | None:
    """Fit one label: the calibrated ensemble, the hybrid mode (chosen at full coverage) and the abstention
    threshold, all on the training rows (the thresholds on their grouped out-of-fold predictions). None with
    fewer than ``MIN_ROWS`` rows, one class or one group (no out-of-fold rows to tune on)."""
    if len(y) < MIN_ROWS or len(set(y.tolist())) < 2 or len(set(np.asarray(groups).tolist())) < 2:
        return None
    ens, diag = fit_calibrated(X, y, groups, kinds=kinds, seed=seed, precision=precision_target)
    found = crash_found if crash_found is not None else [False] * len(y)
    seen = tuple(sorted({s for s in systems or [] if s}))
    rows_sys = list(systems or [""] * len(y))
    # the mode that answers best at full coverage on the out-of-fold rows (ties: the earlier mode)
    answers = {m: LabelModel("", ens, m, systems=seen).answer(rule_labels, rule_confs, diag["oof_proba"], found, rows_sys)
               for m in MODES}
    scores = {m: float(np.mean(np.array(a[0], dtype=object) == y)) for m, a in answers.items()}
    mode = max(MODES, key=lambda m: (scores[m], -MODES.index(m)))
    lm = LabelModel("", ens, mode, scores, len(y), precision_target=precision_target, systems=seen)
    labels, conf = answers[mode]
    correct = np.array(labels, dtype=object) == y
    lm.abstain_threshold = choose_threshold(conf, correct, precision_target)
    lm.val_coverage, lm.val_precision = coverage_precision(conf, correct, lm.abstain_threshold)
    return lm


def train_bundle(tasks: dict[str, tuple[list[dict[str, Any]], tuple[str, ...], str]], rules: RuleEngine | None = None,
                 kinds: tuple[str, ...] = ("linear", "gbm"), seed: int = 0, text_encoder: bool = False) -> HealingModel:
    """``tasks``: kind -> (rows, label fields, group column). ``text_encoder``: add the encoder members
    (:data:`ENCODER_MEMBERS`; they embed through :func:`kforge.healing.embedding.encoder`)."""
    rules = rules or RuleEngine.default()
    model = HealingModel(rules)
    for kind, (rows, labels, group) in tasks.items():
        recs = [record(r) for r in rows]
        groups = np.array([str(r.get(group, i)) for i, r in enumerate(rows)])
        matches = [rules.match_text(kind, match_texts(kind, raw_text(r), rec["parsed"])) for rec, r in zip(recs, rows, strict=True)]
        for rec, m in zip(recs, matches, strict=True):
            rec["rule"] = rule_tokens(m)
        X = frame_of(recs)
        found, systems = crash_flags(recs)
        model.models[kind] = {}
        for label in labels:
            keep = np.array([r.get(label) not in (None, "") for r in rows])
            y = np.array([str(r.get(label)) for r in rows])
            rl = [m.rule.labels.get(label) if m else None for m in matches]
            rc = [m.rule.confidence if m else 0.0 for m in matches]
            lm = fit_label(X[keep].reset_index(drop=True), y[keep], groups[keep],
                           [x for x, k in zip(rl, keep, strict=True) if k], [x for x, k in zip(rc, keep, strict=True) if k],
                           members_for(kind, kinds, text_encoder), seed, crash_found=[x for x, k in zip(found, keep, strict=True) if k],
                           systems=[x for x, k in zip(systems, keep, strict=True) if k])
            if lm is not None:
                lm.label = label
                model.models[kind][label] = lm
    return model


__all__ = ["HealingModel", "LabelModel", "UNKNOWN", "train_bundle", "fit_label", "system_answer", "crash_flags"]
