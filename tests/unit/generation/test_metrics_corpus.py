import polars as pl
import pytest
from kforge.errors import InputError
from kforge.generation import labels, metrics
from kforge.generation.corpus import build_corpus, check_time_split, load_from_parquet


def test_bleu_variants_and_rouge():
    ref = "net/ice: fix Rx queue leak on reset"
    assert metrics.bleu_moses([ref], [ref]) == pytest.approx(100.0)
    assert metrics.bleu_norm([ref.upper()], [ref]) == pytest.approx(100.0)  # B-Norm lower-cases
    assert metrics.bleu_moses([ref.upper()], [ref]) == 0.0                   # B-Moses is case-sensitive
    # a 2-token hypothesis has no 4-gram: unsmoothed B-Moses is 0, smoothed B-Norm is not
    assert metrics.bleu_moses(["ice fix"], [ref]) == 0.0
    assert 0 < metrics.bleu_norm(["ice fix"], [ref]) < 100
    assert metrics.rouge_l(["a b c"], ["a x c"]) == pytest.approx(100 * 2 / 3, rel=1e-6)
    assert metrics.prefix_accuracy(["net/ice: x", "eal: y"], ["net/ice: z", "doc: y"]) == 0.5
    with pytest.raises(ValueError):
        metrics.bleu_norm(["a"], [])


def test_labels():
    assert labels.change_type("net/ice: fix memory leak") == "fix"
    assert labels.change_type('Revert "eal: add foo"') == "revert"
    assert labels.change_type("eal: add tracepoints") == "feature"
    assert labels.complexity(*labels.diff_lines("+a\n-b\n+++ x\n")) == "tiny"
    assert labels.family("net/mlx5") == "net" and labels.family("") == "other"
    assert labels.strip_trailers("Text.\n\nSigned-off-by: A <a@b>") == "Text."


def test_corpus_cleans_and_splits_by_time(raw_rows, corpus):
    assert "b" * 40 not in corpus["sha"].to_list()            # the bot commit is gone
    assert corpus["sha"].n_unique() == corpus.height
    ok, _ = check_time_split(corpus)
    assert ok
    test = corpus.filter(pl.col("split") == "test")
    train = corpus.filter(pl.col("split") == "train")
    assert test["ts"].min() >= train["ts"].max()
    dup = pl.concat([raw_rows.head(30), raw_rows.head(30).with_columns(pl.col("sha") + "x")])
    _, rep = build_corpus(dup)
    assert rep.near_duplicates == 30


def test_corpus_bad_inputs(tmp_path, raw_rows):
    with pytest.raises(InputError, match="lacks column"):
        build_corpus(raw_rows.drop("diff"))
    with pytest.raises(InputError, match="usable commits"):
        build_corpus(raw_rows.head(5))
    with pytest.raises(InputError, match="split fractions"):
        build_corpus(raw_rows, test_frac=0.7)
    bad = tmp_path / "x.diffs.parquet"
    bad.write_text("not parquet")
    with pytest.raises(InputError, match="not a readable parquet"):
        load_from_parquet([bad])
    with pytest.raises(InputError, match="no such file"):
        load_from_parquet([tmp_path / "missing.parquet"])
