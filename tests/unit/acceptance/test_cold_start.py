"""The commit model's cold-start mode (issue 16): rows of a repository the model never trained on are scored
with the stack's weight capped (``cold_weight``) against lines added, which transfers; rows of the training
repositories, or rows that name no repository, are scored exactly as before."""

import subprocess
import sys
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from kforge.acceptance.metrics import auc
from kforge.acceptance.model import COLD_START_WEIGHT, AcceptanceEnsemble
from kforge.acceptance.spec import COMMIT
from kforge.acceptance.train import TrainConfig, blend_args
from kforge.errors import InputError

DAY = 86400
SPEC = replace(COMMIT, numeric=("la", "x1"), categorical=())


def _repo(name: str, n: int, seed: int, habit: float) -> pl.DataFrame:
    """Size matters everywhere; ``x1`` is a local habit: it marks risky commits with sign ``habit``."""
    rng = np.random.default_rng(seed)
    la, x1 = rng.integers(1, 400, n).astype(float), rng.uniform(0, 1, n)
    risk = la / 400 + habit * (x1 - 0.5) + rng.normal(0, 0.25, n)
    bad = risk > np.quantile(risk, 0.75)
    return pl.DataFrame({"repo": [name] * n, "sha": [f"{name}{i:04d}" for i in range(n)],
                         "t": np.arange(n) * DAY, "la": la, "x1": x1, "y": bad.astype(np.int64)})


def _fit(cold: float | None, train: pl.DataFrame) -> AcceptanceEnsemble:
    return AcceptanceEnsemble(["la", "x1"], [], None, n_folds=2, n_estimators=30,
                              **blend_args(train, SPEC, 500.0, cold)).fit(train, train["y"].to_numpy())


def test_an_unseen_repository_leans_on_lines_added_and_seen_rows_do_not_move() -> None:
    home = _repo("home", 1500, 1, habit=1.5)         # x1 helps here ...
    other = _repo("other", 800, 2, habit=-1.5)       # ... and misleads in a repository with other habits
    off, on = _fit(None, home), _fit(COLD_START_WEIGHT, home)
    assert on.seen_groups == ("home",) and on.cold_start_weight == pytest.approx(COLD_START_WEIGHT)
    y = other["y"].to_numpy()
    # the stack alone carries the home habit into the other repository and loses to lines added there;
    # the cold-start mode keeps the model near size where its habits do not hold
    assert auc(y, off.predict_proba(other)) < auc(y, other["la"].to_numpy()) - 0.05
    assert auc(y, on.predict_proba(other)) > auc(y, off.predict_proba(other)) + 0.05
    assert on.unseen(other).all() and not on.unseen(home).any()
    # the training repository's rows, and rows naming no repository, are scored exactly as without the mode
    test_home = _repo("home", 300, 3, habit=1.5)
    np.testing.assert_array_equal(on.predict_proba(test_home), off.predict_proba(test_home))
    anon = other.with_columns(pl.lit(None, pl.String).alias("repo"))
    np.testing.assert_array_equal(on.predict_proba(anon), off.predict_proba(anon))
    np.testing.assert_array_equal(on.predict_proba(other.drop("repo")), off.predict_proba(other.drop("repo")))
    p = on.predict_proba(other)
    assert ((p > 0) & (p < 1)).all()


def test_the_cap_never_raises_a_weight_the_evidence_already_lowered() -> None:
    two = pl.concat([_repo("a", 600, 4, 1.0), _repo("b", 600, 5, 1.0)]).sort("t")
    m = _fit(0.9, two)
    assert m.prior_weight < 0.9 and m.cold_start_weight == m.prior_weight


def test_blend_args_one_rule_for_every_fit() -> None:
    one = _repo("a", 100, 6, 1.0)
    two = pl.concat([one, _repo("b", 100, 7, 1.0)])
    # one repository: no blend on its own rows, the cold-start mode for others
    assert blend_args(one, SPEC, 500.0, 0.3) == {"prior": "la", "prior_k": 0.0, "cold_weight": 0.3}
    assert blend_args(one, SPEC, 500.0, None) == {"prior": None, "prior_k": 0.0, "cold_weight": None}
    assert blend_args(two, SPEC, 500.0, 0.3) == {"prior": "la", "prior_k": 500.0, "cold_weight": 0.3}
    assert blend_args(two, SPEC, 0.0, None) == {"prior": None, "prior_k": 0.0, "cold_weight": None}
    # rows that name no repository cannot tell seen from unseen: no mode
    assert blend_args(one.drop("repo"), SPEC, 500.0, 0.3)["cold_weight"] is None


