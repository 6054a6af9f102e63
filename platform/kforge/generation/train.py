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

**Budget.** A run is sized in optimizer steps (``steps``), in tokens (``budget_tokens``: prompt and
target tokens seen, as ``tokens_per_s`` counts them) or in passes over the examples (``epochs``),
the first of them that is set, in that order; :func:`planned_steps` turns it into steps for the
cosine schedule. ``max_minutes`` is a wall-clock budget on top: after :data:`FIT_STEPS` steps the
measured step time shrinks the schedule's horizon to what fits (the learning rate still decays to
zero), and training stops at the budget whatever happens. Device, batch size, learning rate and
precision follow :mod:`kforge.generation.device` (``auto``/0 values are resolved by
:meth:`TrainConfig.resolved`).
"""

import contextlib
import copy
import math
import pickle
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from kforge.errors import InputError
from kforge.generation import device as devices
from kforge.generation import distributed
from kforge.generation.backbones import Backbone
from kforge.generation.prompts import Example

FIT_STEPS = 5   # steps timed before a max_minutes budget fits the schedule's horizon

# Named training budgets (``kforge train generation --budget``, the generation asset's ``budget``):
# * demo: the tokens the demo's LM saw when it trained 40 steps of batch 8 (40 x 8 x ~270 tokens on
#   the demo repository): about 15 s on one CPU thread, the same on CUDA in a few larger steps;
# * nightly: 12 epochs (what one H200 minute bought on DPDK in issue 19) within 20 minutes of
#   training: on CPU the 20 minutes bind (the schedule is fitted to them), on a GPU the epochs do.
BUDGETS: dict[str, dict[str, float]] = {
    "demo": {"budget_tokens": 86_000},
    "nightly": {"epochs": 12.0, "max_minutes": 20.0},
}


def budget_preset(budget: str, trigger: str = "", *, steps: int = 0, budget_tokens: int = 0, epochs: float = 0.0,
                  max_minutes: float = 0.0) -> dict[str, Any]:
    """The budget fields of a :class:`TrainConfig`: ``steps``/``budget_tokens``/``epochs`` when one is given
    (with ``max_minutes`` as given), else the named budget of :data:`BUDGETS` (``max_minutes`` > 0 still
    overrides its time limit). ``auto`` is ``demo`` for a run triggered by the demo, else ``nightly``."""
    if budget == "auto":
        budget = "demo" if trigger == "demo" else "nightly"
    if budget not in BUDGETS:
        raise InputError(f"budget must be auto or one of {', '.join(BUDGETS)}, got {budget!r}")
    if steps or budget_tokens or epochs:
        return {"steps": steps, "budget_tokens": budget_tokens, "epochs": epochs, "max_minutes": max_minutes}
    b = BUDGETS[budget]
    return {"steps": 0, "budget_tokens": int(b.get("budget_tokens", 0)), "epochs": float(b.get("epochs", 0.0)),
            "max_minutes": max_minutes or float(b.get("max_minutes", 0.0))}


@dataclass
class TrainConfig:
    steps: int = 0                # optimizer steps; 0: from budget_tokens, else from epochs
    budget_tokens: int = 0        # about this many tokens (prompt + target) seen in training
    epochs: float = 1.0           # passes over the examples (used when steps and budget_tokens are 0)
    batch_size: int = 0           # sequences per micro-batch (global under DDP); 0: 8 on CPU, 64 on CUDA
    grad_accum: int = 1
    lr: float = 0.0               # peak learning rate; 0: 3e-3 x sqrt(batch_size x grad_accum / 8)
    warmup: int = 20
    weight_decay: float = 0.01
    device: str = "auto"          # auto: cuda when torch sees a GPU, else cpu
    amp: bool = True              # CUDA only: bf16 autocast where supported, else fp16 + GradScaler
    checkpoint_dir: str = ""
    checkpoint_every: int = 50
    resume: bool = True
    seed: int = 7
    max_minutes: float = 0.0      # wall-clock budget: the schedule is fitted to it, training stops at it
    target_loss: float = 0.0
    threads: int = 1
    distributed: str = "auto"     # auto: DDP when launched by torchrun | on: require it | off: never

    def validate(self) -> None:
        devices.resolve_device(self.device)   # an unknown device, or cuda without one, is an InputError
        for name in ("steps", "budget_tokens", "batch_size"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.grad_accum < 1:
            raise InputError(f"grad_accum must be >= 1, got {self.grad_accum}")
        if self.epochs < 0 or not (self.steps or self.budget_tokens or self.epochs):
            raise InputError(f"give the training budget as steps, budget_tokens or epochs > 0 (got steps={self.steps}, "
                             f"budget_tokens={self.budget_tokens}, epochs={self.epochs})")
        if not (0 <= self.lr < 1):
            raise InputError(f"lr must be in (0, 1) (or 0 for the device rule), got {self.lr}")
        if self.max_minutes < 0:
            raise InputError(f"max_minutes must be >= 0, got {self.max_minutes}")
        if self.distributed not in distributed.MODES:
            raise InputError(f"distributed must be one of {', '.join(distributed.MODES)}, got {self.distributed!r}")

    def resolved(self, log: Callable[[str], None] | None = None) -> "TrainConfig":
        """A copy with the device, batch size and learning rate made concrete (:mod:`kforge.generation.device`);
        ``log`` gets one line saying what was chosen and why."""
        self.validate()
        dev = devices.resolve_device(self.device)
        batch = self.batch_size or devices.default_batch_size(dev)
        out = replace(self, device=dev, batch_size=batch, lr=self.lr or devices.scaled_lr(batch, self.grad_accum))
        if log is not None:
            log(f"{devices.describe(dev, self.device)}; batch {batch} x {self.grad_accum}, lr {out.lr:g}"
                f"{'' if self.lr else ' (scaled to the batch)'}, {devices.precision_for(dev, self.amp).name}")
        return out


def planned_steps(cfg: TrainConfig, examples: list[Example], max_len: int) -> int:
    """Optimizer steps for the budget (``cfg`` resolved): ``steps``, else ``budget_tokens`` over the mean
    collated example length, else ``epochs`` over the examples."""
    if cfg.steps:
        return cfg.steps
    per_step = cfg.batch_size * cfg.grad_accum
    if cfg.budget_tokens:
        mean_len = sum(min(len(e.ids), max_len) for e in examples) / max(len(examples), 1)
        return max(1, math.ceil(cfg.budget_tokens / (per_step * max(mean_len, 1.0))))
    return max(1, math.ceil(cfg.epochs * len(examples) / per_step))


def fitted_horizon(step_done: int, started: int, elapsed_s: float, budget_s: float, planned: int) -> int:
    """The last step that fits ``budget_s`` when ``step_done - started`` steps took ``elapsed_s``."""
    per_step = elapsed_s / max(step_done - started, 1)
    left = int((budget_s - elapsed_s) / per_step) if per_step > 0 else planned
    return max(step_done, min(planned, step_done + left))


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
    planned_steps: int = 0          # what the budget (steps, tokens or epochs) asked for
    horizon_steps: int = 0          # the schedule's length: planned_steps, or fewer to fit max_minutes
    precision: str = "fp32"

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


def _peak_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _save(path: Path, state: dict[str, Any]) -> None:
    """Tensors, numbers, strings and containers only, so that :func:`load_checkpoint` can read it back
    with ``weights_only=True``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


