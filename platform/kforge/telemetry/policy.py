"""A learned scheduling policy: attention over the runnable tasks, trained by imitating the SRPT
oracle (behaviour cloning plus DAgger rounds in the simulator), served as plain numpy.

The torch module is one self-attention layer over candidate features followed by a scoring MLP;
the softmax over candidates is trained with cross-entropy on the oracle's choice.
:class:`NumpyPolicy` runs the same weights without torch (the per-decision latency that counts),
and :func:`export_torchscript` writes a TorchScript file for users who serve with torch.
"""

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kforge.errors import InputError
from kforge.telemetry.schedsim import (
    CFS,
    N_FEATURES,
    RoundRobin,
    SchedSim,
    SchedWorkload,
    SRPTOracle,
    features,
    make_sched_workload,
    run_policy,
)


def _torch():
    import torch

    return torch


def build_module(d: int = 32, seed: int = 0):  # noqa: ANN201 - torch imported lazily
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(seed)

    class AttnScorer(nn.Module):
        """x: (B, N, F) candidate features, mask: (B, N) True where a candidate exists."""

        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(N_FEATURES, d)
            self.q = nn.Linear(d, d)
            self.k = nn.Linear(d, d)
            self.v = nn.Linear(d, d)
            self.hid = nn.Linear(2 * d, d)
            self.out = nn.Linear(d, 1)
            self.scale = 1.0 / math.sqrt(d)

        def forward(self, x: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
            h = torch.relu(self.inp(x))
            att = torch.matmul(self.q(h), self.k(h).transpose(1, 2)) * self.scale
            att = att.masked_fill(~mask.unsqueeze(1), -1e9)
            ctx = torch.matmul(torch.softmax(att, dim=-1), self.v(h))
            z = torch.relu(self.hid(torch.cat([h, ctx], dim=-1)))
            return self.out(z).squeeze(-1).masked_fill(~mask, -1e9)

    return AttnScorer()


class NumpyPolicy:
    """The trained scorer in numpy: picks the highest-scoring candidate; no time slice (decisions
    happen when the running task blocks/finishes or a task wakes up)."""

    name = "learned"

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        need = {"inp.weight", "inp.bias", "q.weight", "q.bias", "k.weight", "k.bias", "v.weight", "v.bias",
                "hid.weight", "hid.bias", "out.weight", "out.bias"}
        missing = need - set(weights)
        if missing:
            raise InputError(f"policy weights lack {sorted(missing)}")
        w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.w = w
        self._wi, self._bi = w["inp.weight"].T.copy(), w["inp.bias"]
        d = self._wi.shape[1]
        self._wqkv = np.concatenate([w["q.weight"].T, w["k.weight"].T, w["v.weight"].T], axis=1).copy()
        self._bqkv = np.concatenate([w["q.bias"], w["k.bias"], w["v.bias"]])
        self._wh, self._bh = w["hid.weight"].T.copy(), w["hid.bias"]
        self._wo, self._bo = w["out.weight"].T.copy()[:, 0], float(w["out.bias"][0])
        self._d = d
        self._scale = np.float32(1.0 / math.sqrt(d))

    def scores(self, x: np.ndarray) -> np.ndarray:
        h = np.maximum(x @ self._wi + self._bi, 0)
        qkv = h @ self._wqkv + self._bqkv
        d = self._d
        q, k, v = qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:]
        a = (q @ k.T) * self._scale
        a = np.exp(a - a.max(axis=1, keepdims=True))
        ctx = (a / a.sum(axis=1, keepdims=True)) @ v
        z = np.maximum(np.concatenate([h, ctx], axis=1) @ self._wh + self._bh, 0)
        return z @ self._wo + self._bo

    def pick(self, sim: SchedSim, cands: list[int]) -> int:
        if len(cands) == 1:
            return cands[0]
        return cands[int(np.argmax(self.scores(features(sim, cands))))]

    def slice_ms(self, sim: SchedSim, task: int) -> float:
        return math.inf

    def preempt_on_wake(self, sim: SchedSim, woken: int) -> bool:
        return True

    def save(self, path: Path) -> Path:
        np.savez(path, **self.w)
        return path

    @classmethod
    def load(cls, path: Path) -> "NumpyPolicy":
        if not Path(path).exists():
            raise InputError(f"{path}: no such policy weights file")
        with np.load(path) as z:
            return cls({k: z[k] for k in z.files})


