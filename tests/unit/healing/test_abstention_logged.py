"""The abstention numbers reach the record: held-out coverage is read from the ``abstain_<label>`` flags (``pred_`` is
never the abstention marker now), the pyfunc output keeps each label's flag and confidence, and the release
candidate carries the thresholds and their validation coverage/precision; a real class named ``unknown`` is a class,
not an abstention."""

import json

import numpy as np
import pytest
from kforge.healing.classifiers import UNKNOWN
from kforge.healing.config import HealingConfig
from kforge.healing.evaluate import scores
from kforge.healing.model import HealingModel, train_bundle
from kforge.healing.pyfunc import output_frame
from kforge.healing.scoring import score_model
from kforge.healing.train import classifier_candidate

from tests.unit.healing.test_generalize import _rows

LABEL = "label_root_cause"


@pytest.fixture(scope="module")
def trained() -> tuple[HealingModel, list[dict]]:
    rows = [{k: v for k, v in r.items() if k != "nb_source"} for r in _rows("x", 36)]   # no source: no gate training
    return train_bundle({"python": (rows[:24], (LABEL,), "group")}, kinds=("linear",)), rows[24:]


def test_held_out_coverage_comes_from_the_abstain_flags(trained: tuple[HealingModel, list[dict]]) -> None:
    model, test = trained
    lm = model.models["python"][LABEL]
    old = lm.abstain_threshold
    try:
        lm.abstain_threshold = 2.0            # above every confidence: it abstains on every row
        m = score_model(model, {"python": (test, (LABEL,))})
        assert m[f"test_python_{LABEL}_coverage"] == 0.0
        assert f"test_python_{LABEL}_answered_precision" not in m
        assert m[f"test_python_{LABEL}_accuracy"] > 0.5   # pred_ still holds the top-1 answer
        lm.abstain_threshold = 0.0            # answers every row
        m = score_model(model, {"python": (test, (LABEL,))})
        assert m[f"test_python_{LABEL}_coverage"] == 1.0
        assert m[f"test_python_{LABEL}_answered_precision"] == m[f"test_python_{LABEL}_accuracy"]
    finally:
        lm.abstain_threshold = old


def test_pyfunc_output_keeps_abstain_and_confidence(trained: tuple[HealingModel, list[dict]]) -> None:
    model, test = trained
    out = output_frame(model.classify([{"id": "a", "traceback": test[0]["traceback"]}]))
    preds = json.loads(out.loc[0, "predictions"])
    assert set(preds) == {LABEL, f"abstain_{LABEL}", f"confidence_{LABEL}"}
    assert isinstance(preds[f"abstain_{LABEL}"], bool) and 0.0 <= preds[f"confidence_{LABEL}"] <= 1.0


def test_candidate_metrics_carry_the_abstention_numbers() -> None:
    rows = [{k: v for k, v in r.items() if k != "nb_source"} for r in _rows("x", 48)]
    _, model, metrics, _ = classifier_candidate({"python": (rows, (LABEL,), "group")}, HealingConfig(members=("linear",)))
    lm = model.models["python"][LABEL]
    assert metrics[f"abstain_threshold_python_{LABEL}"] == lm.abstain_threshold
    assert metrics[f"train_oof_coverage_python_{LABEL}"] == lm.val_coverage
    assert np.isnan(lm.val_precision) or metrics[f"train_oof_precision_python_{LABEL}"] == lm.val_precision
    assert 0.0 <= metrics[f"test_python_{LABEL}_coverage"] <= 1.0


def test_a_class_named_unknown_is_an_answer_not_an_abstention() -> None:
    """JunoBench has a real root-cause class ``unknown``: predicting it is answering."""
    s = scores(["unknown", "typo"], ["unknown", "typo"])
    assert s["coverage"] == 1.0 and s["selective_accuracy"] == 1.0
    assert UNKNOWN != "unknown"
