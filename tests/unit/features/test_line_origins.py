"""Line-origin features: the replay agrees with git blame, is point in time, and survives broken clones."""

import os
import subprocess
from pathlib import Path

import polars as pl
import pytest
from kforge.errors import InputError
from kforge.features.build import event_times_for
from kforge.features.line_origins import LINE_ORIGIN_NUMERIC, from_repository, line_origin_features, replay
from kforge.git.line_log import BlobLines, change_log, first_parent_shas

T0 = 1_600_000_000


def _commit(repo: Path, author: str, message: str, day: int) -> str:
    date = f"@{T0 + day * 86400} +0000"
    env = {**os.environ, "GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": f"{author}@x.org", "GIT_AUTHOR_DATE": date,
           "GIT_COMMITTER_NAME": "m", "GIT_COMMITTER_EMAIL": "m@x.org", "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", message], check=True, env=env)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def _lines(n: int, tag: str) -> str:
    return "".join(f"{tag} line {i}\n" for i in range(1, n + 1))


@pytest.fixture()
def history(tmp_path: Path) -> tuple[Path, dict[str, str], pl.DataFrame]:
    """c1 (a) writes f.c; c2 (b) rewrites its line 3 and appends a line; c3 (a) renames it to g.c;
    c4 (c) fixes c2 (``Fixes:``) in another file; c5 (c) removes the two lines c2 wrote;
    c6 (d) inserts a line after line 1; c7 (a) fixes c1, landing after c6."""
    repo = tmp_path / "r"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "f.c").write_text(_lines(5, "one"))
    c = {"c1": _commit(repo, "a", "add f", 0)}
    text = _lines(5, "one").replace("one line 3\n", "two line 3\n") + "two line 6\n"
    (repo / "f.c").write_text(text)
    c["c2"] = _commit(repo, "b", "change f", 10)
    subprocess.run(["git", "-C", str(repo), "mv", "f.c", "g.c"], check=True)
    c["c3"] = _commit(repo, "a", "rename f", 20)
    (repo / "other.c").write_text("x\n")
    c["c4"] = _commit(repo, "c", f"fix it\n\nFixes: {c['c2'][:12]} (\"change f\")", 30)
    text = text.replace("two line 3\n", "").replace("two line 6\n", "")
    (repo / "g.c").write_text(text)
    c["c5"] = _commit(repo, "c", "drop b's lines", 40)
    lines = text.splitlines(keepends=True)
    (repo / "g.c").write_text("".join([lines[0], "new\n", *lines[1:]]))
    c["c6"] = _commit(repo, "d", "insert", 50)
    (repo / "other.c").write_text("y\n")
    c["c7"] = _commit(repo, "a", f"fix one\n\nFixes: {c['c1'][:12]} (\"add f\")", 60)
    from kforge.git.ingest import ingest_repository
    from kforge.storage import Warehouse

    wh = Warehouse(tmp_path / "w.duckdb")
    ingest_repository(repo, wh)
    return repo, c, wh.read_table("commits")


def _row(frame: pl.DataFrame, sha: str) -> dict[str, float]:
    return frame.filter(pl.col("sha") == sha).to_dicts()[0]


def test_replay_finds_the_commits_git_blame_names(history: tuple[Path, dict[str, str], pl.DataFrame]) -> None:
    repo, c, _ = history
    shas = first_parent_shas(repo)
    events, counters = replay(change_log(repo, shas), shas)
    assert counters["commits"] == 7 and counters["mismatches"] == 0
    by = {s: i for i, s in enumerate(shas)}
    c5 = events.filter(pl.col("commit_idx") == by[c["c5"]])
    # the lines c5 removes were written by c2, through the rename
    assert c5.filter(pl.col("kind") == 0)["origin_idx"].to_list() == [by[c["c2"]]] * 2
    blame = subprocess.run(["git", "-C", str(repo), "blame", "-l", "-s", "--root", "-L", "1,2", f"{c['c5']}",
                            "--", "g.c"], capture_output=True, text=True, check=True).stdout.splitlines()
    c6 = events.filter(pl.col("commit_idx") == by[c["c6"]])
    assert c6["kind"].to_list() == [1, 1]  # a pure insertion: the lines around it
    assert [shas[i] for i in c6["origin_idx"].to_list()] == [line.split()[0] for line in blame]


def test_features_are_point_in_time(history: tuple[Path, dict[str, str], pl.DataFrame]) -> None:
    repo, c, commits = history
    full, _ = from_repository(repo, commits, event_times_for(commits))
    assert set(full.columns) == {"sha", *LINE_ORIGIN_NUMERIC}
    c5 = _row(full, c["c5"])
    assert c5["lo_rm_lines"] == 2 and c5["lo_rm_n_commits"] == 1 and c5["lo_rm_n_authors"] == 1
    assert c5["lo_rm_self_share"] == 0.0
    assert c5["lo_rm_buggy_share"] == 1.0  # c4 had fixed c2 before c5
    assert c5["lo_rm_age_mean"] == pytest.approx(30.0)
    c6 = _row(full, c["c6"])
    assert c6["lo_nb_buggy_share"] == 0.0  # c7 fixes c1 only after c6: not known at c6's time
    # recomputed with everything after c6 removed: the same values
    keep = commits.filter(pl.col("committer_ts") <= commits.filter(pl.col("sha") == c["c6"])["committer_ts"][0])
    cut, _ = from_repository(repo, keep, event_times_for(keep), upto=c["c6"])
    assert _row(cut, c["c6"]) == c6
    assert _row(cut, c["c5"]) == c5


