"""A repository is its top level under one name; shallow-clone boundaries stay out of features, labels, exports."""

import subprocess
from pathlib import Path

import polars as pl
import pytest
from kforge.cli.main import main
from kforge.commits.chains import build_chains, commit_labels
from kforge.commits.diffs_table import collect_diffs
from kforge.errors import InputError
from kforge.features.build import build_patch_features
from kforge.git.identity import identify
from kforge.git.ingest import (
    SHALLOW_BOUNDARY,
    ingest_repository,
    register_repository,
    registered_repositories,
)
from kforge.storage import Warehouse

from tests.conftest import git


def _repo(path: Path, n: int = 3, tag: str = "") -> Path:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "docs").mkdir()
    for i in range(n):
        (path / "docs" / f"d{i}.txt").write_text(f"{tag} doc {i}\n")
        git(path, "add", ".")
        git(path, "commit", "-q", "-m", f"docs: {tag} change {i}")
    return path


def _repos_table(wh: Warehouse) -> pl.DataFrame:
    return wh.read("select * from repositories order by repo")


@pytest.mark.parametrize("sub", ["docs", ".git", ".git/objects"])
def test_a_subdirectory_is_its_repository(tmp_path: Path, sub: str) -> None:
    repo = _repo(tmp_path / "repo")
    wh = Warehouse(tmp_path / "w.duckdb")
    first = ingest_repository(repo, wh)
    again = ingest_repository(repo / sub, wh)
    assert (first.repo, again.repo) == ("repo", "repo") and again.path == str(repo.resolve())
    assert (again.commits_added, again.already_stored) == (0, 3)
    assert wh.count("commits") == 3 and _repos_table(wh)["repo"].to_list() == ["repo"]


def test_bare_clone_is_identified_by_its_git_dir_and_named_after_its_origin(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "upstream")
    bare = tmp_path / "mirror.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True)
    ident = identify(bare / "refs")
    assert ident.toplevel == bare.resolve() and ident.name == "upstream"
    r = ingest_repository(bare / "refs", Warehouse(tmp_path / "w.duckdb"))
    assert (r.repo, r.commits_added) == ("upstream", 3)


