"""The LM is compared with NNGen like for like, and junk is never "acceptable" (issue 15, item 1).

The old evaluation forced level 1's prefix onto the LM's subject only, and credited a subject such
as ``"net/ice: https://lore.org>"`` with the right prefix and as acceptable."""

import pytest
from kforge.generation import evaluate, metrics
from kforge.generation.backbones import ScratchBackbone
from kforge.generation.corpus import split_frames
from kforge.generation.level1 import Level1Config, Level1Model
from kforge.generation.lm import TinyLMConfig
from kforge.generation.pipeline import build_examples
from kforge.generation.release import beats_nngen_check
from kforge.generation.retrieval import RetrievalIndex


@pytest.mark.parametrize("subject, why", [
    ("prefix: https://lore.org>", "url"),
    ("net/ice: Link: https://lore.kernel.org/r/123", "url"),
    ("net/ice: Signed-off-by: Dev 3", "trailer"),
    ("Reported-by: Dev 3", "trailer"),
    ("eal: Acked-by: Someone", "trailer"),
    ("net/ice: see dev3@example.org", "url"),
    ("net/ice:", "empty"),
    ("net/ice: ...", "empty"),
    ("", "empty"),
    ("net/ice: net/ice: fix leak", "repeated"),
    ("eal: fix fix fix leak", "repeated"),
    ("eal: add rxq add rxq", "repeated"),
    ("ipsec: fix the", "truncated"),
    ("net/ice: fix leak of", "truncated"),
])
def test_junk_is_named(subject, why):
    assert metrics.junk_reason(subject) == why


@pytest.mark.parametrize("subject", [
    "net/ice: fix Rx queue leak on reset", "version: 24.11-rc0", "doc: deprecate OpenSSL version 1.1.1",
    'Revert "eal: add tracepoints"', "net/mlx5: fix link status", "fix the x of the y in the z",
    "libbpf: Fix typo in btf__dedup@LIBBPF_0.0.2 definition", "net: fix a<b comparison",
])
def test_real_subjects_are_not_junk(subject):
    assert metrics.junk_reason(subject) == ""


def test_junk_with_the_right_prefix_earns_no_credit():
    hyp, ref = "net/ice: https://lore.org>", "net/ice: fix rxq12 leak in ice_rx_queue_setup on reset"
    assert metrics.sentence_rouge_l(hyp, ref) >= 30.0  # what let the old rule call it acceptable
    assert not metrics.prefix_correct(hyp, ref) and not evaluate.acceptable(hyp, ref)
    assert metrics.prefix_accuracy([hyp, "net/ice: fix leak"], [ref, ref]) == 0.5
    assert metrics.junk_rate([hyp, "net/ice: fix leak"]) == 0.5
    assert evaluate.acceptable("net/ice: fix rxq12 leak on reset", ref)
    # the prefix alone is not an acceptable subject (old rule: ROUGE-L over the whole subject >= 30)
    short = "ipsec: replace unnecessary comma operators"
    assert metrics.sentence_rouge_l("ipsec: use bulk free", short) >= 30.0
    assert not evaluate.acceptable("ipsec: use bulk free", short)
    assert evaluate.acceptable("ipsec: replace comma operators", short)


def test_with_prefix_replaces_the_retrieved_prefix():
    assert evaluate.with_prefix("net/mlx5: fix flow leak", "net/ice") == "net/ice: fix flow leak"
    assert evaluate.with_prefix("[PATCH] eal: fix x", "doc") == "doc: fix x"
    assert evaluate.with_prefix("fix x", "eal") == "eal: fix x"
    assert evaluate.with_prefix("net/mlx5: fix flow leak", "") == "net/mlx5: fix flow leak"


@pytest.fixture(scope="module")
def parts(corpus):
    return split_frames(corpus)


@pytest.fixture(scope="module")
def fitted(parts):
    level1 = Level1Model(Level1Config(n_estimators=10)).fit(parts["train"], parts["val"])
    index = RetrievalIndex().fit(parts["train"])
    texts = (parts["train"]["subject"] + "\n" + parts["train"]["diff"]).to_list()
    bb = ScratchBackbone.create(texts, TinyLMConfig(vocab_size=500, d_model=32, n_layers=1, n_heads=2, max_len=192,
                                                    dropout=0.0), seed=7)
    return level1, index, bb


