"""The training loop shared by both backbones: mixed precision, gradient accumulation,
checkpoints every ``checkpoint_every`` steps and exact resume of an interrupted run.

Batches are drawn with a generator seeded by ``(seed, step)``, so a resumed run sees the same
batches it would have seen without the interruption.

Under ``torchrun`` (or ``distributed="on"``) the same loop is data-parallel
(:mod:`kforge.generation.distributed`): every rank draws the same global micro-batch of
``batch_size`` examples and trains on its strided slice inside ``DistributedDataParallel``; each
rank's summed token loss is divided by the token count of the *global* micro-batch, so the
averaged gradient equals the single-process one and the effective batch stays
``batch_size x grad_accum`` for any number of processes. Only rank 0 writes checkpoints.
"""

import contextlib
import copy
import math
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from kforge.errors import InputError
from kforge.generation import distributed
from kforge.generation.backbones import Backbone
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
    distributed: str = "auto"     # auto: DDP when launched by torchrun | on: require it | off: never

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
        if self.distributed not in distributed.MODES:
            raise InputError(f"distributed must be one of {', '.join(distributed.MODES)}, got {self.distributed!r}")


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


def n_targets(example: Example, max_len: int) -> int:
    """Tokens of ``example`` that carry loss once collated (``collate`` truncates to ``max_len``)."""
    return max(0, min(len(example.ids), max_len) - max(example.n_prompt, 1))


def _loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy over the target tokens (0 with a graph if there are none)."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
                           ignore_index=-100, reduction="sum")


def _autocast(cfg: TrainConfig) -> Any:
    if not cfg.amp:
        return torch.autocast(device_type=cfg.device, enabled=False)
    if cfg.device == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return torch.autocast(device_type="cpu", dtype=torch.bfloat16)


def _peak_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def train(backbone: Backbone, examples: list[Example], cfg: TrainConfig) -> TrainResult:
    """Train ``backbone.model`` in place on ``examples``; returns the loss history and throughput.

    Data-parallel when a process group exists or torchrun launched this process (see the module
    docstring); the history, ``tokens`` and ``tokens_per_s`` are then global (all ranks)."""
    cfg.validate()
    if not examples:
        raise InputError("no training examples")
    with distributed.process_group(cfg.device, cfg.distributed) as denv:
        return _train(backbone, examples, cfg, denv)


def _train(backbone: Backbone, examples: list[Example], cfg: TrainConfig, denv: distributed.DistEnv) -> TrainResult:
    if denv.ddp and cfg.batch_size < denv.world_size:
        raise InputError(f"batch_size {cfg.batch_size} (global) is smaller than the {denv.world_size} processes: "
                         f"every rank needs at least one example per micro-batch")
    torch.set_num_threads(max(1, cfg.threads))
    dev = distributed.device_for(cfg.device, denv)
    model = backbone.model.to(dev)
    if denv.ddp:
        distributed.check_same(distributed.digest([[e.n_prompt, *e.ids] for e in examples]), "the training examples")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(cfg.warmup, 1)) *
                                              0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    fp16 = cfg.amp and cfg.device == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)
    res = TrainResult()
    ckpt = Path(cfg.checkpoint_dir) / "last.pt" if cfg.checkpoint_dir else None
    start = 0
    state = None
    if ckpt and cfg.resume and denv.main and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu" if denv.ddp else dev, weights_only=False)
    if ckpt and cfg.resume and denv.ddp:
        state = distributed.broadcast(state)  # only rank 0 reads: the checkpoint dir need not be shared
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        res.history = state["history"]
        start = res.resumed_from = int(state["step"])
    runner, wrapped = backbone, None
    if denv.ddp:
        from torch.nn.parallel import DistributedDataParallel

        # broadcasts rank 0's weights; gradients are averaged over ranks in backward
        wrapped = DistributedDataParallel(model, device_ids=[torch.device(dev).index] if dev.startswith("cuda") else None)
        runner = copy.copy(backbone)
        runner.model = wrapped
        torch.manual_seed(cfg.seed * 1009 + denv.rank)  # ranks draw different dropout masks
    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    def checkpoint(step_done: int) -> None:
        if ckpt and denv.main:
            _save(ckpt, {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                         "step": step_done, "history": res.history, "world_size": denv.world_size})

    t0 = time.perf_counter()
    (model if wrapped is None else wrapped).train()
    for step in range(start, cfg.steps):
        rng = np.random.default_rng([cfg.seed, step])
        opt.zero_grad(set_to_none=True)
        total, ntok = 0.0, 0
        for micro in range(cfg.grad_accum):
            picks = rng.integers(0, len(examples), cfg.batch_size)
            n_global = sum(n_targets(examples[i], backbone.max_len) for i in picks)
            batch = [examples[i] for i in (distributed.shard(picks, denv) if denv.ddp else picks)]
            ids, mask, labels = (t.to(dev) for t in collate(batch, backbone.pad_id, backbone.max_len))
            last = micro == cfg.grad_accum - 1
            with wrapped.no_sync() if wrapped is not None and not last else contextlib.nullcontext():
                with _autocast(cfg):
                    loss = _loss_sum(runner.logits(ids, mask), labels) / max(n_global, 1) / cfg.grad_accum
                # DDP averages over ranks; x world_size turns that into the sum = the global-batch gradient
                scaler.scale(loss * denv.world_size).backward()
            total += float(loss.detach())
            ntok += int(mask.sum())
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(opt)
        scaler.update()
        sched.step()
        elapsed = time.perf_counter() - t0
        stop = bool(cfg.max_minutes and elapsed > cfg.max_minutes * 60)
        if denv.ddp:  # one small all-reduce: global loss and tokens; any rank out of time stops all
            agg = torch.tensor([total, float(ntok), float(stop)], dtype=torch.float64, device=dev)
            torch.distributed.all_reduce(agg)
            total, ntok, stop = float(agg[0]), int(agg[1]), bool(agg[2] > 0)
        res.tokens += ntok
        res.history.append({"step": step + 1, "loss": total, "lr": sched.get_last_lr()[0], "seconds": elapsed})
        if cfg.target_loss and math.isnan(res.time_to_target_s) and np.mean([h["loss"] for h in res.history[-5:]]) <= cfg.target_loss:
            res.time_to_target_s = elapsed
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            checkpoint(step + 1)
        if stop:
            res.stopped_early = step + 1 < cfg.steps
            checkpoint(step + 1)
            break
    if wrapped is not None:
        del wrapped, runner  # drops DDP's gradient hooks: backbone.model is the plain module again
        if ckpt:
            distributed.barrier()  # nobody returns before rank 0's checkpoint is on disk
    res.steps_done = len(res.history)
    res.seconds = time.perf_counter() - t0
    res.peak_mem_mb = _peak_mb(dev)
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
