"""The acceptance family through the one release path, on a small synthetic frame: the champion
is scored from the registry on the challenger's own held-out rows; a champion that cannot be
scored blocks promotion with the reason recorded (it used to be swallowed); identical data
registers nothing (it used to register a duplicate version)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from kforge.acceptance.release import candidate
from kforge.acceptance.spec import COMMIT
from kforge.acceptance.train import TrainConfig, train_and_evaluate
from kforge.config import Paths
from kforge.registry import Tracker, aliases, release
from kforge.registry.heldout import rows_digest

DAY = 86400
SPEC = replace(COMMIT, numeric=("la", "x1", "x2", "old"), categorical=("subsystem",))
CFG = TrainConfig(min_observation_days=30, test_fraction=0.3, n_estimators=20, n_folds=2, use_text=False,
                  min_test_rows=50, min_test_class=5)


def _frame(n: int = 700) -> pl.DataFrame:
    rng = np.random.default_rng(3)
    x1, x2 = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    bad = ((x1 > 0.6) & (x2 > 0.5)) | (rng.uniform(0, 1, n) < 0.08)  # an interaction: trees beat a line
    t = np.arange(n) * DAY
    return pl.DataFrame({
        "sha": [f"c{i:04d}" for i in range(n)], "t": t,
        "event_ts": [int(ti + 5 * DAY) if b else None for ti, b in zip(t, bad, strict=True)],
        "la": rng.integers(1, 200, n).astype(float), "x1": x1, "x2": x2, "old": rng.normal(size=n),
        "subsystem": rng.choice(["net", "mm", "fs"], n), "text": ["fix a thing"] * n,
    }, schema_overrides={"event_ts": pl.Int64})


@pytest.fixture()
def tracker(kforge_home: Path) -> Tracker:
    return Tracker(Paths.of(kforge_home))


def _release(tracker: Tracker, frame: pl.DataFrame, tmp: Path, spec=SPEC, cfg: TrainConfig = CFG):  # noqa: ANN001, ANN202
    res = train_and_evaluate(frame, spec, cfg)
    cand, _ = candidate(res, tmp)
    return res, release(tracker, cand)


def _tags(tracker: Tracker, version: int) -> dict[str, str]:
    return tracker.client().get_model_version(SPEC.model_name, str(version)).tags


def test_identical_data_registers_nothing_and_champion_is_scored_on_the_same_rows(tracker: Tracker,
                                                                                   tmp_path: Path) -> None:
    frame = _frame()
    res, r1 = _release(tracker, frame, tmp_path / "a")
    assert r1.version == 1 and r1.decision in ("promoted", "blocked")
    assert r1.eval_rows == res.split.test.height and r1.eval_rows_digest == rows_digest(res.split.test["sha"])
    assert {c.name for c in r1.checks} == {g.name for g in SPEC.model.gate_specs()}
    assert r1.baselines.keys() == {"lines_added", "plain_lr"}
    # a nightly retrain on the same rows: the same model, nothing registered
    _, again = _release(tracker, frame.sample(fraction=1.0, shuffle=True, seed=1), tmp_path / "b")
    assert again.decision == "unchanged" and again.version == 1
    assert len(tracker.client().search_model_versions(f"name='{SPEC.model_name}'")) == 1
    if tracker.champion(SPEC.model_name) is None:
        aliases.promote(tracker.client(), SPEC.model_name, 1, "test: a champion to compare with")
    # other params: a new version, and the champion (loaded from the registry) is scored on its rows
    _, r2 = _release(tracker, frame, tmp_path / "c", cfg=replace(CFG, n_estimators=25))
    assert r2.version == 2 and r2.champion_version == 1 and r2.champion_score is not None
    t = _tags(tracker, 2)
    assert t["kforge.gate.champion_eval_rows_digest"] == t["kforge.eval_rows_digest"] == r2.eval_rows_digest
    assert r2.check("beats_champion").passed is not None


def test_champion_on_other_feature_columns_blocks_with_the_reason(tracker: Tracker, tmp_path: Path) -> None:
    frame = _frame()
    _, r1 = _release(tracker, frame, tmp_path / "a")
    if tracker.champion(SPEC.model_name) is None:
        aliases.promote(tracker.client(), SPEC.model_name, r1.version, "test: a champion to compare with")
    # the feature set changed: the champion needs "old", which the new feature columns lack
    _, r2 = _release(tracker, frame, tmp_path / "b", spec=replace(SPEC, numeric=("la", "x1", "x2")))
    assert r2.decision == "blocked" and r2.version == 2
    assert "could not be scored" in r2.reason and "old" in r2.reason
    assert r2.check("beats_champion").passed is False
    t = _tags(tracker, 2)
    assert t["kforge.gate.decision"] == "blocked" and "could not be scored" in t["kforge.gate.reason"]
    assert int(tracker.champion(SPEC.model_name).version) == 1
