"""``kforge import-commits FILE --diffs DIFFS``: an imported table's diffs are checked with it, stored in the same
transaction (exactly once), and reach the diff corpus (``commit_diffs``) and the generation corpus."""

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "generation"))  # gen_synthetic, also when run alone
from gen_synthetic import make_rows  # noqa: E402
from kforge.cli.main import main  # noqa: E402
from kforge.commits.diffs_table import collect_diffs  # noqa: E402
from kforge.config import Paths  # noqa: E402
from kforge.errors import InputError  # noqa: E402
from kforge.generation.corpus import CorpusConfig, corpus_for  # noqa: E402
from kforge.git.importer import DIFFS_TABLE, import_commits  # noqa: E402
from kforge.storage import Warehouse  # noqa: E402

from tests.unit.generation.test_corpus_sources import _commits_table, _ext_rows  # noqa: E402


def _files(tmp_path: Path, n_diffs: int = 45) -> tuple[Path, Path, pl.DataFrame]:
    ext = _ext_rows()
    table = tmp_path / "ext.commits.parquet"
    _commits_table(ext).write_parquet(table)
    diffs = tmp_path / "elsewhere" / "ext.diffs.parquet"
    diffs.parent.mkdir()
    ext.head(n_diffs).drop("author_email", "author_name").write_parquet(diffs)
    return table, diffs, ext


def test_diffs_are_stored_once_and_reach_both_corpora(tmp_path: Path) -> None:
    table, diffs, ext = _files(tmp_path)
    wh = Warehouse(tmp_path / "w.duckdb")
    clone = make_rows(120, seed=3)
    wh.replace("commit_diffs", clone.drop("author_email", "author_name"))
    wh.replace("commits", clone.select("repo", "sha", "author_email", "author_name", pl.lit("git").alias("source")))
    res = import_commits(table, wh, diffs=diffs)
    assert res["commits_added"] == ext.height and res["diffs_added"] == 45
    assert import_commits(table, wh, diffs=diffs)["diffs_added"] == 0          # exactly once
    assert wh.count(DIFFS_TABLE) == 45
    # the generation corpus holds them without any extra file (before commit_diffs is rebuilt)
    corpus, rep = corpus_for(wh, CorpusConfig())
    imported = corpus.filter(pl.col("origin") == "import")
    assert set(imported["repo"]) == {"ext"} and imported.height == 45 - 1      # minus the bot's commit
    assert rep.imported_without_diff == ext.height - 45
    # and the diff corpus (the commit_diffs asset's builder) includes them
    built, _ = collect_diffs(wh, None, max_commits=1000, max_bytes=65536)
    assert built.filter(pl.col("repo") == "ext").height == 45


def test_a_repo_override_applies_to_the_diffs(tmp_path: Path) -> None:
    table, diffs, _ = _files(tmp_path, n_diffs=5)
    wh = Warehouse(tmp_path / "w.duckdb")
    import_commits(table, wh, repo="renamed", diffs=diffs)
    assert set(wh.read_table(DIFFS_TABLE)["repo"]) == {"renamed"}


@pytest.mark.parametrize("problem", ["missing", "not_parquet", "no_diff_column", "foreign_sha"])
def test_a_bad_diffs_file_writes_nothing(tmp_path: Path, problem: str) -> None:
    table, diffs, _ = _files(tmp_path)
    if problem == "missing":
        diffs = tmp_path / "none.diffs.parquet"
    elif problem == "not_parquet":
        diffs.write_text("not parquet")
    elif problem == "no_diff_column":
        pl.read_parquet(diffs).drop("diff").write_parquet(diffs)
    else:
        df = pl.read_parquet(diffs)
        df.with_columns(pl.when(pl.int_range(df.height) == 0).then(pl.lit("f" * 40)).otherwise(pl.col("sha"))
                        .alias("sha")).write_parquet(diffs)
    wh = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(InputError, match=str(diffs.name)):
        import_commits(table, wh, diffs=diffs)
    assert not wh.has_table("commits") and not wh.has_table(DIFFS_TABLE)      # all or nothing


def test_cli_diffs_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table, diffs, _ = _files(tmp_path, n_diffs=7)
    home = tmp_path / "home"
    assert main(["--home", str(home), "import-commits", str(table), "--diffs", str(diffs)]) == 0
    assert '"diffs_added": 7' in capsys.readouterr().out
    assert main(["--home", str(home), "import-commits", str(table), str(table), "--diffs", str(diffs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kforge: error: --diffs belongs to one commits table")
    assert Warehouse(Paths.of(home).warehouse).count(DIFFS_TABLE) == 7