@pytest.mark.parametrize("w", [0.0, -0.1, 1.5])
def test_a_weight_outside_the_unit_interval_is_one_clear_error(w: float) -> None:
    with pytest.raises(InputError, match="cold_start_weight must be in"):
        TrainConfig(cold_start_weight=w)


def test_the_cli_flags_reach_the_config_and_a_bad_weight_is_one_line(tmp_path) -> None:  # noqa: ANN001
    from kforge.cli.acceptance import train_config
    from kforge.cli.main import build_parser

    from assets.acceptance import AcceptanceConfig

    parse = build_parser().parse_args
    assert train_config(parse(["acceptance", "train"])).cold_start_weight == COLD_START_WEIGHT
    assert train_config(parse(["acceptance", "train", "--cold-start-weight", "0.5"])).cold_start_weight == 0.5
    assert train_config(parse(["acceptance", "train", "--no-cold-start"])).cold_start_weight is None
    assert AcceptanceConfig(cold_start_weight=None).train_config() == train_config(
        parse(["acceptance", "train", "--no-cold-start"]))
    for bad, says in ((["--cold-start-weight", "2"], "cold_start_weight must be in"),
                      (["--cold-start-weight", "0.5", "--no-cold-start"], "contradict each other")):
        for cmd in (["evaluate", "loro"], ["train"]):
            r = subprocess.run([sys.executable, "-m", "kforge.cli.main", "--home", str(tmp_path / "h"), "acceptance",
                                *cmd, *bad], capture_output=True, text=True)
            assert r.returncode == 2 and r.stderr.startswith("kforge: error: ") and says in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) == 1


def test_the_served_pyfunc_takes_an_optional_repository(tmp_path) -> None:  # noqa: ANN001
    """What MLflow serves: the feature columns alone score as before; a frame naming an unseen repository gets the
    cold-start mode, as ``kforge acceptance score`` does."""
    from types import SimpleNamespace

    import mlflow.pyfunc
    from kforge.acceptance.release import model_saver

    home = _repo("home", 1200, 1, habit=1.5).with_columns(pl.lit("").alias("text"))
    other = _repo("other", 300, 2, habit=-1.5).with_columns(pl.lit("").alias("text"))
    model = _fit(COLD_START_WEIGHT, home)
    spec = replace(SPEC, text="text")
    model_saver(SimpleNamespace(spec=spec, split=SimpleNamespace(test=home.tail(50)), model=model))(tmp_path / "m")
    served = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    sig = served.metadata.get_input_schema()
    assert sig.optional_input_names() == ["repo"] and "repo" not in sig.required_input_names()
    feats = other.select(spec.feature_columns).to_pandas()
    np.testing.assert_allclose(served.predict(feats).iloc[:, 0].to_numpy(), model.predict_proba(other.drop("repo")))
    named = other.select(*spec.feature_columns, "repo").to_pandas()
    np.testing.assert_allclose(served.predict(named).iloc[:, 0].to_numpy(), model.predict_proba(other))
    assert model.unseen(other).all()


def test_the_champion_is_scored_with_the_repository_as_the_challenger_was(tmp_path) -> None:  # noqa: ANN001
    """Before: the release path re-scored the registered champion on the feature columns alone, so rows of a
    repository it never trained on lost the cold-start mode there, while the challenger's own score had it:
    the two were not scored alike."""
    from types import SimpleNamespace

    from kforge.acceptance.release import champion_scorer, model_saver

    home = _repo("home", 1200, 1, habit=1.5).with_columns(pl.lit("").alias("text"))
    other = _repo("other", 300, 2, habit=-1.5).with_columns(pl.lit("").alias("text"))
    model = _fit(COLD_START_WEIGHT, home)
    spec = replace(SPEC, text="text")
    model_saver(SimpleNamespace(spec=spec, split=SimpleNamespace(test=home.tail(50)), model=model))(tmp_path / "m")
    scored = champion_scorer(spec, other)(tmp_path / "m")
    y = other["y"].to_numpy()
    assert scored.score == pytest.approx(auc(y, model.predict_proba(other)))   # what the challenger's score uses
    assert scored.score != pytest.approx(auc(y, model.predict_proba(other.drop("repo"))))
