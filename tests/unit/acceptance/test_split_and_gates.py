"""Censoring-aware time splits, evaluation gates and the live error behind the feedback sensor."""

import numpy as np
import polars as pl
import pytest
from kforge.acceptance.dataset import time_split
from kforge.acceptance.live_error import recent_brier
from kforge.acceptance.spec import COMMIT
from kforge.acceptance.train import TrainConfig, evaluation_gates
from kforge.errors import InputError

DAY = 86400


def _frame() -> pl.DataFrame:
    t = np.arange(0, 1000) * DAY
    event = [int(x + 400 * DAY) if i % 4 == 0 else None for i, x in enumerate(t)]
    return pl.DataFrame({"sha": [f"s{i}" for i in range(1000)], "t": t, "event_ts": event},
                        schema_overrides={"event_ts": pl.Int64})


def test_split_excludes_censored_rows_and_labels_as_of_cutoff() -> None:
    s = time_split(_frame(), cutoff_ts=500 * DAY, min_observation_days=100, snapshot_ts=1000 * DAY)
    assert int(s.train["t"].max()) <= 400 * DAY            # younger than 100 days at the cutoff: excluded
    assert s.excluded_censored_train == 99              # rows 401..499
    # fixes that landed after the cutoff are not known to the training labels
    assert s.train.filter(pl.col("y"))["event_ts"].max() < 500 * DAY
    assert int(s.test["t"].min()) >= 500 * DAY and int(s.test["t"].max()) <= 900 * DAY
    assert s.excluded_censored_test == 99
    snap = time_split(_frame(), cutoff_ts=500 * DAY, min_observation_days=100, snapshot_ts=1000 * DAY,
                      train_labels="snapshot")
    assert snap.train["y"].sum() > s.train["y"].sum()


def test_split_rejects_bad_inputs() -> None:
    with pytest.raises(InputError, match="ends before it starts"):
        time_split(_frame(), cutoff_ts=500 * DAY, test_end_ts=400 * DAY)
    with pytest.raises(InputError, match="train_labels"):
        time_split(_frame(), cutoff_ts=500 * DAY, train_labels="future")
    with pytest.raises(InputError, match="too few"):
        time_split(_frame().head(5), min_observation_days=1)


def _metrics(model: float, la: float, lr: float, n: int = 500, pos: int = 80) -> dict[str, float]:
    return {"test_roc_auc": model, "test_roc_auc_lines_added": la, "test_roc_auc_plain_lr": lr,
            "test_n": float(n), "test_positives": float(pos)}


def _gates(*args, **kw) -> dict[str, bool | None]:  # noqa: ANN002, ANN003
    return {c.name: c.passed for c in evaluation_gates(*args, **kw)}


def test_gates_block_on_baselines_size_and_leaks() -> None:
    s = time_split(_frame().with_columns(pl.lit(1.0).alias("la")), cutoff_ts=500 * DAY, min_observation_days=100,
                   snapshot_ts=1000 * DAY)
    ok = _gates(s, COMMIT, _metrics(0.8, 0.7, 0.75), TrainConfig(), pit_passed=True)
    # the standard gate names of the release path, nothing else (generalizes comes from leaving
    # repositories out, in the release step; beats_champion from the registry)
    assert list(ok) == [g.name for g in COMMIT.model.gate_specs() if g.name not in ("beats_champion", "generalizes", "saved_model_reproduces")]
    assert all(v is True for v in ok.values()), ok  # no_future_features too: the point-in-time check passed
    worse = _gates(s, COMMIT, _metrics(0.7, 0.72, 0.69), TrainConfig(), True)
    assert worse["beats_lines_added"] is False and worse["beats_plain_lr"] is True
    small = _gates(s, COMMIT, _metrics(0.8, 0.7, 0.7, n=100, pos=3), TrainConfig(), True)
    assert small["test_size"] is False
    assert _gates(s, COMMIT, _metrics(0.8, 0.7, 0.7), TrainConfig(), False)["no_future_features"] is False
    # a baseline that could not be scored is a gate that did not run, never a pass
    assert _gates(s, COMMIT, _metrics(0.8, float("nan"), 0.7), TrainConfig(), True)["beats_lines_added"] is None


def test_split_holds_says_which_labels_the_training_rows_had() -> None:
    """With ``train_labels="snapshot"`` (fixes after the cutoff label training rows) the gate's
    detail used to say "train labels as of cutoff: True"."""
    frame = _frame().with_columns(pl.lit(1.0).alias("la"))
    for labels, said, not_said in (("snapshot", "snapshot (fixes after the cutoff used", "as of cutoff: True"),
                                   ("as_of_cutoff", "train labels as of cutoff: True", "snapshot")):
        s = time_split(frame, cutoff_ts=500 * DAY, min_observation_days=100, snapshot_ts=1000 * DAY,
                       train_labels=labels)
        gate = next(c for c in evaluation_gates(s, COMMIT, _metrics(0.8, 0.7, 0.75), TrainConfig(), True)
                    if c.name == "split_holds")
        assert said in gate.detail and not_said not in gate.detail, gate.detail