@dataclass(frozen=True)
class PolicyConfig:
    train_mixes: tuple[str, ...] = ("mixed", "interactive_heavy", "batch_heavy")
    train_seeds: tuple[int, ...] = tuple(range(6))
    n_tasks: int = 150
    epochs: int = 6
    dagger_rounds: int = 2
    lr: float = 3e-3
    hidden: int = 32
    seed: int = 0


def _pack(data: list[tuple[np.ndarray, int]], batch: int) -> list[tuple]:
    """Pre-built padded tensors, batches of similar candidate counts (built once per fit)."""
    torch = _torch()
    order = sorted(range(len(data)), key=lambda i: len(data[i][0]))
    out = []
    for i in range(0, len(order), batch):
        chunk = [data[j] for j in order[i:i + batch]]
        m = max(len(x) for x, _ in chunk)
        x = np.zeros((len(chunk), m, N_FEATURES), dtype=np.float32)
        mask = np.zeros((len(chunk), m), dtype=bool)
        for b, (f, _) in enumerate(chunk):
            x[b, :len(f)] = f
            mask[b, :len(f)] = True
        out.append((torch.from_numpy(x), torch.from_numpy(mask), torch.tensor([y for _, y in chunk])))
    return out


def _fit(module, data: list, epochs: int, lr: float, seed: int) -> list[float]:  # noqa: ANN001
    torch = _torch()
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    batches = _pack(data, 256)
    losses = []
    module.train()
    for _ in range(epochs):
        tot, n = 0.0, 0
        for k in rng.permutation(len(batches)):
            x, mask, y = batches[k]
            loss = torch.nn.functional.cross_entropy(module(x, mask), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * len(y)
            n += len(y)
        losses.append(tot / max(n, 1))
    module.eval()
    return losses


def to_numpy(module) -> NumpyPolicy:  # noqa: ANN001
    return NumpyPolicy({k: v.detach().cpu().numpy() for k, v in module.state_dict().items()})


def train_policy(cfg: PolicyConfig) -> tuple[object, NumpyPolicy, dict[str, float]]:
    """Behaviour cloning on SRPT oracle runs, then DAgger: run the learned policy, label the
    states it visits with the oracle's choice, retrain on everything. The figures returned are all
    training-set figures (``train_*``): none of them says how the policy does on unseen workloads."""
    oracle = SRPTOracle()
    wls = [make_sched_workload(m, s, cfg.n_tasks) for m in cfg.train_mixes for s in cfg.train_seeds]
    data: list[tuple[np.ndarray, int]] = []
    for wl in wls:
        run_policy(wl, oracle, recorder=data, oracle=oracle)
    module = build_module(cfg.hidden, cfg.seed)
    losses = _fit(module, data, cfg.epochs, cfg.lr, cfg.seed)
    for r in range(cfg.dagger_rounds):
        pol = to_numpy(module)
        for wl in wls:
            run_policy(wl, pol, recorder=data, oracle=oracle)
        losses += _fit(module, data, max(2, cfg.epochs // 2), cfg.lr / 2, cfg.seed + r + 1)
    pol = to_numpy(module)
    agree = float(np.mean([int(np.argmax(pol.scores(x))) == y for x, y in data[-5000:]]))
    # every figure here comes from the training states, hence the train_ prefix: logged to MLflow,
    # never gated on nor shown beside the held-out figures (kforge.telemetry.release)
    return module, pol, {"train_decisions": float(len(data)), "train_final_loss": losses[-1],
                         "train_oracle_agreement": agree}


def evaluate_policies(workloads: list[SchedWorkload], learned: NumpyPolicy) -> list[dict]:
    """Per workload and policy (RR, CFS, SRPT oracle, learned): the summary metrics."""
    rows = []
    for wl in workloads:
        for pol in (RoundRobin(10.0), CFS(), SRPTOracle(), learned):
            res = run_policy(wl, pol)
            rows.append({"mix": wl.mix, "seed": wl.seed, "policy": pol.name, **res.summary()})
    return rows


def compare_to_cfs(rows: list[dict]) -> dict[str, float]:
    """Relative improvement of the learned policy over CFS, per workload then averaged."""
    import polars as pl

    df = pl.DataFrame(rows)
    pivot = {}
    for metric in ("mean_turnaround_ms", "p99_latency_ms", "context_switches"):
        w = df.pivot(on="policy", index=["mix", "seed"], values=metric)
        pivot[metric] = w
    t, c, lat = pivot["mean_turnaround_ms"], pivot["context_switches"], pivot["p99_latency_ms"]
    return {
        "test_turnaround_gain_vs_cfs": float((1 - t["learned"] / t["cfs"]).mean()),
        "test_switch_reduction_vs_cfs": float((1 - c["learned"] / c["cfs"]).mean()),
        "test_turnaround_gain_vs_rr": float((1 - t["learned"] / t["rr_10ms"]).mean()),
        "test_rr_turnaround_gain_vs_cfs": float((1 - t["rr_10ms"] / t["cfs"]).mean()),
        "test_p99_latency_ratio_vs_cfs": float((lat["learned"] / lat["cfs"].clip(lower_bound=1e-6)).median()),
        "test_turnaround_gap_to_oracle": float((t["learned"] / t["srpt_oracle"] - 1).mean()),
        "test_mean_turnaround_ms": float(t["learned"].mean()),
        "test_cfs_mean_turnaround_ms": float(t["cfs"].mean()),
        "test_rr_mean_turnaround_ms": float(t["rr_10ms"].mean()),
    }


def decision_latency_us(policy: NumpyPolicy, module=None, n: int = 2000, seed: int = 0) -> dict[str, float]:  # noqa: ANN001
    """Per-decision inference time (µs) on realistic candidate sets from a held-out run:
    numpy scoring alone, features + scoring, and (if given) torch eager and TorchScript."""
    wl = make_sched_workload("mixed", 10_000 + seed)
    recorded: list = []
    run_policy(wl, policy, recorder=recorded, oracle=policy)
    xs = [x for x, _ in recorded][:n] or [np.zeros((4, N_FEATURES), dtype=np.float32)]
    out: dict[str, float] = {"mean_candidates": float(np.mean([len(x) for x in xs]))}

    def timed(fn) -> float:  # noqa: ANN001
        ts = []
        for x in xs:
            t0 = time.perf_counter_ns()
            fn(x)
            ts.append(time.perf_counter_ns() - t0)
        return float(np.percentile(ts, 50)) / 1000.0, float(np.percentile(ts, 99)) / 1000.0

    for x in xs[:50]:
        policy.scores(x)
    out["numpy_p50_us"], out["numpy_p99_us"] = timed(policy.scores)
    if module is not None:
        torch = _torch()
        scripted = torch.jit.script(module)
        with torch.inference_mode():
            def eager(x: np.ndarray) -> None:
                module(torch.from_numpy(x)[None], torch.ones((1, len(x)), dtype=torch.bool))

            def script(x: np.ndarray) -> None:
                scripted(torch.from_numpy(x)[None], torch.ones((1, len(x)), dtype=torch.bool))

            for x in xs[:50]:
                eager(x)
                script(x)
            out["torch_eager_p50_us"], _ = timed(eager)
            out["torchscript_p50_us"], _ = timed(script)
    return out


def export_torchscript(module, path: Path) -> Path:  # noqa: ANN001
    torch = _torch()
    torch.jit.script(module).save(str(path))
    return path
