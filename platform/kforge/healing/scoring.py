"""Held-out scoring of the healing classifier bundle (pure functions, no MLflow).

* :func:`row_key`: the stable key of a labelled row (kind, group, id), what the release path digests;
* :func:`primary_accuracy`: accuracy of one label on given rows (an abstention counts as wrong), the
  number the challenger and the champion are compared on;
* :func:`score_model`: accuracy, macro-F1 and coverage of every label of every kind;
* :func:`baseline_accuracy`: the named TF-IDF + logistic regression baseline on the same split.
"""

from typing import Any

import numpy as np
from kforge.healing.classifiers import UNKNOWN
from kforge.healing.evaluate import scores
from kforge.healing.model import HealingModel

TEXT = {"kernel": "log", "python": "traceback"}


def row_key(kind: str, row: dict[str, Any], group: str) -> str:
    """A stable key for a labelled row: it does not depend on the row's position."""
    return f"{kind}:{row.get(group, '')}:{row.get('id', '')}"


def labelled(rows: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    return [r for r in rows if r.get(label) not in (None, "")]


def _inputs(kind: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": str(i), TEXT[kind]: r.get(TEXT[kind])} for i, r in enumerate(rows)]


def primary_accuracy(model: HealingModel, kind: str, rows: list[dict[str, Any]], label: str) -> float:
    """Accuracy of ``pred_<label>`` on ``rows`` (all labelled); NaN when there are none."""
    if not rows:
        return float("nan")
    preds = model.classify(_inputs(kind, rows))
    return float(np.mean([str(p.get(f"pred_{label}", UNKNOWN)) == str(r[label]) for p, r in zip(preds, rows, strict=True)]))


def score_model(model: HealingModel, tests: dict[str, tuple[list[dict[str, Any]], tuple[str, ...]]]) -> dict[str, float]:
    """``test_<kind>_<label>_{accuracy,macro_f1,coverage}`` for every label with labelled test rows."""
    out: dict[str, float] = {}
    for kind, (rows, labels) in tests.items():
        preds = model.classify(_inputs(kind, rows)) if rows else []
        for label in labels:
            keep = [i for i, r in enumerate(rows) if r.get(label) not in (None, "")]
            if not keep:
                continue
            y = [str(rows[i][label]) for i in keep]
            p = [str(preds[i].get(f"pred_{label}", UNKNOWN)) for i in keep]
            s = scores(y, p)
            out[f"test_{kind}_{label}_accuracy"] = s["accuracy"]
            out[f"test_{kind}_{label}_macro_f1"] = s["macro_f1"]
            answered = [not bool(preds[i].get(f"abstain_{label}", False)) for i in keep]
            out[f"test_{kind}_{label}_coverage"] = float(np.mean(answered))
            if any(answered):  # accuracy on the rows it chose to answer (the abstention's precision)
                out[f"test_{kind}_{label}_answered_precision"] = float(np.mean(
                    [a == b for a, b, ok in zip(y, p, answered, strict=True) if ok]))
    return out


def baseline_accuracy(train: list[dict[str, Any]], test: list[dict[str, Any]], label: str) -> float:
    """TF-IDF + logistic regression on the raw text, same split: the named baseline (NaN without
    labelled test or training rows; with one training class it answers that class, as any classifier
    fitted on those rows would)."""
    from kforge.healing.classifiers import fit_member
    from kforge.healing.features import frame_of, record

    tr, te = labelled(train, label), labelled(test, label)
    if not te or not tr:
        return float("nan")
    seen = {str(r[label]) for r in tr}
    if len(seen) < 2:
        return float(np.mean([str(r[label]) in seen for r in te]))
    m = fit_member("tfidf_lr", frame_of([record(r) for r in tr]), [str(r[label]) for r in tr])
    pred = m.predict(frame_of([record(r) for r in te]))
    return float(np.mean([p == str(r[label]) for p, r in zip(pred, te, strict=True)]))