def _writes(bb, text, monkeypatch):
    """Make the LM write ``text`` after whatever head it was given, and record the prompts."""
    seen = []

    def generate(prompts, max_new_tokens=48, no_repeat_ngram=3):
        seen.extend(prompts)
        return [(bb.encode(text), -1.0) for _ in prompts]

    monkeypatch.setattr(bb, "generate", generate)
    return seen


def test_junk_lm_gets_no_prefix_credit_and_loses_like_for_like(fitted, parts, monkeypatch):
    level1, index, bb = fitted
    test = parts["test"].head(12)
    _writes(bb, " https://lore.org>", monkeypatch)
    res, samples = evaluate.evaluate_messages(bb, level1, index, test, build_examples(bb, test, index, self_in_index=False))
    l1_acc = level1.evaluate(test, "diff")["diff_subsystem_acc"]
    assert l1_acc > 0.5  # level 1 knows the prefixes: the old evaluation gave the LM that credit
    assert all(s.startswith(f"{p}:") for s, p in zip(samples["lm"], samples["predicted_subsystem"], strict=True))
    assert res["lm_prefix_acc"] == 0.0 and res["lm_acceptable_rate"] == 0.0 and res["lm_junk_rate"] == 1.0
    assert set(samples["lm_junk"]) == {"url"}
    # both pairs are on the same rows; NNGen given level 1's prefix carries level 1's prefix accuracy
    assert res["rows"] == test.height
    assert all(s.startswith(f"{p}: ") for s, p in zip(samples["nngen"], samples["predicted_subsystem"], strict=True))
    assert res["nngen_prefix_acc"] == pytest.approx(l1_acc)
    assert res["nngen_noprefix_prefix_acc"] == pytest.approx(metrics.prefix_accuracy(index.nngen(test["diff"].to_list()),
                                                                                      test["subject"].to_list()))
    for k in ("bleu_norm", "rouge_l"):
        assert res[f"lm_{k}"] < res[f"nngen_{k}"] and res[f"lm_noprefix_{k}"] < res[f"nngen_noprefix_{k}"]
    check = beats_nngen_check({f"test_{k}": v for k, v in res.items()})
    assert check.passed is False and "nngen_noprefix_bleu_norm" in check.numbers


def test_noprefix_lm_is_given_no_level1_subsystem(fitted, parts, monkeypatch):
    level1, index, bb = fitted
    test = parts["test"].head(4)
    diffs = test["diff"].to_list()
    seen = _writes(bb, " fix leak", monkeypatch)
    bare = evaluate.draft_messages(bb, level1, index, diffs, force_prefix=False)
    served = evaluate.served_subjects(bb, level1, index, diffs)
    assert bare.subjects == ["fix leak"] * 4
    assert served.subjects == [f"{p['subsystem']}: fix leak" for p in served.l1]
    sub = bb.marker("<sub>")[0]
    slot = [p[p.index(sub) + 1:p.index(bb.marker("<type>")[0])] for p in seen]
    assert all(bb.decode(s).strip() == "" for s in slot[:4])                       # no level-1 subsystem
    assert [bb.decode(s).strip() for s in slot[4:]] == [p["subsystem"] for p in served.l1]


def test_lm_is_trained_with_an_empty_subsystem_slot_on_a_share_of_examples(fitted, parts):
    """Issue 15.1: the no-prefix pair measures the LM on its own, so the LM must have seen the empty
    <sub> slot in training: with the share set, some message prompts carry no subsystem."""
    from kforge.generation.pipeline import GenerationConfig

    _level1, index, bb = fitted
    rows = parts["train"].head(60)
    sub, typ = bb.marker("<sub>"), bb.marker("<type>")

    def find(ids: list[int], pat: list[int], start: int = 0) -> int:
        return next(i for i in range(start, len(ids) - len(pat) + 1) if ids[i:i + len(pat)] == pat)

    def blank_count(examples) -> int:  # noqa: ANN001
        n = 0
        for ex in examples:
            ids = ex.ids[:ex.n_prompt]
            if sub[0] not in ids:
                continue  # not a message example
            a = find(ids, sub) + len(sub)
            n += bb.decode(ids[a:find(ids, typ, a)]).strip() == ""
        return n

    none = build_examples(bb, rows, index, self_in_index=True, blank_subsystem_share=0.0)
    some = build_examples(bb, rows, index, self_in_index=True, blank_subsystem_share=0.5)
    assert blank_count(none) <= sum(1 for p in rows["prefix"].to_list() if not p)
    assert blank_count(some) >= blank_count(none) + 15
    assert GenerationConfig().blank_subsystem_share > 0