def _feedback(ids: list[int], outcome: bool = True, p: float | None = None) -> pl.DataFrame:
    return pl.DataFrame({"feedback_id": ids, "target": ["commit"] * len(ids), "item_id": [f"s{i}" for i in ids],
                         "outcome": [outcome] * len(ids), "p_predicted": [p] * len(ids)},
                        schema_overrides={"p_predicted": pl.Float64})


def test_live_brier_of_the_feedback_rows() -> None:
    """The acceptance sensor's drift input (the decision itself is kforge.feedback.retrain.decide)."""
    # the champion said 0.05 for commits that were fixed: Brier 0.9
    live = recent_brier(_feedback([1, 2, 3], p=0.05), None)
    assert live is not None and live[0] == pytest.approx(0.9025) and live[1] == 3
    assert recent_brier(_feedback([1, 2, 3]), None) is None  # nothing to score them with
    preds = pl.DataFrame({"target": ["commit"] * 3, "item_id": ["s1", "s2", "s3"], "p": [0.95, 0.9, 0.97]})
    calm = recent_brier(_feedback([1, 2, 3]), preds)
    assert calm is not None and calm[0] < 0.01


@pytest.mark.parametrize(("with_diff", "used"), [(100, True), (95, True), (40, False)])
def test_diff_features_need_training_coverage(with_diff: int, used: bool) -> None:
    from kforge.acceptance.train import usable_numeric
    from kforge.features.diff import DIFF_NUMERIC

    train = pl.DataFrame({"has_diff": [1.0] * with_diff + [0.0] * (100 - with_diff)})
    numeric, coverage = usable_numeric(train, COMMIT.numeric, 0.9)
    assert coverage == pytest.approx(with_diff / 100)
    assert (set(DIFF_NUMERIC) <= set(numeric)) is used
    assert "la" in numeric and "exp" in numeric


@pytest.mark.parametrize(("with_origins", "used"), [(100, True), (90, True), (89, False), (None, False)])
def test_line_origin_features_need_training_coverage(with_origins: int | None, used: bool) -> None:
    from kforge.acceptance.train import usable_numeric
    from kforge.features.line_origins import LINE_ORIGIN_NUMERIC

    cols = {"has_diff": [1.0] * 100}
    if with_origins is not None:
        cols["has_line_origins"] = [1.0] * with_origins + [0.0] * (100 - with_origins)
    numeric, _ = usable_numeric(pl.DataFrame(cols), COMMIT.numeric, 0.9)
    assert (set(LINE_ORIGIN_NUMERIC) <= set(numeric)) is used
    assert not (set(LINE_ORIGIN_NUMERIC) & set(numeric)) or used
    assert "la" in numeric


@pytest.mark.parametrize(("field", "value", "message"), [
    ("test_fraction", 0.0, "test_fraction"), ("test_fraction", 1.5, "test_fraction"),
    ("test_fraction", -0.2, "test_fraction"), ("n_folds", 0, "n_folds"), ("n_estimators", 0, "n_estimators"),
    ("generalizes_n_estimators", 0, "generalizes_n_estimators"), ("generalizes_min_class", 0, "generalizes_min_class"),
    ("min_observation_days", -5, "min_observation_days"), ("min_test_rows", -1, "min_test_rows"),
])
def test_config_rejects_values_that_would_crash_or_mislabel_the_split(field: str, value: float, message: str) -> None:
    """Used to escape as IndexError / ValueError tracebacks (0 held out, no folds, no trees), or to
    train silently on a meaningless split (test_fraction 1.5 held out half the rows; a negative
    observation window labelled still-censored rows as negatives)."""
    with pytest.raises(InputError, match=message):
        TrainConfig(**{field: value})


def test_no_out_of_fold_rows_is_an_input_error() -> None:
    """The first folds' rows (time order) with one class only: no fold can be predicted (it used to
    end in numpy's 'need at least one array to concatenate')."""
    from kforge.acceptance.model import AcceptanceEnsemble

    n = 120
    df = pl.DataFrame({"la": np.arange(n, dtype=float), "x": np.ones(n)})
    y = np.zeros(n, dtype=np.int64)
    y[-10:] = 1  # positives only in the last quarter: every fold's training part is all negative
    with pytest.raises(InputError, match="out-of-fold"):
        AcceptanceEnsemble(["la", "x"], [], None, n_folds=3, n_estimators=5).fit(df, y)
