"""A discrete-event single-CPU scheduling simulator with round robin, a CFS-like fair scheduler
and a shortest-remaining-processing-time oracle.

Tasks arrive over time and alternate CPU and I/O bursts (first and last are CPU); each has a
nice-like priority. Every switch from one task to another costs ``cs_cost_ms`` of CPU. Metrics:
mean turnaround (completion - arrival), p99 wake-up latency (runnable -> on CPU) and context
switches. Workloads are drawn up front with numpy from ``(mix, seed)``, so runs are deterministic.

Policies implement ``pick(sim, cands) -> task`` (``cands`` includes the running task, if any),
``slice_ms(sim, task)`` and ``preempt_on_wake(sim, woken) -> bool``.

Example::

    wl = make_sched_workload("mixed", seed=1)
    run_policy(wl, CFS()).summary()      # {'mean_turnaround_ms': ..., 'p99_latency_ms': ..., ...}
"""

import heapq
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from kforge.errors import InputError

MIXES = ("mixed", "interactive_heavy", "batch_heavy", "bursty_arrivals")
KINDS = ("interactive", "mixed", "batch")
CS_COST_MS = 0.05


@dataclass
class SchedWorkload:
    mix: str
    seed: int
    arrival: np.ndarray            # ms
    nice: np.ndarray               # -5 .. 5
    kind: np.ndarray               # index into KINDS
    cpu: list[np.ndarray]          # CPU burst lengths (ms) per task
    io: list[np.ndarray]           # I/O burst lengths (ms) per task, len(cpu) - 1

    @property
    def n(self) -> int:
        return len(self.arrival)


