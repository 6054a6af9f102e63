import numpy as np
import pandas as pd
from kforge.healing.bandit import ThompsonBandit, replay
from kforge.healing.classifiers import UNKNOWN, choose_threshold, fit_calibrated, temper
from kforge.healing.effectiveness import evaluate_effectiveness
from kforge.healing.hybrid import reconcile
from kforge.healing.templates import Drain, grouping_accuracy


def test_grouping_accuracy_and_drain():
    assert grouping_accuracy(["a", "a", "b"], [1, 1, 2]) == 1.0
    assert grouping_accuracy(["a", "a", "b"], [1, 1, 1]) == 0.0
    msgs = [f"Receiving block blk_{i} src: /10.0.0.{i}:50010 dest: /10.0.0.9:50010" for i in range(5)]
    msgs += [f"Deleting block blk_{i} file /data/{i}" for i in range(5)]
    d = Drain()
    pred = d.fit(msgs)
    assert grouping_accuracy(["r"] * 5 + ["d"] * 5, pred) == 1.0
    assert d.match("Deleting block blk_99 file /data/7") == pred[-1]


def test_threshold_and_temperature():
    conf = np.array([0.9, 0.8, 0.3, 0.2])
    correct = np.array([True, True, False, False])
    assert choose_threshold(conf, correct) == 0.8
    p = np.array([[0.7, 0.3]])
    assert temper(p, 2.0)[0, 0] < 0.7 < temper(p, 0.5)[0, 0]


def _frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    n = len(rows)
    return pd.DataFrame({"head": [r[0] for r in rows], "context": ["ctx_python"] * n, "rule": ["rule_none"] * n,
                         "raw": [r[0] for r in rows]})


def test_calibrated_ensemble_learns_and_abstains():
    """Trained on 60 rows, judged on 30 rows it never saw: their noise words (w50-w99) never occur in
    training, so only the exception head can carry the class."""
    rng = np.random.default_rng(0)
    heads = ["exc_KeyError missing key", "exc_NameError name not defined", "exc_ValueError bad value"]
    rows = [(heads[i % 3] + f" w{rng.integers(50)}", f"c{i % 3}", f"g{i}") for i in range(60)]
    held = [(heads[i % 3] + f" w{50 + rng.integers(50)}", f"c{i % 3}", f"h{i}") for i in range(30)]
    y = np.array([r[1] for r in rows])
    ens, _ = fit_calibrated(_frame(rows), y, np.array([r[2] for r in rows]), kinds=("linear",))
    labels, conf = ens.predict(_frame(held), abstain=False)
    assert labels == [r[1] for r in held]
    assert (conf > 1 / 3).all()   # more sure than a uniform guess over the three classes
    ens.threshold = 1.01
    assert ens.predict(_frame(held[:2]))[0] == [UNKNOWN, UNKNOWN]


def test_reconcile_modes():
    p, classes = np.array([0.6, 0.4]), ["a", "b"]
    assert reconcile("rules_only", None, 0.0, p, classes, 0.5)[0] == UNKNOWN
    assert reconcile("ml_fallback", "b", 0.5, p, classes, 0.5)[0] == "b"
    assert reconcile("arbitration", "b", 0.5, p, classes, 0.5)[0] == "a"
    assert reconcile("arbitration", "b", 0.9, p, classes, 0.5)[0] == "b"
    assert reconcile("ml_only", "b", 0.9, p, classes, 0.7)[0] == UNKNOWN
    # a class the model never saw: only the rule can name it, however confident the model is
    assert reconcile("arbitration", "c", 0.3, np.array([0.95, 0.05]), classes, 0.5)[:2] == ("c", 0.3)
    assert reconcile("ensemble", "c", 0.3, np.array([0.95, 0.05]), classes, 0.5)[0] == "c"
    assert reconcile("ensemble", "b", 0.9, p, classes, 0.0)[0] == "b"


def test_bandit_learns_best_arm_and_replay_regret():
    outcomes = []
    for e in range(30):
        outcomes += [{"error_id": f"e{e}", "error_class": "k", "strategy": "good", "success": e % 10 != 0},
                     {"error_id": f"e{e}", "error_class": "k", "strategy": "bad", "success": e % 5 == 0}]
    b = ThompsonBandit().fit(outcomes)
    assert b.mean("k", "good") > b.mean("k", "bad")
    assert b.mean("new-class", "good") > b.mean("new-class", "bad")   # prior borrows across classes
    r = replay(outcomes, steps=400, seeds=(0, 1))
    assert r["regret_thompson"] < r["regret_random"]
    assert r["always_best"] >= r["thompson"] > r["random"]


def test_effectiveness_beats_constant_when_signal_exists():
    outcomes = [{"error_id": f"e{i}", "program": f"p{i}", "error_class": "c", "exc_type": "KeyError",
                 "strategy": s, "success": s == "dict-get-default"} for i in range(20) for s in ("dict-get-default", "guard-try")]
    res = evaluate_effectiveness(outcomes)
    assert res["model"]["brier"] < res["constant_0.7"]["brier"]