CHECKPOINT_KEYS = ("model", "opt", "sched", "step", "history")


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint that :func:`_save` wrote, read with ``torch.load(weights_only=True)``: the file can hold
    only tensors and plain data, never code. Anything else (a pickled object, a truncated or foreign
    file) raises :class:`InputError` before any state is used."""
    hint = "delete it or pass --no-resume to start afresh"
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(f"{path}: refused: it holds pickled objects, not only tensors and plain data (kforge reads "
                         f"checkpoints as weights only and never runs code from them); {hint}") from None
    except Exception as exc:  # noqa: BLE001 - a broken zip, EOF, not a torch file: one line, no traceback
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise InputError(f"{path}: not a checkpoint kforge can resume ({type(exc).__name__}: {first}); {hint}") from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise InputError(f"{path}: not a kforge training checkpoint (missing {', '.join(missing)}); {hint}")
    if not isinstance(state["step"], int) or state["step"] < 0 or not isinstance(state["history"], list):
        raise InputError(f"{path}: a checkpoint with a malformed step or history; {hint}")
    return state


def _resume(path: Path, state: dict[str, Any], model: torch.nn.Module, opt: Any, sched: Any) -> None:
    hint = "it was written for another model or optimizer configuration: delete it or pass --no-resume"
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise InputError(f"{path}: cannot resume from this checkpoint ({type(exc).__name__}: {first}); {hint}") from None


def train(backbone: Backbone, examples: list[Example], cfg: TrainConfig) -> TrainResult:
    """Train ``backbone.model`` in place on ``examples``; returns the loss history and throughput.

    Data-parallel when a process group exists or torchrun launched this process (see the module
    docstring); the history, ``tokens`` and ``tokens_per_s`` are then global (all ranks)."""
    cfg = cfg.resolved()
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
    planned = planned_steps(cfg, examples, backbone.max_len)
    # warm-up, then cosine decay to 0 at horizon[0]; with a time budget the decay starts after fit_at
    # steps, so fitting the horizon at that step changes no learning rate already used
    fit_at = min(FIT_STEPS, planned) if cfg.max_minutes else 0
    horizon = [planned]

    def lr_factor(s: int) -> float:
        span = max(horizon[0] - fit_at, 1)
        return min(1.0, (s + 1) / max(cfg.warmup, 1)) * 0.5 * (1 + math.cos(math.pi * min(max(s - fit_at, 0), span) / span))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    prec = devices.precision_for(cfg.device, cfg.amp)
    scaler = devices.grad_scaler(prec, dev)
    res = TrainResult(planned_steps=planned, precision=prec.name)
    ckpt = Path(cfg.checkpoint_dir) / "last.pt" if cfg.checkpoint_dir else None
    start = 0
    state = None
    refused = ""
    if ckpt and cfg.resume and denv.main and ckpt.exists():
        try:
            state = load_checkpoint(ckpt, map_location="cpu" if denv.ddp else dev)
        except InputError as exc:
            if not denv.ddp:
                raise
            refused = str(exc)  # every rank must hear it, or the others would wait on the broadcast
    if ckpt and cfg.resume and denv.ddp:
        # only rank 0 reads: the checkpoint dir need not be shared
        state, refused = distributed.broadcast((state, refused))  # type: ignore[misc]
        if refused:
            raise InputError(refused)
    if state is not None:
        assert ckpt is not None
        _resume(ckpt, state, model, opt, sched)
        res.history = state["history"]
        start = res.resumed_from = int(state["step"])
        if cfg.max_minutes and isinstance(state.get("fitted_horizon"), int):
            horizon[0] = min(planned, state["fitted_horizon"])  # the interrupted run's fitted schedule
        sched.base_lrs = [cfg.lr] * len(opt.param_groups)  # this run's schedule from here on
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(start)
    fit_step = (fit_at if start < fit_at else start + FIT_STEPS) if cfg.max_minutes and horizon[0] == planned else 0
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
                         "step": step_done, "history": res.history, "world_size": denv.world_size,
                         **({"fitted_horizon": horizon[0]} if cfg.max_minutes and not fit_step else {})})

    t0 = time.perf_counter()
    (model if wrapped is None else wrapped).train()
    for step in range(start, planned):
        if step >= horizon[0]:
            break
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
                with devices.autocast(prec, dev):
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
        if denv.ddp:  # one small all-reduce: global loss and tokens, mean clock; any rank out of time stops all
            agg = torch.tensor([total, float(ntok), float(stop), elapsed], dtype=torch.float64, device=dev)
            torch.distributed.all_reduce(agg)
            total, ntok, stop = float(agg[0]), int(agg[1]), bool(agg[2] > 0)
            elapsed = float(agg[3]) / denv.world_size
        res.tokens += ntok
        res.history.append({"step": step + 1, "loss": total, "lr": sched.get_last_lr()[0], "seconds": elapsed})
        if cfg.target_loss and math.isnan(res.time_to_target_s) and np.mean([h["loss"] for h in res.history[-5:]]) <= cfg.target_loss:
            res.time_to_target_s = elapsed
        if step + 1 == fit_step:  # every rank computes the same horizon from the same (mean) clock
            horizon[0] = fitted_horizon(step + 1, start, elapsed, cfg.max_minutes * 60, planned)
            fit_step = 0
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == horizon[0]:
            checkpoint(step + 1)
        if stop:
            res.stopped_early = step + 1 < horizon[0]
            checkpoint(step + 1)
            break
    if wrapped is not None:
        del wrapped, runner  # drops DDP's gradient hooks: backbone.model is the plain module again
        if ckpt:
            distributed.barrier()  # nobody returns before rank 0's checkpoint is on disk
    res.steps_done = len(res.history)
    res.horizon_steps = horizon[0]
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


def perplexity_by_group(backbone: Backbone, examples: list[Example], groups: list[str],
                        batch_size: int = 16) -> dict[str, float]:
    """:func:`perplexity` of the examples of each group (``groups[i]`` names the group of ``examples[i]``)."""
    if len(groups) != len(examples):
        raise ValueError(f"{len(groups)} group names for {len(examples)} examples")
    by: dict[str, list[Example]] = {}
    for g, e in zip(groups, examples, strict=True):
        by.setdefault(g, []).append(e)
    return {g: perplexity(backbone, ex, batch_size) for g, ex in by.items()}
