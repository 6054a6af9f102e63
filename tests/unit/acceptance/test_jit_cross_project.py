"""The JIT anchors cross-project check on small synthetic projects written in the anchors' own
layout: each project is scored on its last 20% by a model fit only on the other projects' first
80%, a project where the others' lesson does not hold is named as the loser and fails the check,
and missing or malformed anchors give one clear error."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from kforge.acceptance.jit_cross import jit_cross_frames, jit_cross_project, jit_projects, read_jit_anchor
from kforge.errors import InputError
from kforge.features.jit import JIT_COLUMNS

N = 400


def _write(root: Path, name: str, seed: int, flip: bool = False) -> None:
    """A project whose commits are buggy when large *and* by an inexperienced author (``exp`` adds
    what lines-added lacks); ``flip``: the opposite lesson on ``exp`` (experienced authors break it)."""
    rng = np.random.default_rng(seed)
    cols = {c: rng.uniform(0, 10, N) for c in JIT_COLUMNS}
    cols["la"] = rng.integers(1, 400, N).astype(float)
    cols["exp"] = rng.uniform(0, 1, N)
    risk = cols["la"] / 400 + ((cols["exp"]) if flip else (1 - cols["exp"]))
    bug = ((risk > 1.0) | (rng.uniform(0, 1, N) < 0.05)).astype(int)
    df = pl.DataFrame({"": np.arange(N), "_id": [f"{name}{i}" for i in range(N)],
                       "date": np.sort(rng.integers(1_400_000_000, 1_500_000_000, N)), "bug": bug, "__": bug,
                       **{("entrophy" if c == "entropy" else c): v for c, v in cols.items()}})
    (root / "jit_anchors").mkdir(exist_ok=True)
    df.write_csv(root / "jit_anchors" / f"{name}_k_feature.csv")


@pytest.fixture()
def anchors(tmp_path: Path) -> Path:
    for i, name in enumerate(("alpha", "beta", "gamma")):
        _write(tmp_path, name, seed=i)
    _write(tmp_path, "odd", seed=9, flip=True)
    return tmp_path


def test_each_project_is_scored_on_its_last_fifth_by_a_model_that_never_saw_it(anchors: Path) -> None:
    assert jit_projects(anchors) == ["alpha", "beta", "gamma", "odd"]
    one = read_jit_anchor(anchors, "alpha")
    assert "__" not in one.columns and {"entropy", "t", "y", "repo"} <= set(one.columns)  # label copy dropped
    train, test = jit_cross_frames(anchors)
    assert train.height == 4 * int(N * 0.8) and test.height == 4 * (N - int(N * 0.8))
    for name in ("alpha", "odd"):  # within a project, every training row is older than every test row
        assert train.filter(pl.col("repo") == name)["t"].max() <= test.filter(pl.col("repo") == name)["t"].min()

    g = jit_cross_project(anchors, n_estimators=20, prior_k=0.0, min_class=5)
    t = {r["repo"]: r for r in g.table.iter_rows(named=True)}
    assert set(t) == {"alpha", "beta", "gamma", "odd"} and all(r["status"] == "judged" for r in t.values())
    for name, row in t.items():
        assert row["n_train"] == train.filter(pl.col("repo") != name).height  # the others' training rows only
        assert row["n_test"] == test.filter(pl.col("repo") == name).height
    # the shared lesson transfers: the model beats lines-added on the projects that follow it ...
    for name in ("alpha", "beta", "gamma"):
        assert t[name]["model_auc"] > t[name]["lines_added_auc"]
    # ... and loses where a project's history says the opposite, which fails the check and names it
    assert t["odd"]["model_auc"] < t["odd"]["lines_added_auc"]
    assert g.check.passed is False and g.check.detail.startswith("loses on odd; worst project odd")
    assert g.check.numbers["worst_delta"] == pytest.approx(t["odd"]["delta"], abs=1e-4)
    assert g.check.numbers["mean_model"] == pytest.approx(np.mean([r["model_auc"] for r in t.values()]), abs=1e-4)


def test_without_the_odd_project_the_check_passes(anchors: Path) -> None:
    (anchors / "jit_anchors" / "odd_k_feature.csv").unlink()
    g = jit_cross_project(anchors, n_estimators=20, min_class=5)  # with the cold-start blend, as shipped
    assert g.check.passed is True and g.check.numbers["groups"] == 3 and "worst project" in g.check.detail


def test_missing_or_malformed_anchors_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no JIT anchors"):
        jit_projects(tmp_path)
    (tmp_path / "jit_anchors").mkdir()
    pl.DataFrame({"date": [1, 2], "bug": [0, 1], "la": [1, 2]}).write_csv(tmp_path / "jit_anchors" / "x_k_feature.csv")
    with pytest.raises(InputError, match="lacks the columns ns, nd"):
        read_jit_anchor(tmp_path, "x")
    with pytest.raises(InputError, match="not found"):
        read_jit_anchor(tmp_path, "y")
