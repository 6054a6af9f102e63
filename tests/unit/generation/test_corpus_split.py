"""Each repository split by time on its own, and the generation evaluation reported per repository."""

import polars as pl
import pytest
from gen_synthetic import make_rows
from kforge.generation import evaluate
from kforge.generation.corpus import (
    MIN_REPO_ROWS,
    build_corpus,
    check_time_split,
    held_out_rows,
    split_labels,
)


def _repo(n: int, seed: int, name: str, lead: str) -> pl.DataFrame:
    """``n`` synthetic commits of repository ``name``, starting on the same day as the others (so a small
    repository's history ends long before a large one's)."""
    return make_rows(n, seed=seed).with_columns(
        pl.lit(name).alias("repo"), (lead + pl.col("sha").str.slice(1)).alias("sha"),
        pl.col("body").str.replace("This patch", f"The {name} patch"))


@pytest.fixture(scope="module")
def multi():
    raw = pl.concat([make_rows(240, seed=3), _repo(80, 11, "small", "5"), _repo(6, 5, "tiny", "7")])
    return build_corpus(raw, val_frac=0.1, test_frac=0.1)


def test_every_repository_with_enough_rows_gets_its_own_test_rows(multi):
    corpus, rep = multi
    commits = corpus.filter(pl.col("source") == "commit")
    for repo, counts in rep.repos.items():
        n = sum(counts.values())
        rows = commits.filter(pl.col("repo") == repo)
        assert rows.height == n
        if n < MIN_REPO_ROWS:
            assert counts == {"train": n, "val": 0, "test": 0}
            continue
        # one global cut would leave "small" (whose history ends in January) no test row at all
        assert counts["test"] == max(1, int(n * 0.1)) and counts["val"] == int(n * 0.1)
        train = rows.filter(pl.col("split") == "train")["ts"]
        held = rows.filter(pl.col("split").is_in(["val", "test"]))["ts"]
        test = rows.filter(pl.col("split") == "test")["ts"]
        assert train.max() <= held.min() and rows.filter(pl.col("split") == "val")["ts"].max() <= test.min()
    assert rep.repos["small"]["test"] == 7 and rep.test == rep.repos["demo"]["test"] + 7
    # the small repository's test rows are earlier than the large one's training rows: still a clean split
    small_test = commits.filter((pl.col("repo") == "small") & (pl.col("split") == "test"))["ts"].min()
    assert small_test < commits.filter((pl.col("repo") == "demo") & (pl.col("split") == "train"))["ts"].max()
    ok, why = check_time_split(corpus)
    assert ok and "small" in why and "demo" in why


def test_check_time_split_is_per_repository(multi):
    corpus, _ = multi
    # a "small" training row moved after that repository's first test row breaks its own split
    last = corpus.filter((pl.col("repo") == "small") & (pl.col("split") == "train"))["sha"][0]
    late = corpus.filter(pl.col("repo") == "small")["ts"].max()
    broken = corpus.with_columns(pl.when(pl.col("sha") == last).then(pl.lit(late)).otherwise(pl.col("ts")).alias("ts"))
    ok, why = check_time_split(broken)
    assert not ok and "small" in why and "demo" not in why


def test_split_labels_by_repository():
    repos = ["a"] * 20 + ["b"] * 10 + ["c"] * 3
    labels = split_labels(repos, val_frac=0.1, test_frac=0.2)
    assert labels[:20] == ["train"] * 14 + ["val"] * 2 + ["test"] * 4 and labels[20:30] == ["train"] * 7 + ["val", "test", "test"]
    assert labels[30:] == ["train"] * 3
    # interleaved in time: each repository's latest rows are its held-out rows
    mixed = ["a", "b"] * 10
    got = split_labels(mixed, 0.0, 0.2)
    assert [g for r, g in zip(mixed, got, strict=True) if r == "a"] == ["train"] * 8 + ["test"] * 2
    assert [g for r, g in zip(mixed, got, strict=True) if r == "b"] == ["train"] * 8 + ["test"] * 2


def test_held_out_rows_share_the_decoded_rows_among_repositories():
    test = pl.DataFrame({"repo": ["big"] * 30 + ["small"] * 3 + ["big"] * 20, "sha": [f"s{i}" for i in range(53)]})
    got = held_out_rows(test, 20)
    assert got.height == 20 and got.filter(pl.col("repo") == "small").height == 3
    assert got["sha"].to_list() == [f"s{i}" for i in range(17)] + ["s30", "s31", "s32"]   # earliest, in corpus order
    assert held_out_rows(test, 8).group_by("repo").len().sort("repo")["len"].to_list() == [5, 3]
    assert held_out_rows(test, 4).group_by("repo").len().sort("repo")["len"].to_list() == [2, 2]
    one = test.filter(pl.col("repo") == "big")
    assert held_out_rows(one, 10)["sha"].to_list() == one.head(10)["sha"].to_list()   # one repository: as before


