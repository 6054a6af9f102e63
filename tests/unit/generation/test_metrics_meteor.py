"""METEOR, exact-match module: values computed by hand from Banerjee & Lavie (2005)."""

import pytest
from kforge.generation import metrics


def test_meteor_fewest_chunks_alignment():
    # the paper's example: 6 matches; the best alignment has 3 chunks ("the cat", "sat", "on the mat"),
    # P = R = 1 -> Fmean 1, penalty 0.5 * (3/6)^3 = 0.0625
    assert metrics.sentence_meteor_exact("the cat sat on the mat", "on the mat sat the cat") == pytest.approx(93.75)


def test_meteor_precision_recall_weighting_and_penalty():
    # 2 matches in one chunk; P = 2/3, R = 1/2; Fmean = PR / (0.9 P + 0.1 R) = (1/3) / 0.65
    expected = 100 * (1 / 3) / 0.65 * (1 - 0.5 * (1 / 2) ** 3)
    assert metrics.sentence_meteor_exact("a b x", "A B c d") == pytest.approx(expected)
    # identical 6 tokens: one chunk, penalty 0.5 / 216
    assert metrics.sentence_meteor_exact("a b c d e f", "a b c d e f") == pytest.approx(100 * (1 - 0.5 / 216))
    # recall weighs 9x precision: a short exact hypothesis scores below a long complete one
    assert metrics.sentence_meteor_exact("a b", "a b c d") < metrics.sentence_meteor_exact("a b c d x y", "a b c d")


def test_meteor_corpus_average_and_edge_cases():
    assert metrics.sentence_meteor_exact("x", "y") == 0.0
    assert metrics.sentence_meteor_exact("", "a") == 0.0
    hyps, refs = ["the cat sat on the mat", "x"], ["on the mat sat the cat", "y"]
    assert metrics.meteor_exact(hyps, refs) == pytest.approx(93.75 / 2)
    assert "meteor_exact" in metrics.all_metrics(hyps, refs)
    with pytest.raises(ValueError):
        metrics.meteor_exact(["a"], [])


def test_meteor_many_repeats_falls_back_without_blowing_up():
    hyp = " ".join(["a"] * 12)
    ref = " ".join(["a"] * 14)
    # 14!/2! alignments: greedy left-to-right gives one chunk of 12 matches
    p, r = 1.0, 12 / 14
    expected = 100 * p * r / (0.9 * p + 0.1 * r) * (1 - 0.5 * (1 / 12) ** 3)
    assert metrics.sentence_meteor_exact(hyp, ref) == pytest.approx(expected)
