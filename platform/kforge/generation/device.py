"""Where the level-2 LM trains, with what batch and learning rate, and in what precision: one rule
for ``kforge train generation``, the ``generation_models`` asset and ``bench/generation_gpu.py``.

Imports only torch (and :mod:`kforge.errors`), so a GPU machine without the rest of the stack can use it.

* **Device.** ``auto`` is ``cuda`` when torch sees a GPU, otherwise ``cpu``; ``cuda`` asked for
  without one is an error, never a silent fallback.
* **Batch.** ``batch_size=0`` is :data:`BATCH_FOR` of the device: 8 sequences on CPU (what two
  cores keep busy), 64 on CUDA (a batch of 8 leaves a GPU 20x under-used: issue 19 measured 38k
  against 842k tokens/s on one H200).
* **Learning rate.** ``lr=0`` is ``BASE_LR * sqrt(batch_size * grad_accum / BASE_BATCH)``: 3e-3 at
  the CPU batch of 8, about 8.5e-3 at 64 (square-root scaling, as for Adam-type optimizers).
* **Precision.** On CUDA with ``amp``: bf16 autocast where the GPU supports it (no loss scaling
  needed), else fp16 autocast with a ``GradScaler``. CPU always trains in fp32.

    >>> resolve_device("auto", cuda_available=False)
    'cpu'
    >>> scaled_lr(32)
    0.006
    >>> precision_for("cuda", amp=True, bf16_supported=False).name
    'fp16'
"""

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import torch

from kforge.errors import InputError

DEVICES = ("auto", "cpu", "cuda")
BATCH_FOR = {"cpu": 8, "cuda": 64}
BASE_BATCH = 8
BASE_LR = 3e-3


def resolve_device(requested: str, cuda_available: bool | None = None) -> str:
    """``cpu`` or ``cuda`` for a requested ``auto``/``cpu``/``cuda`` (``cuda_available``: torch's answer by default)."""
    if requested not in DEVICES:
        raise InputError(f"device must be one of {', '.join(DEVICES)}, got {requested!r}")
    has_cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if requested == "cuda" and not has_cuda:
        raise InputError("--device cuda was asked for but torch sees no CUDA device")
    if requested == "auto":
        return "cuda" if has_cuda else "cpu"
    return requested


def describe(device: str, requested: str) -> str:
    """One log line naming the device and why it was chosen."""
    why = f"asked for {requested}" if requested != "auto" else "auto"
    if device == "cuda":
        return f"LM device: cuda ({why}: {torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} visible)"
    return f"LM device: cpu ({why}: {'torch sees no CUDA device' if not torch.cuda.is_available() else 'CUDA not used'})"


def default_batch_size(device: str) -> int:
    return BATCH_FOR["cuda" if device.startswith("cuda") else "cpu"]


def scaled_lr(batch_size: int, grad_accum: int = 1, base_lr: float = BASE_LR) -> float:
    """``base_lr`` at :data:`BASE_BATCH` sequences per optimizer step, scaled by the square root of the batch."""
    return round(base_lr * math.sqrt(batch_size * grad_accum / BASE_BATCH), 6)


@dataclass(frozen=True)
class Precision:
    name: str                          # fp32 | bf16 | fp16
    dtype: torch.dtype | None          # the autocast dtype (None: no autocast)
    scaler: bool                       # fp16 needs loss scaling (torch.amp.GradScaler)


FP32 = Precision("fp32", None, False)


def precision_for(device: str, amp: bool, bf16_supported: bool | None = None) -> Precision:
    """The training precision: fp32 on CPU or without ``amp``; on CUDA bf16 where supported (by default
    torch's ``is_bf16_supported()``), else fp16 with a loss scaler."""
    if not amp or not device.startswith("cuda"):
        return FP32
    bf16 = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
    return Precision("bf16", torch.bfloat16, False) if bf16 else Precision("fp16", torch.float16, True)


def autocast(p: Precision, device: str) -> Any:
    """The autocast context for ``p`` on ``device`` (a no-op for fp32)."""
    if p.dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=p.dtype)


def grad_scaler(p: Precision, device: str) -> "torch.amp.GradScaler":
    """A ``GradScaler`` that is enabled only for fp16 (otherwise its calls pass straight through)."""
    return torch.amp.GradScaler("cuda" if device.startswith("cuda") else "cpu", enabled=p.scaler)