def test_two_different_repositories_with_one_name_never_merge(tmp_path: Path, kforge_home: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    a = _repo(tmp_path / "a" / "repo", tag="a")
    b = _repo(tmp_path / "b" / "repo", n=2, tag="b")
    wh = Warehouse(kforge_home / "warehouse.duckdb")
    assert main(["--home", str(kforge_home), "ingest", str(a)]) == 0
    before = wh.read("select repo, sha from commits order by sha")
    rc = main(["--home", str(kforge_home), "ingest", str(b)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "'repo' is taken by another repository" in err and "--name" in err, err
    assert wh.read("select repo, sha from commits order by sha").equals(before)
    with pytest.raises(InputError, match="taken by another repository"):  # an explicit name is refused too
        ingest_repository(b, wh, name="repo")
    assert ingest_repository(b, wh, name="repo-b").commits_added == 2
    assert dict(wh.read("select repo, count(*) n from commits group by 1").iter_rows()) == {"repo": 3, "repo-b": 2}
    paths = registered_repositories(wh)
    assert paths == {"repo": a.resolve(), "repo-b": b.resolve()}


def test_a_registered_repository_cannot_take_a_second_name(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    wh = Warehouse(tmp_path / "w.duckdb")
    ingest_repository(repo, wh)
    with pytest.raises(InputError, match="already registered as 'repo'"):
        ingest_repository(repo / "docs", wh, name="copy")
    assert wh.count("commits") == 3


def test_clones_of_one_origin_share_a_name_and_credentials_are_not_stored(tmp_path: Path) -> None:
    up = _repo(tmp_path / "up")
    one, two = tmp_path / "one", tmp_path / "two"
    for c in (one, two):
        subprocess.run(["git", "clone", "-q", str(up), str(c)], check=True)
        git(c, "remote", "set-url", "origin", "https://user:s3cret@example.org/team/linux.git")
    wh = Warehouse(tmp_path / "w.duckdb")
    assert ingest_repository(one, wh).repo == "linux"
    r2 = ingest_repository(two, wh)
    assert (r2.repo, r2.commits_added, r2.already_stored) == ("linux", 0, 3)
    row = _repos_table(wh).row(0, named=True)
    assert row["remote"] == "https://example.org/team/linux.git" and "s3cret" not in str(_repos_table(wh).rows())


def test_moved_clone_keeps_its_name_and_old_warehouses_migrate(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    wh = Warehouse(tmp_path / "w.duckdb")
    ingest_repository(repo, wh)
    # a warehouse written before identities: repositories(repo, path, added_at) only
    wh.execute("create or replace table repositories as select repo, path, added_at from repositories")
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    repo.rename(moved)
    r = ingest_repository(moved, wh)  # same history (its first commit is stored under 'repo')
    assert (r.repo, r.commits_added) == ("repo", 0)
    row = _repos_table(wh).row(0, named=True)
    assert row["path"] == str(moved.resolve()) and row["first_commit"] and "remote" in row


def test_register_repository_refuses_a_taken_name(tmp_path: Path) -> None:
    a, b = _repo(tmp_path / "a", tag="a"), _repo(tmp_path / "b", tag="b")
    wh = Warehouse(tmp_path / "w.duckdb")
    register_repository(wh, "demo", a)
    register_repository(wh, "demo", a / "docs")  # the same repository again: fine
    with pytest.raises(InputError, match="taken"):
        register_repository(wh, "demo", b)
    assert registered_repositories(wh) == {"demo": a.resolve()}


# -- shallow clones ------------------------------------------------------------------------------

def _boundary(clone: Path) -> str:
    return (clone / ".git" / "shallow").read_text().split()[0]


def test_shallow_boundary_is_marked_and_kept_out_of_features_labels_and_diffs(demo_repo: Path, tmp_path: Path) -> None:
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "40", f"file://{demo_repo}", str(shallow)], check=True)
    boundary = _boundary(shallow)
    wh = Warehouse(tmp_path / "w.duckdb")
    r = ingest_repository(shallow, wh, name="demo")
    assert (r.commits_added, r.shallow_boundaries) == (40, 1)
    flagged = wh.read("select sha, n_files from commits where shallow_boundary")
    assert flagged["sha"].to_list() == [boundary] and flagged["n_files"][0] > 20  # the whole tree
    q = wh.read("select sha from ingest_quarantine where reason = ?", [SHALLOW_BOUNDARY])
    assert q["sha"].to_list() == [boundary]
    commits, files = wh.read_table("commits"), wh.read_table("file_changes")
    feats = build_patch_features(commits, files)
    assert boundary not in feats["sha"].to_list() and feats.height >= 30
    labels = commit_labels(commits, build_chains(commits))
    assert boundary not in labels["sha"].to_list() and labels.height == 39
    diffs, _ = collect_diffs(wh, None, 1000, 65536)
    assert boundary not in diffs["sha"].to_list() and diffs.height > 0


def test_deepened_clone_reads_the_old_boundary_again_and_old_rows_get_flagged(demo_repo: Path, tmp_path: Path) -> None:
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "20", f"file://{demo_repo}", str(shallow)], check=True)
    old = _boundary(shallow)
    wh = Warehouse(tmp_path / "w.duckdb")
    ingest_repository(shallow, wh)
    # a warehouse from before the flag: the column is missing and the boundary looks ordinary
    wh.execute("alter table commits drop column shallow_boundary")
    ingest_repository(shallow, wh)
    assert wh.read("select sha from commits where shallow_boundary")["sha"].to_list() == [old]
    subprocess.run(["git", "-C", str(shallow), "fetch", "-q", "--deepen=10"], check=True)
    new = _boundary(shallow)
    r = ingest_repository(shallow, wh)
    assert r.commits_added == 11  # 10 new commits + the old boundary read again with its real diff
    assert wh.read("select sha from commits where shallow_boundary")["sha"].to_list() == [new]
    n_files = wh.read("select n_files from commits where sha = ?", [old])["n_files"][0]
    assert n_files == wh.read("select count(*) n from file_changes where sha = ?", [old])["n"][0] < 20
    assert wh.read("select count(*) n from ingest_quarantine where sha = ? and reason = ?",
                   [old, SHALLOW_BOUNDARY])["n"][0] == 0
    assert wh.count("commits") == 30