def test_a_broken_clone_is_read_around(history: tuple[Path, dict[str, str], pl.DataFrame]) -> None:
    repo, c, commits = history
    blob = subprocess.run(["git", "-C", str(repo), "rev-parse", f"{c['c2']}:f.c"], capture_output=True, text=True,
                          check=True).stdout.strip()
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    shas = first_parent_shas(repo)
    log = change_log(repo, shas, chunk=3)
    assert b"\x02FAILED" in log  # c2 (whose blob is gone) is marked, the others are read
    feats, counters = line_origin_features(log, shas, commits, event_times_for(commits), BlobLines(repo))
    assert counters["failed"] >= 1 and counters["mismatches"] == 0
    assert c["c2"] not in feats["sha"].to_list()
    assert c["c6"] in feats["sha"].to_list()


def test_a_log_out_of_line_with_the_files_is_forgotten_not_fatal() -> None:
    shas = ["a" * 40, "b" * 40]
    log = (b"\x01" + shas[0].encode() + b"\n\ndiff --git a/f b/f\n--- /dev/null\n+++ b/f\n@@ -0,0 +1,2 @@\n+x\n+y\n"
           b"\x01" + shas[1].encode() + b"\n\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -7,1 +7,1 @@\n-q\n+r\n")
    events, counters = replay(log, shas)
    assert counters["mismatches"] == 1 and events.height == 0
    with pytest.raises(ValueError, match="not in the given history"):
        replay(log, shas[:1])


def test_not_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a git repository"):
        first_parent_shas(tmp_path)


def test_scoring_refuses_commits_without_line_origins_for_a_model_that_uses_them() -> None:
    from types import SimpleNamespace

    from kforge.acceptance.scoring import check_line_origins

    rows = pl.DataFrame({"sha": ["s1", "s2"], "has_line_origins": [1.0, 0.0]})
    with pytest.raises(InputError, match="1 of 2 commits have no line origins .*s2"):
        check_line_origins(SimpleNamespace(numeric=["la", "has_line_origins"]), rows)
    check_line_origins(SimpleNamespace(numeric=["la"]), rows)  # a model without them scores anything
    check_line_origins(SimpleNamespace(numeric=["la", "has_line_origins"]), rows.head(1))


def test_unreadable_clones_are_skipped_with_the_reason(history: tuple[Path, dict[str, str], pl.DataFrame],
                                                       tmp_path: Path) -> None:
    from kforge.features.line_origins import for_repositories

    repo, _, commits = history
    not_git = tmp_path / "plain"
    not_git.mkdir()
    name = commits["repo"][0]
    frame, counters = for_repositories({name: repo, "gone": tmp_path / "nope", "plain": not_git}, commits,
                                       event_times_for(commits))
    assert frame is not None and frame.height == 7 and counters[name]["mismatches"] == 0
    assert "does not exist" in counters["gone"]["skipped"]
    assert "not a git repository" in counters["plain"]["skipped"]


def test_scoring_reuses_stored_line_origins_and_replays_only_for_new_commits(
        history: tuple[Path, dict[str, str], pl.DataFrame], tmp_path: Path) -> None:
    from kforge.acceptance.scoring import line_origins_for
    from kforge.git.ingest import register_repository
    from kforge.storage import Warehouse

    repo, c, commits = history
    wh = Warehouse(tmp_path / "score.duckdb")
    full, _ = from_repository(repo, commits, event_times_for(commits))
    stored = full.filter(pl.col("sha") != c["c7"]).with_columns(pl.lit(123.0).alias("lo_rm_lines"))
    wh.replace("patch_features", stored)  # marked so the test can tell stored rows from replayed ones
    got = line_origins_for(commits, wh, [c["c5"], c["c6"]])
    assert got is not None and got["lo_rm_lines"].to_list() == [123.0, 123.0]
    assert line_origins_for(commits, wh, [c["c7"]]) is None  # not stored, and no clone registered
    register_repository(wh, commits["repo"][0], repo)
    again = line_origins_for(commits, wh, [c["c7"]])
    assert again is not None and _row(again, c["c7"]) == _row(full, c["c7"])


def test_blob_lines_stay_in_step_after_a_path_that_is_not_a_file(tmp_path: Path) -> None:
    """A path naming a tree (a file's old name is a directory now) is no file; the tree's content
    that git sends anyway used to be left unread, so every later answer was read out of step."""
    repo = tmp_path / "r"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "d").mkdir()
    (repo / "d" / "x.c").write_text(_lines(4, "x"))
    (repo / "top.c").write_text(_lines(7, "t"))
    sha = _commit(repo, "a", "add", 0)
    blobs = BlobLines(repo)
    try:
        assert blobs(sha, b"top.c") == 7
        assert blobs(sha, b"d") is None and blobs(sha, b"nope.c") is None
        assert blobs(sha, b"top.c") == 7 and blobs(sha, b"d/x.c") == 4
    finally:
        blobs.close()