def make_sched_workload(mix: str, seed: int, n_tasks: int = 150, load: float = 0.9) -> SchedWorkload:
    """Draw a workload of ``n_tasks`` tasks whose CPU demand is about ``load`` of the CPU."""
    if mix not in MIXES:
        raise InputError(f"unknown scheduling mix {mix!r}; choose one of {', '.join(MIXES)}")
    if n_tasks < 2 or not 0.05 <= load <= 1.5:
        raise InputError(f"need n_tasks >= 2 and 0.05 <= load <= 1.5, got {n_tasks}, {load}")
    rng = np.random.default_rng([seed, MIXES.index(mix), 17])
    p = {"mixed": [0.5, 0.3, 0.2], "interactive_heavy": [0.75, 0.15, 0.1],
         "batch_heavy": [0.3, 0.3, 0.4], "bursty_arrivals": [0.5, 0.3, 0.2]}[mix]
    kind = rng.choice(3, size=n_tasks, p=p)
    nice = rng.integers(-5, 6, size=n_tasks)
    cpu, io = [], []
    for k in kind:
        if k == 0:       # interactive: many short CPU bursts, longer waits
            nb = int(rng.integers(10, 40))
            c = rng.lognormal(np.log(1.0), 0.6, nb)
            i = rng.lognormal(np.log(8.0), 0.5, nb - 1)
        elif k == 1:     # mixed
            nb = int(rng.integers(4, 15))
            c = rng.lognormal(np.log(8.0), 0.8, nb)
            i = rng.lognormal(np.log(5.0), 0.6, nb - 1)
        else:            # batch: few long CPU bursts
            nb = int(rng.integers(1, 4))
            c = rng.lognormal(np.log(120.0), 0.9, nb)
            i = rng.lognormal(np.log(2.0), 0.5, nb - 1)
        cpu.append(np.maximum(c, 0.05))
        io.append(i)
    total_cpu = float(sum(c.sum() for c in cpu))
    span = total_cpu / load
    if mix == "bursty_arrivals":
        centers = rng.uniform(0, span, size=max(2, n_tasks // 25))
        arrival = np.clip(rng.choice(centers, n_tasks) + rng.exponential(span / 200, n_tasks), 0, None)
    else:
        arrival = np.cumsum(rng.exponential(span / n_tasks, n_tasks))
    arrival = np.sort(arrival)
    return SchedWorkload(mix, seed, arrival, nice, kind, cpu, io)


class Policy(Protocol):
    name: str

    def pick(self, sim: "SchedSim", cands: list[int]) -> int: ...
    def slice_ms(self, sim: "SchedSim", task: int) -> float: ...
    def preempt_on_wake(self, sim: "SchedSim", woken: int) -> bool: ...


@dataclass
class SchedResult:
    policy: str
    turnaround: np.ndarray
    latencies: np.ndarray
    context_switches: int
    involuntary_switches: int
    decisions: int
    makespan_ms: float
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        return {
            "mean_turnaround_ms": float(self.turnaround.mean()),
            "p99_latency_ms": float(np.quantile(self.latencies, 0.99)) if len(self.latencies) else 0.0,
            "p50_latency_ms": float(np.quantile(self.latencies, 0.5)) if len(self.latencies) else 0.0,
            "context_switches": float(self.context_switches),
            "involuntary_switches": float(self.involuntary_switches),
            "makespan_ms": self.makespan_ms,
        }


class SchedSim:
    """Event loop state; policies read the per-task arrays when deciding."""

    def __init__(self, wl: SchedWorkload, cs_cost_ms: float = CS_COST_MS) -> None:
        n = wl.n
        self.wl = wl
        self.cs_cost = cs_cost_ms
        self.now = 0.0
        self.weight = 1024.0 / (1.25 ** wl.nice.astype(float))
        self.burst_idx = np.zeros(n, dtype=np.int64)
        self.rem = np.array([c[0] for c in wl.cpu])           # remaining in the current CPU burst
        self.remaining_total = np.array([c.sum() for c in wl.cpu])
        self.cpu_used = np.zeros(n)
        self.io_used = np.zeros(n)
        self.last_burst = np.zeros(n)
        self.burst_run = np.zeros(n)                           # run so far in the current burst
        self.last_ran_end = np.full(n, -1e9)
        self.ready_since = np.zeros(n)
        self.vruntime = np.zeros(n)
        self.min_vruntime = 0.0
        self.done_at = np.full(n, np.nan)
        self.ready: list[int] = []
        self.running: int | None = None
        self.last_task: int | None = None

    def n_ready(self) -> int:
        return len(self.ready) + (self.running is not None)


def run_policy(wl: SchedWorkload, policy: Policy, cs_cost_ms: float = CS_COST_MS,
               recorder: "list | None" = None, oracle: "Policy | None" = None) -> SchedResult:
    """Simulate ``wl`` under ``policy``. With ``recorder`` (and ``oracle``), every decision's
    candidates and the oracle's choice are appended (for imitation learning)."""
    s = SchedSim(wl, cs_cost_ms)
    n = wl.n
    arrivals = list(np.argsort(wl.arrival, kind="stable"))
    a_ptr = 0
    wakes: list[tuple[float, int]] = []
    latencies: list[float] = []
    fresh = np.zeros(n, dtype=bool)          # became runnable by arrival/wake, not yet dispatched
    cs = invol = decisions = 0
    finished = 0
    run_start = 0.0
    slice_end = math.inf
    while finished < n:
        t_arr = wl.arrival[arrivals[a_ptr]] if a_ptr < n else math.inf
        t_wake = wakes[0][0] if wakes else math.inf
        r = s.running
        t_done = run_start + s.rem[r] if r is not None else math.inf
        t_next = min(t_arr, t_wake, t_done, slice_end if r is not None else math.inf)
        if t_next == math.inf:
            raise RuntimeError("scheduler simulation stalled")
        if r is not None and t_next > run_start:
            ran = t_next - run_start
            s.rem[r] -= ran
            s.remaining_total[r] -= ran
            s.cpu_used[r] += ran
            s.burst_run[r] += ran
            s.vruntime[r] += ran * 1024.0 / s.weight[r]
            run_start = t_next
        s.now = max(s.now, t_next)
        decide = False
        involuntary = False
        if r is not None and s.rem[r] <= 1e-9:
            s.last_burst[r] = s.burst_run[r]
            s.burst_run[r] = 0.0
            s.last_ran_end[r] = s.now
            b = s.burst_idx[r]
            if b + 1 < len(wl.cpu[r]):
                io = float(wl.io[r][b])
                s.io_used[r] += io
                s.burst_idx[r] = b + 1
                s.rem[r] = wl.cpu[r][b + 1]
                heapq.heappush(wakes, (s.now + io, r))
            else:
                s.done_at[r] = s.now
                s.remaining_total[r] = 0.0
                finished += 1
            s.running = r = None
            decide = True
        elif r is not None and s.now >= slice_end - 1e-12:
            decide = involuntary = True
        woken = []
        while a_ptr < n and wl.arrival[arrivals[a_ptr]] <= s.now:
            woken.append(int(arrivals[a_ptr]))
            a_ptr += 1
        while wakes and wakes[0][0] <= s.now:
            woken.append(heapq.heappop(wakes)[1])
        if s.ready or r is not None:
            s.min_vruntime = max(s.min_vruntime, min([s.vruntime[i] for i in s.ready] +
                                                     ([s.vruntime[r]] if r is not None else [])))
        for w in woken:
            s.vruntime[w] = max(s.vruntime[w], s.min_vruntime - 3.0)     # CFS sleeper credit
            s.ready.append(w)
            s.ready_since[w] = s.now
            fresh[w] = True
            if r is not None and not decide and policy.preempt_on_wake(s, w):
                decide = involuntary = True
        if (decide or r is None) and (s.ready or r is not None):
            cands = s.ready + ([r] if r is not None else [])
            choice = policy.pick(s, cands)
            decisions += 1
            if recorder is not None and oracle is not None and len(cands) > 1:
                recorder.append((_features(s, cands), cands.index(oracle.pick(s, cands))))
            if choice != r:
                if r is not None:
                    s.ready.append(r)
                    s.ready_since[r] = s.now
                    s.last_ran_end[r] = s.now
                    if involuntary:
                        invol += 1
                s.ready.remove(choice)
                if fresh[choice]:
                    latencies.append(s.now - s.ready_since[choice])
                    fresh[choice] = False
                if s.last_task is not None and s.last_task != choice:
                    cs += 1
                    s.now += s.cs_cost
                s.running = choice
                s.last_task = choice
                run_start = s.now
            slice_end = s.now + policy.slice_ms(s, s.running)
        elif r is None:
            slice_end = math.inf
    turnaround = s.done_at - wl.arrival
    return SchedResult(policy.name, turnaround, np.array(latencies), cs, invol, decisions, float(np.nanmax(s.done_at)))


N_FEATURES = 12


def _features(s: SchedSim, cands: list[int]) -> np.ndarray:
    """Per candidate: priority, CPU ratio, I/O ratio, recent runtime, cache locality proxy,
    is-current, CPU used, age, wait, current-burst progress, bursts done, queue length."""
    idx = np.asarray(cands)
    now = s.now
    cpu, io = s.cpu_used[idx], s.io_used[idx]
    tot = cpu + io + 1.0
    f = np.empty((len(idx), N_FEATURES), dtype=np.float32)
    f[:, 0] = s.wl.nice[idx] / 5.0
    f[:, 1] = cpu / tot
    f[:, 2] = io / tot
    f[:, 3] = np.log1p(s.last_burst[idx])
    f[:, 4] = np.exp(-(now - s.last_ran_end[idx]) / 5.0)
    f[:, 5] = (idx == (s.running if s.running is not None else -1))
    f[:, 6] = np.log1p(cpu)
    f[:, 7] = np.log1p(np.maximum(now - s.wl.arrival[idx], 0.0))
    f[:, 8] = np.log1p(np.where(f[:, 5] > 0, 0.0, now - s.ready_since[idx]))
    f[:, 9] = np.log1p(s.burst_run[idx])
    f[:, 10] = np.log1p(s.burst_idx[idx])
    f[:, 11] = len(idx) / 32.0
    return f


features = _features


class RoundRobin:
    """FIFO queue, fixed quantum, no wake-up preemption."""

    def __init__(self, quantum_ms: float = 10.0) -> None:
        self.quantum = quantum_ms
        self.name = f"rr_{quantum_ms:g}ms"

    def pick(self, sim: SchedSim, cands: list[int]) -> int:
        if sim.running is not None and len(cands) > 1:
            return cands[0]                       # ready queue head (running goes to the tail)
        return cands[0]

    def slice_ms(self, sim: SchedSim, task: int) -> float:
        return self.quantum

    def preempt_on_wake(self, sim: SchedSim, woken: int) -> bool:
        return False


class CFS:
    """CFS-like: weighted virtual runtime, smallest first; slice = latency * weight share (at
    least ``min_granularity``); a woken task preempts when its vruntime is smaller by more than
    ``wakeup_granularity``."""

    name = "cfs"

    def __init__(self, latency_ms: float = 6.0, min_granularity_ms: float = 0.75, wakeup_granularity_ms: float = 1.0) -> None:
        self.latency, self.min_gran, self.wakeup_gran = latency_ms, min_granularity_ms, wakeup_granularity_ms

    def pick(self, sim: SchedSim, cands: list[int]) -> int:
        v = sim.vruntime
        return min(cands, key=lambda i: v[i])

    def slice_ms(self, sim: SchedSim, task: int) -> float:
        total = sum(sim.weight[i] for i in sim.ready) + sim.weight[task]
        return max(self.min_gran, self.latency * sim.weight[task] / total)

    def preempt_on_wake(self, sim: SchedSim, woken: int) -> bool:
        r = sim.running
        return r is not None and sim.vruntime[woken] + self.wakeup_gran < sim.vruntime[r]


class SRPTOracle:
    """Shortest remaining processing time (true total remaining CPU work): the imitation target.
    Not implementable in a real kernel (it knows the future)."""

    name = "srpt_oracle"

    def pick(self, sim: SchedSim, cands: list[int]) -> int:
        rem = sim.remaining_total
        return min(cands, key=lambda i: (rem[i], i != sim.running))

    def slice_ms(self, sim: SchedSim, task: int) -> float:
        return math.inf

    def preempt_on_wake(self, sim: SchedSim, woken: int) -> bool:
        r = sim.running
        return r is not None and sim.remaining_total[woken] < sim.remaining_total[r]
