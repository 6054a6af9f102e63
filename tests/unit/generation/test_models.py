import polars as pl
import pytest
import torch
from kforge.errors import InputError
from kforge.generation import prompts
from kforge.generation.backbones import ScratchBackbone
from kforge.generation.corpus import split_frames
from kforge.generation.level1 import Level1Config, Level1Model, majority_baseline
from kforge.generation.lm import TinyLMConfig
from kforge.generation.pipeline import build_examples
from kforge.generation.retrieval import RetrievalIndex
from kforge.generation.train import TrainConfig, train


@pytest.fixture(scope="module")
def parts(corpus):
    return split_frames(corpus)


@pytest.fixture(scope="module")
def index(parts):
    return RetrievalIndex().fit(parts["train"])


def _backbone(parts, seed=7):
    texts = (parts["train"]["subject"] + "\n" + parts["train"]["diff"]).to_list()
    return ScratchBackbone.create(texts, TinyLMConfig(vocab_size=500, d_model=48, n_layers=2, n_heads=2, max_len=192,
                                                      dropout=0.0), seed=seed)


def test_level1_beats_majority_and_is_calibrated(parts):
    m = Level1Model(Level1Config(n_estimators=15)).fit(parts["train"], parts["val"])
    res = m.evaluate(parts["test"], "diff")
    base = majority_baseline(parts["train"], parts["test"])
    assert res["diff_subsystem_acc"] > base["majority_subsystem_acc"]
    p = m.predict(issues=["the ice rx queue leaks"])[0]
    assert set(p) >= {"subsystem", "change_type", "complexity", "subsystem_conf"}
    assert 0.0 <= p["subsystem_conf"] <= 1.0
    with pytest.raises(InputError):
        m.predict()


def test_retrieval_excludes_self(parts, index):
    tr = parts["train"].head(3)
    nb = index.query_diffs(tr["diff"].to_list(), n=1, exclude_self=[0, 1, 2])
    assert [n[0].sha for n in nb] != tr["sha"].to_list()
    assert all(n[0].index not in (0, 1, 2) or n[0].index != i for i, n in enumerate(nb))


def test_loss_falls_generation_runs_and_resume(tmp_path, parts, index):
    bb = _backbone(parts)
    ex = build_examples(bb, parts["train"], index, self_in_index=True, patch_share=0.3)
    assert all(0 < e.n_prompt < len(e.ids) <= bb.max_len for e in ex)
    res = train(bb, ex, TrainConfig(steps=30, batch_size=8, lr=3e-3, warmup=3))
    assert res.last_loss() < res.first_loss() - 0.5
    assert res.tokens_per_s > 0 and res.peak_mem_mb > 0
    prompt = prompts.message_prompt(bb, parts["test"]["diff"][0], {"subsystem": "eal"}, ["eal: x"], 150)
    (ids, lp), = bb.generate([prompt], max_new_tokens=12)
    assert len(ids) <= 12 and lp <= 0
    # batched (left-padded, KV cache) decoding gives the same tokens as one-by-one
    other = prompt[:60] + [bb.marker("<msg>")[0]]
    both = bb.generate([prompt, other], max_new_tokens=8)
    assert both[0][0] == bb.generate([prompt], max_new_tokens=8)[0][0]
    # an interrupted run resumes from its checkpoint to the same weights as an uninterrupted one
    full = _backbone(parts, seed=3)
    train(full, ex, TrainConfig(steps=6, batch_size=4, warmup=1, checkpoint_dir=str(tmp_path / "a"), checkpoint_every=2))
    part = _backbone(parts, seed=3)
    first = train(part, ex, TrainConfig(steps=6, batch_size=4, warmup=1, checkpoint_dir=str(tmp_path / "b"),
                                        checkpoint_every=2, max_minutes=1e-9))
    assert first.steps_done == 1 and first.stopped_early
    resumed = _backbone(parts, seed=99)
    second = train(resumed, ex, TrainConfig(steps=6, batch_size=4, warmup=1, checkpoint_dir=str(tmp_path / "b"), checkpoint_every=2))
    assert second.resumed_from == 1 and second.steps_done == 6
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(InputError):
        train(bb, ex, TrainConfig(device="tpu"))


def test_save_load_roundtrip(tmp_path, parts):
    bb = _backbone(parts)
    bb.save(tmp_path / "bb")
    again = ScratchBackbone.load(tmp_path / "bb")
    x = torch.tensor([[5, 6, 7]])
    assert torch.allclose(bb.model(x), again.model(x))
    with pytest.raises(InputError):
        ScratchBackbone.load(tmp_path)


def test_lora_adapters_save_load_merge(tmp_path, parts, index):
    pytest.importorskip("peft")
    from kforge.generation.adapters import load_adapter, merge, save_adapter, train_adapter

    bb = _backbone(parts)
    fam = parts["train"].filter(pl.col("family") == "net")
    ex = build_examples(bb, fam, index, self_in_index=True)
    tuned, res = train_adapter(bb, ex, TrainConfig(steps=8, batch_size=4, lr=1e-2, warmup=1))
    assert res.last_loss() < res.first_loss()
    trainable = [n for n, p in tuned.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    save_adapter(tuned, tmp_path / "net")
    loaded = load_adapter(bb, tmp_path / "net")
    x = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        a, b = tuned.model.eval()(x), loaded.model(x)
        c = merge(loaded).model(x)
        base = bb.model.eval()(x)
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(b, c, atol=1e-4)
    assert not torch.allclose(base, c, atol=1e-6)  # the adapter changed the model; the base is untouched
    with pytest.raises(InputError):
        load_adapter(bb, tmp_path / "nothing")

    # the gate: kept only when the family's held-out perplexity falls (decided on val, test only reported)
    from kforge.generation.adapters import compare_adapter

    g = compare_adapter(bb, tuned, ex[:6], ex[6:9])   # rows it was tuned on: its perplexity must fall
    assert g["val_ppl_adapter"] < g["val_ppl_base"] and g["kept"] and g["test_rows"] == 3
    same = compare_adapter(bb, bb, ex[:6], [])
    assert same["val_ppl_adapter"] == same["val_ppl_base"] and not same["kept"] and "does not help" in same["reason"]
    few = compare_adapter(bb, tuned, ex[:2], [])
    assert not few["kept"] and "only 2 held-out rows" in few["reason"]
