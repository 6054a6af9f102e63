"""LoRA adapters (peft), one per subsystem family, saved apart from the base model.

Works on both backbones (peft wraps the from-scratch ``TinyLM`` as a custom module and SmolLM2
as a transformers model). ``train_adapter`` fine-tunes only the adapter weights on one family's
examples; ``save_adapter``/``load_adapter`` round-trip it; ``merge`` folds it into a copy of the
base for fast inference. ``compare_adapter`` is the adapter's gate: an adapter is kept (saved,
registered, served) only when it lowers the held-out perplexity of its family against the base.
"""

import copy
import importlib.util
from pathlib import Path
from typing import Any

from kforge.errors import InputError
from kforge.generation.backbones import Backbone
from kforge.generation.prompts import Example
from kforge.generation.train import TrainConfig, TrainResult, perplexity, train

MIN_GATE_ROWS = 3   # held-out examples of the family needed before an adapter may be kept


def peft_available() -> bool:
    return importlib.util.find_spec("peft") is not None


def _need_peft() -> None:
    if not peft_available():
        raise InputError("LoRA adapters need peft: pip install peft==0.21.2")


def with_lora(backbone: Backbone, r: int = 8, alpha: int = 16, dropout: float = 0.05) -> Backbone:
    """A shallow copy of ``backbone`` whose model is the base wrapped with fresh LoRA adapters."""
    _need_peft()
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=backbone.lora_targets())
    out = copy.copy(backbone)
    out.model = get_peft_model(copy.deepcopy(backbone.model), cfg)
    return out


def train_adapter(backbone: Backbone, examples: list[Example], cfg: TrainConfig, r: int = 8) -> tuple[Backbone, TrainResult]:
    tuned = with_lora(backbone, r=r)
    return tuned, train(tuned, examples, cfg)


def save_adapter(backbone: Backbone, directory: Path, meta: dict[str, Any] | None = None) -> Path:
    import json

    if not hasattr(backbone.model, "save_pretrained"):
        raise InputError("this backbone carries no adapter to save")
    directory.mkdir(parents=True, exist_ok=True)
    backbone.model.save_pretrained(str(directory))
    (directory / "kforge_adapter.json").write_text(json.dumps({"backbone": backbone.kind, **(meta or {})}, default=str))
    return directory


def load_adapter(backbone: Backbone, directory: Path) -> Backbone:
    _need_peft()
    from peft import PeftModel

    if not (Path(directory) / "adapter_config.json").exists():
        raise InputError(f"{directory} holds no LoRA adapter (adapter_config.json missing)")
    out = copy.copy(backbone)
    out.model = PeftModel.from_pretrained(copy.deepcopy(backbone.model), str(directory))
    out.model.eval()
    return out


def merge(backbone: Backbone) -> Backbone:
    """Fold the adapter into the weights (returns a backbone with a plain base model)."""
    if not hasattr(backbone.model, "merge_and_unload"):
        raise InputError("this backbone carries no adapter to merge")
    out = copy.copy(backbone)
    out.model = backbone.model.merge_and_unload()
    return out


def adapter_for(backbone: Backbone, adapters_dir: Path | None, family: str) -> tuple[Backbone, str]:
    """The backbone with ``family``'s adapter merged in when one was trained, else the base."""
    if adapters_dir is None or not (adapters_dir / family / "adapter_config.json").exists() or not peft_available():
        return backbone, "base"
    return merge(load_adapter(backbone, adapters_dir / family)), family


def compare_adapter(base: Backbone, tuned: Backbone, val: list[Example], test: list[Example],
                    min_rows: int = MIN_GATE_ROWS) -> dict[str, Any]:
    """Held-out perplexity of the family's examples under the base and under base + adapter.

    The decision uses the validation examples only (``kept`` when the adapter's perplexity is
    lower on at least ``min_rows`` of them); the test figures are reported, never used to decide."""
    out: dict[str, Any] = {"val_rows": len(val), "test_rows": len(test)}
    for split, ex in (("val", val), ("test", test)):
        out[f"{split}_ppl_base"] = perplexity(base, ex) if ex else float("nan")
        out[f"{split}_ppl_adapter"] = perplexity(tuned, ex) if ex else float("nan")
    if len(val) < min_rows:
        out["kept"], out["reason"] = False, f"only {len(val)} held-out rows of this family (< {min_rows})"
    elif out["val_ppl_adapter"] < out["val_ppl_base"]:
        out["kept"], out["reason"] = True, (f"val perplexity {out['val_ppl_adapter']:.3f} < base "
                                            f"{out['val_ppl_base']:.3f}")
    else:
        out["kept"], out["reason"] = False, (f"val perplexity {out['val_ppl_adapter']:.3f} >= base "
                                             f"{out['val_ppl_base']:.3f}: the adapter does not help")
    return out