def test_per_repo_metrics_and_their_mean():
    samples = pl.DataFrame({"repo": ["a", "a", "b"], "reference": ["net: fix a leak", "eal: add x", "doc: fix typo"],
                            "lm": ["net: fix a leak", "eal: add y", "doc: typo"],
                            "nngen": ["net: fix leak", "eal: add x", "doc: fix typo"],
                            "lm_noprefix": ["fix a leak", "add x", "fix typo"], "nngen_noprefix": ["x", "y", "z"]})
    m = evaluate.per_repo_metrics(samples)
    from kforge.generation import metrics

    assert m["lm_bleu_norm__a"] == pytest.approx(metrics.bleu_norm(["net: fix a leak", "eal: add y"],
                                                                   ["net: fix a leak", "eal: add x"]))
    assert m["nngen_rouge_l__b"] == pytest.approx(100.0)
    for k in ("lm_bleu_norm", "nngen_bleu_norm", "lm_noprefix_rouge_l", "nngen_noprefix_rouge_l"):
        assert m[f"{k}__repo_mean"] == pytest.approx((m[f"{k}__a"] + m[f"{k}__b"]) / 2)
    assert (m["rows__a"], m["rows__b"]) == (2.0, 1.0) and "rows__repo_mean" not in m
    assert evaluate.repo_key("torvalds/linux stable") == "torvalds_linux_stable"


def test_generation_run_reports_each_repository(multi, tmp_path, monkeypatch):
    import torch
    from kforge.generation.pipeline import GenerationConfig, run_generation

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # "auto" on a machine without a GPU

    corpus, _ = multi
    cfg = GenerationConfig.from_flat(steps=4, batch_size=4, d_model=32, n_layers=1, n_heads=2, vocab_size=400,
                                     max_len=160, eval_rows=20, calib_rows=10, adapter_families=0, level1_estimators=5)
    lines: list[str] = []
    res = run_generation(corpus, cfg, tmp_path, log=lines.append)
    m = res.metrics
    eval_rows = corpus.filter(pl.col("sha").is_in(res.test_shas))
    assert eval_rows.group_by("repo").len().sort("repo")["len"].to_list() == [13, 7]   # small's 7 all decoded
    assert (m["test_rows__demo"], m["test_rows__small"]) == (13.0, 7.0)
    for k in ("lm_bleu_norm", "nngen_bleu_norm", "lm_noprefix_rouge_l", "nngen_noprefix_bleu_norm", "lm_perplexity"):
        assert m[f"test_{k}__repo_mean"] == pytest.approx((m[f"test_{k}__demo"] + m[f"test_{k}__small"]) / 2)
    assert "test_lm_bleu_norm" in m and "test_lm_bleu_norm__tiny" not in m
    # the device: auto, resolved to cpu here (no GPU), logged and recorded as params
    assert any(s.startswith("LM device: cpu (auto") for s in lines)
    assert res.params["train_device"] == "cpu" and res.params["train_device_requested"] == "auto"
    assert res.params["train_batch_size"] == 4 and res.params["train_precision"] == "fp32"


def test_reviewer_feedback_never_carries_a_held_out_diff_into_training():
    """Before: accepted/edited reviewer messages joined training with their diff, even when the diff was a
    val/test commit's, and the split check looked only at commit rows."""
    raw = make_rows(120, seed=4)
    corpus, _ = build_corpus(raw, val_frac=0.1, test_frac=0.1)
    test_row = corpus.filter(pl.col("split") == "test").row(0, named=True)
    fb = pl.DataFrame({"repo": ["feedback"] * 2, "sha": ["fb1", "fb2"], "parent": [None, None],
                       "author_date": ["2030-01-01T00:00:00+00:00"] * 2, "author_name": ["r", "r"],
                       "author_email": ["r@x", "r@x"], "subject": [test_row["subject"], "net: new thing"],
                       "body": ["", ""], "diff": [test_row["diff"] + "\n", "diff --git a/x b/x\n+new\n"]})
    out, rep = build_corpus(raw, val_frac=0.1, test_frac=0.1, feedback=fb)
    kept = out.filter(pl.col("source") == "feedback")
    assert kept["sha"].to_list() == ["fb2"] and kept["split"].to_list() == ["train"]
    assert rep.feedback_rows == 1 and rep.feedback_held_out_diffs == 1
    ok, detail = check_time_split(out)
    assert ok and "1 reviewer feedback rows train only" in detail
    # the check itself catches a feedback row that shares a held-out diff
    leaked = pl.concat([out, out.filter(pl.col("split") == "test").head(1).with_columns(
        pl.lit("feedback").alias("source"), pl.lit("train").alias("split"))])
    ok, detail = check_time_split(leaked)
    assert not ok and "share a diff with held-out rows" in detail


def test_a_negative_row_cap_is_refused():
    """Before: ``max_rows=-5`` (a Dagster run config) kept every row but the first five."""
    from kforge.errors import InputError

    with pytest.raises(InputError, match="max_rows must be 0"):
        build_corpus(make_rows(40, seed=1), max_rows=-5)
