"""``kforge acceptance``: a user's wrong input ends as one ``kforge: error:`` line (exit 2), not a
traceback: options out of range, an input file that is not what its name says."""

from pathlib import Path

import pytest
from kforge.cli.main import main


def _one_line(err: str, *needles: str) -> None:
    assert err.startswith("kforge: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize(("flag", "value"), [("--test-fraction", "0"), ("--test-fraction", "1.5"),
                                             ("--n-folds", "0"), ("--n-estimators", "0")])
def test_train_option_out_of_range_is_one_error_line(kforge_home: Path, capsys: pytest.CaptureFixture[str],
                                                     flag: str, value: str) -> None:
    assert main(["--home", str(kforge_home), "acceptance", "train", flag, value]) == 2
    _one_line(capsys.readouterr().err, flag[2:].replace("-", "_"))


@pytest.mark.parametrize("target", ["auto", "commit", "email"])
def test_score_input_that_is_not_parquet_is_one_error_line(kforge_home: Path, tmp_path: Path, target: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.parquet"
    src.write_text("not a parquet file")
    rc = main(["--home", str(kforge_home), "acceptance", "score", "--input", str(src),
               "--output", str(tmp_path / "o.parquet"), "--target", target])
    assert rc == 2
    _one_line(capsys.readouterr().err, "in.parquet is not a readable parquet file")
    assert not (tmp_path / "o.parquet").exists()


def test_evaluate_with_no_trees_is_one_error_line(kforge_home: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The suites that build the ensemble themselves (jit, cross, jit-cross) used to end in LightGBM's
    'Number of boosting rounds must be greater than 0' traceback."""
    import polars as pl
    from kforge.features.jit import JIT_COLUMNS

    (tmp_path / "jit_anchors").mkdir()
    n = 40
    pl.DataFrame({"date": list(range(n)), "bug": [i % 3 == 0 for i in range(n)],
                  **{c: [float(i % 7) for i in range(n)] for c in JIT_COLUMNS}}).write_csv(
        tmp_path / "jit_anchors" / "qt_k_feature.csv")
    rc = main(["--home", str(kforge_home), "--data", str(tmp_path), "acceptance", "evaluate", "jit",
               "--n-estimators", "0"])
    assert rc == 2
    _one_line(capsys.readouterr().err, "n_estimators must be at least 1")
