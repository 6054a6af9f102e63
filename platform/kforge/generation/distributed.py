"""Data-parallel training of the level-2 LM with PyTorch's own launcher (``torchrun``) and DDP.

kforge does not launch workers itself: ``torchrun`` does, and sets ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``. Under it :func:`kforge.generation.train.train`
joins (or creates) the default process group (gloo on CPU, nccl on CUDA), wraps the model in
``DistributedDataParallel`` and gives each rank a deterministic slice of every global batch, so
the effective batch is ``batch_size x grad_accum`` whatever the number of processes.

One node, two processes (CPU or two GPUs)::

    torchrun --standalone --nproc_per_node=2 -m kforge.cli.main train generation --diffs x.diffs.parquet
    kforge train generation --nproc 2 --diffs x.diffs.parquet        # spawns the line above

Only rank 0 prints, writes checkpoints, logs to MLflow and registers (:func:`is_main`).
"""

import contextlib
import hashlib
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from kforge.errors import InputError

MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job (``world_size == 1``: plain single-process training)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    ddp: bool = False           # a process group is in use: wrap the model in DDP

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """True in a process started by torchrun (or anything else that sets the env:// variables)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def env() -> DistEnv:
    """The current process group if one is initialised, else the torchrun variables, else rank 0 of 1."""
    if dist.is_available() and dist.is_initialized():
        return DistEnv(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), ddp=True)
    if launched():
        return DistEnv(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    return DistEnv()


def is_main() -> bool:
    """Whether this process may write shared state (checkpoints, MLflow runs, registry, stdout)."""
    return env().main


def backend_for(device: str) -> str:
    return "nccl" if device.startswith("cuda") else "gloo"


def wanted(mode: str) -> bool:
    """Whether training should be data-parallel for a ``TrainConfig.distributed`` value."""
    if mode not in MODES:
        raise InputError(f"distributed must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "off":
        return False
    if dist.is_available() and dist.is_initialized():
        return True
    if launched():
        return True
    if mode == "on":
        raise InputError("distributed='on' needs torchrun (RANK/WORLD_SIZE/LOCAL_RANK unset) or an initialised "
                         "process group: torchrun --standalone --nproc_per_node=N -m kforge.cli.main train generation ...")
    return False


def init(device: str = "cpu") -> bool:
    """Join the default process group from the env:// variables; False if it already existed."""
    if not dist.is_available():
        raise InputError("this torch build has no torch.distributed")
    if dist.is_initialized():
        return False
    if not launched():
        raise InputError("no process group and no torchrun variables (RANK/WORLD_SIZE/LOCAL_RANK)")
    if device.startswith("cuda"):
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend_for(device))
    return True


@contextlib.contextmanager
def process_group(device: str = "cpu", mode: str = "auto") -> Iterator[DistEnv]:
    """Hold the default process group for a block (several ``train`` calls share it); destroyed
    at the end if this block created it. Yields rank 0 of 1 when not distributed."""
    use = wanted(mode)
    created = init(device) if use else False
    try:
        yield env() if use else DistEnv()
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


def device_for(device: str, denv: DistEnv) -> str:
    """``cuda`` becomes this rank's GPU (``cuda:LOCAL_RANK``) under DDP."""
    if device == "cuda" and denv.ddp:
        return f"cuda:{denv.local_rank}"
    return device


def shard(items: Sequence[int], denv: DistEnv) -> list[int]:
    """This rank's share of one global micro-batch (strided, so sizes differ by at most one)."""
    return list(items[denv.rank::denv.world_size])


def digest(rows: Sequence[Sequence[int]]) -> int:
    """A 64-bit fingerprint of integer rows (token ids), to check that ranks agree."""
    h = hashlib.blake2b(digest_size=8)
    for r in rows:
        h.update(len(r).to_bytes(4, "little"))
        h.update(np.asarray(r, dtype=np.int64).tobytes())
    return int.from_bytes(h.digest(), "little", signed=True)


def check_same(value: int, what: str) -> None:
    """Raise if ranks disagree on ``value`` (e.g. a digest of the training examples)."""
    got: list[int | None] = [None] * dist.get_world_size()
    dist.all_gather_object(got, value)
    if len(set(got)) > 1:
        raise InputError(f"ranks disagree on {what} ({len(set(got))} distinct values): every rank must build "
                         f"the same tokenizer and examples (same data, same seed)")


def broadcast(obj: object) -> object:
    """Rank 0's ``obj`` on every rank (e.g. a checkpoint only rank 0 read)."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def torchrun_command(nproc: int, module: str, argv: Sequence[str]) -> list[str]:
    """``torchrun --standalone`` running ``python -m module argv`` on ``nproc`` local processes."""
    if nproc < 1:
        raise InputError(f"--nproc must be >= 1, got {nproc}")
    launcher = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    cmd = [launcher] if launcher else [sys.executable, "-m", "torch.distributed.run"]
    return [*cmd, "--standalone", f"--nproc_per_node={nproc}", "-m", module, *argv]
