from pathlib import Path

import polars as pl
import pytest
from kforge.commits.chains import build_chains, commit_labels
from kforge.errors import InputError
from kforge.git.importer import import_commits
from kforge.storage import Warehouse


@pytest.mark.parametrize(("name", "min_agreement"), [("libbpf", 0.98), ("bpftool", 0.98), ("btrfs-progs", 0.98)])
def test_import_real_tables_and_chains_match_their_labels(shared_data: Path, tmp_path: Path, name: str,
                                                          min_agreement: float) -> None:
    src = shared_data / "kernel" / f"{name}.commits.parquet"
    wh = Warehouse(tmp_path / "w.duckdb")
    res = import_commits(src, wh)
    ref = pl.read_parquet(src, columns=["sha", "fixed_later", "reverted", "n_files", "lines_added"])
    assert res["commits_added"] == ref.height
    assert import_commits(src, wh)["commits_added"] == 0  # idempotent
    commits = wh.read_table("commits")
    assert commits["lines_added"].sum() == ref["lines_added"].sum()
    labels = commit_labels(commits, build_chains(commits)).join(ref, on="sha", suffix="_ref")
    for col in ("fixed_later", "reverted"):
        agreement = (labels[col] == labels[f"{col}_ref"]).mean()
        assert agreement >= min_agreement, (col, agreement)
    # positives found by kforge are (almost all) positives in the reference
    tp = labels.filter(pl.col("fixed_later") & pl.col("fixed_later_ref")).height
    assert tp >= 0.85 * labels["fixed_later"].sum()


def test_import_rejects_wrong_schema(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    pl.DataFrame({"sha": ["a"], "subject": ["x"]}).write_parquet(bad)
    wh = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(InputError, match="lacks required commit columns"):
        import_commits(bad, wh)
    notparquet = tmp_path / "x.parquet"
    notparquet.write_text("hello")
    with pytest.raises(InputError, match="not a readable parquet"):
        import_commits(notparquet, wh)
    with pytest.raises(InputError, match="no such file"):
        import_commits(tmp_path / "missing.parquet", wh)
    assert not wh.has_table("commits")
