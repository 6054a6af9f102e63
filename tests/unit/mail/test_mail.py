"""Patch e-mails: subject tags, mbox reading, patch-id and title matching against a tiny repository."""

import subprocess
from pathlib import Path

import polars as pl
import pytest
from kforge.errors import InputError
from kforge.mail.match import agreement, match_emails
from kforge.mail.parse import normalise_title, parse_patch_email
from kforge.mail.reader import read_patch_emails

ENV = {"GIT_AUTHOR_NAME": "Ann", "GIT_AUTHOR_EMAIL": "ann@example.org", "GIT_COMMITTER_NAME": "Ann",
       "GIT_COMMITTER_EMAIL": "ann@example.org", "PATH": "/usr/bin:/bin"}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=ENV).stdout


def test_subject_tags_and_titles() -> None:
    raw = (b"From: Ann <Ann@Example.org>\nSubject: [LTP] [PATCH v3 2/5] syscalls/foo:  Fix X\n"
           b"Date: Mon, 09 Mar 2026 18:20:57 +0100\nMessage-Id: <1@x>\n\nbody\n")
    row = parse_patch_email(raw, "id1")
    assert row is not None
    assert (row["version"], row["index"], row["total"], row["is_cover"], row["is_rfc"]) == (3, 2, 5, False, False)
    assert row["title_norm"] == "syscalls/foo: fix x" and row["from_email"] == "ann@example.org"
    cover = parse_patch_email(raw.replace(b"v3 2/5", b"RFC 0/5"), "id2")
    assert cover["is_cover"] and cover["is_rfc"]
    assert parse_patch_email(raw.replace(b"[PATCH v3 2/5] ", b""), "id3") is None
    assert normalise_title("Re: [PATCH] a:  B") == "a: b"


def test_read_patches_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such archive"):
        read_patch_emails(tmp_path / "nope.mbox")
    (tmp_path / "x.mbox").write_text("From: a@b\nSubject: hello\n\nno patch here\n")
    with pytest.raises(InputError, match="no patch e-mails"):
        read_patch_emails(tmp_path / "x.mbox")


def test_patch_id_recovers_a_reworded_merge(tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.c").write_text("int a;\n")
    _git(repo, "add", "a.c")
    _git(repo, "commit", "-qm", "init")
    (repo / "a.c").write_text("int a;\nint b;\n")
    _git(repo, "commit", "-qam", "lib: add b")
    (repo / "a.c").write_text("int a;\nint b;\nint c;\n")
    _git(repo, "commit", "-qam", "lib: add c")
    patches = _git(repo, "format-patch", "--stdout", "-2", "HEAD")
    # the maintainer reworded "lib: add b" when applying: the e-mail's title was different
    patches = patches.replace("Subject: [PATCH 1/2] lib: add b", "Subject: [PATCH 1/2] lib: introduce b")
    unmerged = ("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nFrom: Bob <bob@x.org>\n"
                "Date: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: [PATCH] lib: add d\n\n---\n"
                "diff --git a/a.c b/a.c\n--- a/a.c\n+++ b/a.c\n@@ -1 +1,2 @@\n int a;\n+int d;\n")
    mbox = tmp_path / "list.mbox"
    mbox.write_text(patches + unmerged)
    mails = read_patch_emails(mbox).frame
    assert mails.height == 3
    matched = match_emails(mails, repo)
    by_title = dict(zip(matched["title_norm"], matched["match_by"], strict=True))
    assert by_title == {"lib: introduce b": "patch_id", "lib: add c": "patch_id", "lib: add d": "none"}
    assert matched.filter(pl.col("match_by") != "none")["merged_author_email_match"].all()
    # a title-only reference misses the reworded merge
    ref = matched.select("archive_commit", pl.when(pl.col("title_norm") == "lib: add c")
                         .then(pl.col("merged_commit")).alias("merged_commit"))
    rep = agreement(matched, ref)
    assert rep["recall_of_reference"] == 1.0 and rep["patch_id_only_merges"] == 1


def test_ingest_list_cli(tmp_path: Path, kforge_home: Path, capsys: pytest.CaptureFixture) -> None:
    from kforge.cli.main import main
    from kforge.config import Paths
    from kforge.storage import Warehouse

    repo = tmp_path / "p"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.c").write_text("int a;\n")
    _git(repo, "add", "a.c")
    _git(repo, "commit", "-qm", "lib: first")
    (repo / "a.c").write_text("int a;\nint b;\n")
    _git(repo, "commit", "-qam", "lib: add b")
    mbox = tmp_path / "l.mbox"
    mbox.write_text(_git(repo, "format-patch", "--stdout", "-1", "HEAD"))
    assert main(["ingest-list", str(mbox), "--project", str(repo)]) == 0
    assert '"matched": 1' in capsys.readouterr().out
    assert Warehouse(Paths.of(kforge_home).warehouse).count("mail_patches") == 1
    assert main(["ingest-list", str(mbox), "--project", str(tmp_path / "missing")]) == 2
    assert main(["ingest-list", str(mbox), "--project", str(repo), "--reference", str(mbox)]) == 2


def _mail(title: str, date: str, added: str) -> str:
    return ("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nFrom: Ann <ann@example.org>\n"
            f"Date: {date}\nSubject: {title}\n\n---\n"
            f"diff --git a/a.c b/a.c\n--- a/a.c\n+++ b/a.c\n@@ -1 +1,2 @@\n int a;\n+{added}\n")


def test_only_earlier_versions_inherit_a_merge(tmp_path: Path) -> None:
    """v1 inherits the merge of the v2 that was applied; a resend with the same title long after that
    merge is not merged by it (it used to inherit it, with 0 days to merge, and count as a new merge
    in its sender's history)."""
    repo = tmp_path / "proj"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.c").write_text("int a;\n")
    _git(repo, "add", "a.c")
    _git(repo, "commit", "-qm", "init", "--date", "2024-01-01T00:00:00Z")
    (repo / "a.c").write_text("int a;\nint b;\n")
    dated = {**ENV, "GIT_COMMITTER_DATE": "2024-03-01T00:00:00Z", "GIT_AUTHOR_DATE": "2024-03-01T00:00:00Z"}
    subprocess.run(["git", "-C", str(repo), "commit", "-qam", "lib: add b"], check=True, env=dated)
    mbox = tmp_path / "list.mbox"
    mbox.write_text(_mail("[PATCH] lib: introduce b", "Thu, 1 Feb 2024 00:00:00 +0000", "int bb;")
                    + _mail("[PATCH v2] lib: introduce b", "Tue, 20 Feb 2024 00:00:00 +0000", "int b;")
                    + _mail("[PATCH] lib: introduce b", "Sat, 1 Jun 2024 00:00:00 +0000", "int b2;"))
    matched = match_emails(read_patch_emails(mbox).frame, repo, since="2023-12-01").sort("ts")
    assert matched["match_by"].to_list() == ["inherited", "patch_id", "none"]
    assert matched["merged_commit"].is_null().to_list() == [False, False, True]
    assert matched["days_to_merge"].to_list()[:2] == [29.0, 10.0]
