"""The training loop shared by both backbones: mixed precision, gradient accumulation,
checkpoints every ``checkpoint_every`` steps and exact resume of an interrupted run.

Batches are drawn with a generator seeded by ``(seed, step)``, so a resumed run sees the same
batches it would have seen without the interruption.
"""

import math
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kforge.errors import InputError
from kforge.generation.backbones import Backbone
from kforge.generation.lm import lm_loss
from kforge.generation.prompts import Example


@dataclass
class TrainConfig:
    steps: int = 200
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 3e-3
    warmup: int = 20
    weight_decay: float = 0.01
    device: str = "cpu"
    amp: bool = False
    checkpoint_dir: str = ""
    checkpoint_every: int = 50
    resume: bool = True
    seed: int = 7
    max_minutes: float = 0.0
    target_loss: float = 0.0
    threads: int = 1

    def validate(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise InputError(f"device must be cpu or cuda, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise InputError("--device cuda was asked for but torch sees no CUDA device")
        for name in ("steps", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (0 < self.lr < 1):
            raise InputError(f"lr must be in (0, 1), got {self.lr}")


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    steps_done: int = 0
    resumed_from: int = 0
    tokens: int = 0
    seconds: float = 0.0
    time_to_target_s: float = float("nan")
    peak_mem_mb: float = 0.0
    stopped_early: bool = False

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def first_loss(self) -> float:
        return self.history[0]["loss"] if self.history else float("nan")

    def last_loss(self, k: int = 5) -> float:
        tail = [h["loss"] for h in self.history[-k:]]
        return float(np.mean(tail)) if tail else float("nan")


def collate(batch: list[Example], pad_id: int, max_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = min(max(len(e.ids) for e in batch), max_len)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), n), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.bool)
    for i, e in enumerate(batch):
        seq = e.ids[:n]
        ids[i, :len(seq)] = torch.tensor(seq)
        mask[i, :len(seq)] = True
        labels[i, e.n_prompt:len(seq)] = torch.tensor(seq[e.n_prompt:])
    return ids, mask, labels


def _autocast(cfg: TrainConfig) -> Any:
    if not cfg.amp:
        return torch.autocast(device_type=cfg.device, enabled=False)
    if cfg.device == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return torch.autocast(device_type="cpu", dtype=torch.bfloat16)


def _peak_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def train(backbone: Backbone, examples: list[Example], cfg: TrainConfig) -> TrainResult:
    """Train ``backbone.model`` in place on ``examples``; returns the loss history and throughput."""
    cfg.validate()
    if not examples:
        raise InputError("no training examples")
    torch.set_num_threads(max(1, cfg.threads))
    model = backbone.model.to(cfg.device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(cfg.warmup, 1)) *
                                              0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    fp16 = cfg.amp and cfg.device == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)
    res = TrainResult()
    ckpt = Path(cfg.checkpoint_dir) / "last.pt" if cfg.checkpoint_dir else None
    start = 0
    if ckpt and cfg.resume and ckpt.exists():
        state = torch.load(ckpt, map_location=cfg.device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        res.history = state["history"]
        start = res.resumed_from = int(state["step"])
    if cfg.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    model.train()
    step = start
    for step in range(start, cfg.steps):
        rng = np.random.default_rng([cfg.seed, step])
        opt.zero_grad(set_to_none=True)
        total, ntok = 0.0, 0
        for _ in range(cfg.grad_accum):
            batch = [examples[i] for i in rng.integers(0, len(examples), cfg.batch_size)]
            ids, mask, labels = (t.to(cfg.device) for t in collate(batch, backbone.pad_id, backbone.max_len))
            with _autocast(cfg):
                loss = lm_loss(backbone.logits(ids, mask), labels) / cfg.grad_accum
            scaler.scale(loss).backward()
            total += float(loss.detach())
            ntok += int(mask.sum())
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(opt)
        scaler.update()
        sched.step()
        res.tokens += ntok
        elapsed = time.perf_counter() - t0
        res.history.append({"step": step + 1, "loss": total, "lr": sched.get_last_lr()[0], "seconds": elapsed})
        if cfg.target_loss and math.isnan(res.time_to_target_s) and np.mean([h["loss"] for h in res.history[-5:]]) <= cfg.target_loss:
            res.time_to_target_s = elapsed
        if ckpt and ((step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps):
            _save(ckpt, {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                         "step": step + 1, "history": res.history})
        if cfg.max_minutes and elapsed > cfg.max_minutes * 60:
            res.stopped_early = step + 1 < cfg.steps
            if ckpt:
                _save(ckpt, {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                             "step": step + 1, "history": res.history})
            break
    res.steps_done = len(res.history)
    res.seconds = time.perf_counter() - t0
    res.peak_mem_mb = _peak_mb(cfg.device)
    model.eval()
    return res


@torch.no_grad()
def perplexity(backbone: Backbone, examples: list[Example], batch_size: int = 16) -> float:
    """exp(mean next-token NLL over target tokens) of held-out examples."""
    if not examples:
        return float("nan")
    backbone.model.eval()
    dev = backbone.device()
    nll, n = 0.0, 0
    for i in range(0, len(examples), batch_size):
        ids, mask, labels = (t.to(dev) for t in collate(examples[i:i + batch_size], backbone.pad_id, backbone.max_len))
        logits = backbone.logits(ids, mask).float()
        lp = torch.log_softmax(logits[:, :-1], dim=-1)
        tgt = labels[:, 1:]
        keep = tgt != -100
        picked = lp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        nll -= float(picked[keep].sum())
        n += int(keep.sum())
    return math.exp(nll / max(n, 1))
