"""The demo's synthetic list archive: public-inbox shaped, deterministic, labelled right by the
matcher, merged by a latent signal with noise, and big enough for the e-mail model's gates."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from kforge.errors import InputError
from kforge.mail import demo_archive
from kforge.mail.archive import public_inbox_messages
from kforge.mail.demo_archive import write_demo_archive
from kforge.mail.match import match_emails
from kforge.mail.parse import parse_messages
from kforge.mail.reader import read_patch_emails


@pytest.fixture(scope="module")
def archive(demo_repo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """The archive of the 600-commit demo repository (seed 7) and the generator's ground truth:
    Message-Id -> whether its series was merged."""
    truth: dict[str, bool] = {}
    emit = demo_archive._emit

    def recording(se, rng, w, *rest):  # noqa: ANN001, ANN202
        n = len(w.messages)
        emit(se, rng, w, *rest)
        for *_, raw in w.messages[n:]:
            truth[raw.split(b"\nMessage-Id: ")[1].split(b"\n")[0].decode()] = se.merged

    mp = pytest.MonkeyPatch()
    mp.setattr(demo_archive, "_emit", recording)
    try:
        path = tmp_path_factory.mktemp("list") / "demo-list"
        info = write_demo_archive(demo_repo_template, path, seed=7)
    finally:
        mp.undo()
    return path, {"info": info, "truth": truth}


def _head(path: Path) -> str:
    from kforge.git.gitcmd import git

    return git(path, "rev-parse", "HEAD", git_dir=True).decode().strip()


def test_public_inbox_layout_and_same_seed_same_archive(archive: tuple[Path, dict], demo_repo_template: Path,
                                                        tmp_path: Path) -> None:
    path, meta = archive
    msgs = list(public_inbox_messages(path))
    assert len(msgs) == meta["info"]["messages"] > 300  # type: ignore[index]
    again = write_demo_archive(demo_repo_template, tmp_path / "again", seed=7)
    assert _head(tmp_path / "again") == _head(path) and again == {**meta["info"], "archive": str(tmp_path / "again")}
    write_demo_archive(demo_repo_template, tmp_path / "other", seed=8)
    assert _head(tmp_path / "other") != _head(path)


def test_series_versions_replies_and_unmerged(archive: tuple[Path, dict]) -> None:
    path, _ = archive
    parsed = parse_messages(public_inbox_messages(path))
    assert parsed.messages > len(parsed.rows) * 0.9 and not parsed.skipped
    rows = pl.DataFrame(parsed.rows)
    assert rows["ts"].to_list() == sorted(rows["ts"].to_list())  # oldest first, as public-inbox stores them
    covers = rows.filter(pl.col("is_cover"))
    assert covers.height > 20 and rows.filter(~pl.col("is_cover") & (pl.col("total") > 1)).height > covers.height
    assert rows.filter(pl.col("version") >= 2).height > 50 and rows.filter(pl.col("version") >= 3).height > 5
    assert rows.filter(pl.col("is_rfc")).height > 5
    replies = rows.filter(pl.col("is_reply"))["raw_email"]
    for text in ("Reviewed-by: ", "NAK", "Applied, thanks", "?\n"):
        assert replies.str.contains(text, literal=True).sum() > 5, text
    assert rows.filter(~pl.col("is_reply") & (pl.col("version") >= 2))["raw_email"].str.contains(
        "\nReviewed-by: ", literal=True).sum() > 20  # review carried into the next version


def test_the_matcher_recovers_exactly_the_generators_merges(archive: tuple[Path, dict],
                                                            demo_repo_template: Path) -> None:
    path, meta = archive
    truth = meta["truth"]
    m = match_emails(read_patch_emails(path).frame, demo_repo_template).filter(~pl.col("is_cover"))
    got = dict(zip(m["message_id"], m["merged_commit"].is_not_null(), strict=True))
    assert got == {k: truth[k] for k in got}
    by = dict(m["match_by"].value_counts().iter_rows())
    assert by["patch_id"] > 100 and by["title"] + by.get("inherited", 0) > 50 and by["none"] > 100


def test_merged_follows_a_latent_signal_with_noise(archive: tuple[Path, dict], demo_repo_template: Path) -> None:
    """Observable signals point the way the latent score says, none decides alone, and together
    they explain a good part but not all (a deterministic rule would give AUC near 1)."""
    from kforge.acceptance.email_features import email_frame
    from kforge.acceptance.metrics import auc
    from sklearn.linear_model import LogisticRegression

    path, _ = archive
    f = email_frame(match_emails(read_patch_emails(path).frame, demo_repo_template))
    y = f["event_ts"].is_not_null().to_numpy().astype(int)
    assert 0.3 < y.mean() < 0.85
    merged_rate = {c: (f.filter(pl.col(c) > lo)["event_ts"].is_not_null().mean(),
                       f.filter(pl.col(c) <= lo)["event_ts"].is_not_null().mean())
                   for c, lo in (("n_recipients", 1), ("is_rfc", 0), ("n_review_tags", 0), ("sender_merge_rate", 0.3))}
    assert merged_rate["n_recipients"][0] > merged_rate["n_recipients"][1]      # the maintainer addressed
    assert merged_rate["is_rfc"][0] < merged_rate["is_rfc"][1]                  # RFCs rarely merged
    assert merged_rate["n_review_tags"][0] > merged_rate["n_review_tags"][1]    # a reviewer engaged
    assert merged_rate["sender_merge_rate"][0] > merged_rate["sender_merge_rate"][1]  # track record
    cols = ["sender_merge_rate", "sender_prior_merged", "n_review_tags", "n_recipients", "la", "version", "is_rfc"]
    for c in cols:
        a = auc(y, f[c].to_numpy())
        assert max(a, 1 - a) < 0.8, c
    x = np.log1p(f.select(cols).to_numpy())
    a = auc(y, LogisticRegression(max_iter=1000).fit(x, y).predict_proba(x)[:, 1])
    assert 0.62 < a < 0.9


def test_refuses_a_used_directory_and_a_tiny_repository(demo_repo_template: Path, tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        write_demo_archive(demo_repo_template, tmp_path / "used")
    from kforge.git.demo_repo import generate_demo_repo

    generate_demo_repo(tmp_path / "tiny", n_commits=50)
    with pytest.raises(InputError, match="at least 50"):
        write_demo_archive(tmp_path / "tiny", tmp_path / "tiny-list")
    assert not (tmp_path / "tiny-list").exists() and not list(tmp_path.glob(".tiny-list.*"))


def test_demo_repo_command_writes_the_archive_and_ingest_list_reads_it(tmp_path: Path, kforge_home: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    from kforge.cli.main import main
    from kforge.config import Paths
    from kforge.storage import Warehouse

    repo, lst = tmp_path / "demo-repo", tmp_path / "demo-list"
    assert main(["demo-repo", str(repo), "--commits", "150", "--archive", str(lst)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["commits"] == 150 and info["archive"]["messages"] > 100
    # a home whose repository predates the archive: the command writes only the archive, the same one
    assert main(["demo-repo", str(repo), "--commits", "150", "--archive", str(tmp_path / "list2")]) == 0
    assert json.loads(capsys.readouterr().out)["archive"]["messages"] == info["archive"]["messages"]
    assert _head(tmp_path / "list2") == _head(lst)
    assert main(["demo-repo", str(repo), "--commits", "150"]) == 2  # without --archive: still refused
    capsys.readouterr()
    assert main(["ingest-list", str(lst), "--project", str(repo)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["skipped_malformed"] == 0 and out["matched"] > 0 and out["by"]["none"] > 0
    assert Warehouse(Paths.of(kforge_home).warehouse).count("mail_patches") == out["stored_new"] == out["patch_emails"]
    assert main(["ingest-list", str(lst), "--project", str(repo)]) == 0  # again: nothing doubled
    assert json.loads(capsys.readouterr().out)["stored_new"] == 0


@pytest.mark.model_quality
def test_email_model_trains_on_the_demo_and_beats_its_baselines(tmp_path: Path) -> None:
    """The demo (1,200 commits, seed 7) with the asset's default config: enough held-out e-mails
    for the test_size gate, and the model beats both named baselines on them."""
    from kforge.acceptance.email_features import email_frame
    from kforge.acceptance.spec import email_spec
    from kforge.acceptance.train import TrainConfig, train_and_evaluate
    from kforge.git.demo_repo import generate_demo_repo

    generate_demo_repo(tmp_path / "repo", archive=tmp_path / "list")
    frame = email_frame(match_emails(read_patch_emails(tmp_path / "list").frame, tmp_path / "repo"))
    res = train_and_evaluate(frame, email_spec(), TrainConfig())
    for gate in ("split_holds", "test_size", "beats_lines_added", "beats_plain_lr"):
        assert res.gate(gate).passed is True, res.gate(gate)
    m = res.metrics
    assert m["test_roc_auc"] > m["test_roc_auc_plain_lr"] > m["test_roc_auc_lines_added"]
