"""The generation corpus from every source the platform knows: ingested clones (``commit_diffs`` of a
registered repository), commit tables loaded by ``kforge import-commits`` with their diffs file, and
reviewer feedback, each row tagged with its ``origin``."""

import polars as pl
import pytest
from gen_synthetic import make_rows
from kforge.errors import InputError
from kforge.feedback.store import add_feedback
from kforge.generation.corpus import CorpusConfig, check_time_split, corpus_for
from kforge.git.importer import import_commits
from kforge.storage import Warehouse

N_EXT, N_EXT_DIFFS = 60, 45


def _ext_rows() -> pl.DataFrame:
    """An imported repository's commits (distinct shas and messages from the clone's)."""
    return make_rows(N_EXT, seed=11).head(N_EXT).with_columns(
        pl.lit("ext").alias("repo"), ("5" + pl.col("sha").str.slice(1)).alias("sha"),
        pl.col("body").str.replace("This patch", "The ext patch"))


def _commits_table(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` in the schema of ``*.commits.parquet`` (what ``kforge import-commits`` reads); the
    first row's author is a bot, known only from this table."""
    ts = rows["author_date"].str.to_datetime("%Y-%m-%dT%H:%M:%S%z").dt.epoch("s")
    email = rows["author_email"].to_list()
    email[0] = "ci-bot@example.org"
    return pl.DataFrame({
        "sha": rows["sha"], "parents": [["a" * 40]] * rows.height, "author_name": rows["author_name"],
        "author_email": email, "author_date": rows["author_date"], "author_ts": ts,
        "committer_name": rows["author_name"], "committer_email": email, "committer_date": rows["author_date"],
        "committer_ts": ts, "subject": rows["subject"], "body": rows["body"],
        "files": [[{"path": "drivers/x.c", "added": 1, "deleted": 0, "binary": False}]] * rows.height,
    })


@pytest.fixture()
def warehouse(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    clone = make_rows(120, seed=3)                      # the ingested clone's diffs, in commit_diffs
    wh.replace("commit_diffs", clone.drop("author_email", "author_name"))
    wh.replace("commits", clone.select("repo", "sha", "author_email", "author_name",
                                       pl.lit("git").alias("source")))
    wh.replace("repositories", pl.DataFrame({"repo": ["demo"], "path": [str(tmp_path / "demo")]}))
    ext = _ext_rows()
    table = tmp_path / "ext.commits.parquet"
    _commits_table(ext).write_parquet(table)
    import_commits(table, wh)                           # what `kforge import-commits` writes: no diffs
    diffs = tmp_path / "imported" / "ext.diffs.parquet"   # its diffs file, away from any sibling commits table
    diffs.parent.mkdir()
    ext.head(N_EXT_DIFFS).drop("author_email", "author_name").write_parquet(diffs)
    add_feedback("generation", {"verdict": "edit", "generated_message": "net/ice: fix",
                                "final_message": "net/ice: fix Rx queue leak\n\nFree the queue on stop.",
                                "diff": clone["diff"][0], "reviewer": "alice"}, wh, anonymize=False)
    return wh, diffs


def test_every_source_becomes_rows_with_its_origin(warehouse):
    wh, diffs = warehouse
    corpus, rep = corpus_for(wh, CorpusConfig(diff_files=(str(diffs),)))
    by = dict(corpus.group_by("origin").len().iter_rows())
    assert set(by) == {"clone", "import", "feedback"}
    assert rep.origins == {"clone": by["clone"], "import": by["import"], "file": 0, "feedback": 1}
    imported = corpus.filter(pl.col("origin") == "import")
    assert set(imported["repo"]) == {"ext"}
    # the bot is known only from the imported commits table: joined, then dropped
    assert _ext_rows()["sha"][0] not in imported["sha"].to_list()
    assert imported.height == N_EXT_DIFFS - 1
    # imported commits with no diff in any source are counted, not silently missing
    assert rep.imported_without_diff == N_EXT - N_EXT_DIFFS
    # feedback trains only; every repository is cut by time on its own, the imported one included
    assert corpus.filter(pl.col("origin") == "feedback")["split"].to_list() == ["train"]
    assert {"demo", "ext"} <= set(rep.repos) and rep.repos["ext"]["test"] > 0
    ok, why = check_time_split(corpus)
    assert ok, why


def test_without_the_diffs_file_the_imported_commits_are_reported_missing(warehouse):
    wh, _ = warehouse
    corpus, rep = corpus_for(wh, CorpusConfig())
    assert "ext" not in set(corpus["repo"]) and rep.imported_without_diff == N_EXT
    assert rep.origins["clone"] == corpus.filter(pl.col("source") == "commit").height


def test_a_diff_in_both_commit_diffs_and_a_file_counts_once(warehouse, tmp_path):
    wh, diffs = warehouse
    again = tmp_path / "again.diffs.parquet"
    pl.read_parquet(diffs).write_parquet(again)
    once, _ = corpus_for(wh, CorpusConfig(diff_files=(str(diffs),)))
    twice, _ = corpus_for(wh, CorpusConfig(diff_files=(str(diffs), str(again))))
    assert once["sha"].sort().to_list() == twice["sha"].sort().to_list()


def test_no_source_at_all_is_one_input_error(tmp_path):
    with pytest.raises(InputError, match="no commit_diffs table"):
        corpus_for(Warehouse(tmp_path / "w.duckdb"), CorpusConfig())
    with pytest.raises(InputError, match="no such file"):
        corpus_for(Warehouse(tmp_path / "w.duckdb"), CorpusConfig(diff_files=(str(tmp_path / "none.diffs.parquet"),)))
