"""Workload mixes for the memory simulator: which processes allocate what, how fast, for how long.

A workload is a list of :class:`Stream` (one allocating process or kernel user each) plus, per
simulator tick, how many allocations each stream makes and each allocation's order and lifetime.
Everything random is drawn up front with one numpy generator (vectorized), so a run is fully
determined by ``(workload, seed, duration)`` and forks of a running simulation share the future.

Mixes (parameters are re-drawn per seed, so held-out seeds are new workload instances):

* ``steady``: services allocating and freeing at balanced rates, page cache, slab;
* ``leak``: steady plus a process that never frees (restarts after an OOM kill);
* ``burst``: steady plus batch jobs whose working set ramps up for 10-30 s, then is freed;
* ``fragmenting``: long-lived unmovable kernel objects scattered among short-lived movable memory,
  order-2/3 kernel allocations and huge-page requests: OOMs from fragmentation with pages free.
"""

from dataclasses import dataclass

import numpy as np

from kforge.errors import InputError

WORKLOADS = ("steady", "leak", "burst", "fragmenting")
TICK_S = 0.1
INF_TICKS = 1 << 40


@dataclass(frozen=True)
class Stream:
    name: str
    kind: str            # anon | cache | slab | kernel
    killable: bool       # the OOM killer / recommender may kill it
    movable: bool        # compaction may move its pages
    restart_ticks: int = 100
    pin: bool = False    # takes a whole block, keeps its first page, returns the rest (slab pinning)


@dataclass
class Workload:
    name: str
    seed: int
    n_ticks: int
    streams: list[Stream]
    counts: np.ndarray            # (n_ticks, n_streams) allocations per tick
    orders: list[np.ndarray]      # per stream: order of each allocation, in arrival order
    lifetimes: list[np.ndarray]   # per stream: lifetime in ticks (INF_TICKS = never freed)


def _pages(order_p: np.ndarray) -> float:
    return float((order_p * (1 << np.arange(len(order_p)))).sum())


class _Builder:
    def __init__(self, name: str, seed: int, n_ticks: int) -> None:
        self.rng = np.random.default_rng([seed, WORKLOADS.index(name)])
        self.name, self.seed, self.n_ticks = name, seed, n_ticks
        self.streams: list[Stream] = []
        self.counts: list[np.ndarray] = []
        self.orders: list[np.ndarray] = []
        self.lifetimes: list[np.ndarray] = []

    def add(self, stream: Stream, rate_per_s: np.ndarray | float, order_p: list[float],
            lifetime_s: float | np.ndarray, lifetime_kind: str = "exp") -> None:
        rng = self.rng
        rate = np.broadcast_to(np.asarray(rate_per_s, dtype=float), (self.n_ticks,))
        counts = rng.poisson(rate * TICK_S)
        n = int(counts.sum())
        p = np.asarray(order_p, dtype=float)
        orders = rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int8)
        if lifetime_kind == "inf":
            life = np.full(n, INF_TICKS, dtype=np.int64)
        elif lifetime_kind == "until":        # lifetime_s is, per tick, the ticks left to the burst end
            ticks = np.repeat(np.arange(self.n_ticks), counts)
            left = np.asarray(lifetime_s)[ticks]
            life = (left + rng.exponential(10.0, size=n)).astype(np.int64) + 1
        else:
            life = (rng.exponential(float(lifetime_s) / TICK_S, size=n)).astype(np.int64) + 1
        self.streams.append(stream)
        self.counts.append(counts)
        self.orders.append(orders)
        self.lifetimes.append(life)

    def base(self, scale: float) -> None:
        u = self.rng.uniform
        self.add(Stream("web", "anon", True, True), scale * u(80, 120), [0.6, 0.3, 0.1], u(25, 40))
        self.add(Stream("db", "anon", True, True), scale * u(40, 60), [0.3, 0.3, 0.2, 0.2], u(20, 40))
        self.add(Stream("pagecache", "cache", False, True), u(15, 30), [0.5, 0.3, 0.2], 0, "inf")
        self.add(Stream("slab", "kernel", False, False), u(8, 12), [1.0], u(40, 80))

    def build(self) -> Workload:
        return Workload(self.name, self.seed, self.n_ticks, self.streams,
                        np.stack(self.counts, axis=1).astype(np.int32), self.orders, self.lifetimes)


def make_workload(name: str, seed: int, duration_s: float = 600.0) -> Workload:
    """Draw one workload instance (deterministic in ``name``, ``seed``, ``duration_s``)."""
    if name not in WORKLOADS:
        raise InputError(f"unknown workload {name!r}; choose one of {', '.join(WORKLOADS)}")
    if duration_s < 10:
        raise InputError(f"duration_s must be at least 10 seconds, got {duration_s}")
    n_ticks = int(round(duration_s / TICK_S))
    b = _Builder(name, seed, n_ticks)
    u = b.rng.uniform
    t = np.arange(n_ticks) * TICK_S
    if name == "steady":
        b.base(u(0.85, 1.2))
    elif name == "leak":
        b.base(u(0.7, 0.9))
        b.add(Stream("leaker", "anon", True, True, restart_ticks=int(u(50, 200))),
              u(8, 35), [0.5, 0.5], 0, "inf")
    elif name == "burst":
        b.base(u(0.7, 0.9))
        rate = np.zeros(n_ticks)
        left = np.zeros(n_ticks)
        start = u(5, 40)
        while start < duration_s:
            dur = u(10, 30)
            target_pages = u(0.25, 0.75) * (1 << 14)     # working set the job grows to
            i0, i1 = int(start / TICK_S), min(n_ticks, int((start + dur) / TICK_S))
            ramp = np.clip((t[i0:i1] - start) / dur, 0, 1)              # linear ramp of the allocation rate
            rate[i0:i1] = 2 * target_pages / dur * ramp / 1.5
            left[i0:i1] = np.arange(i1 - i0)[::-1]
            start += dur + b.rng.exponential(u(30, 70))
        b.add(Stream("batch", "anon", True, True, restart_ticks=50), rate, [0.5, 0.5], left, "until")
    else:  # fragmenting
        b.base(u(0.6, 0.8))
        grow = u(2, 5) + u(6, 14) * t / max(duration_s, 1.0)
        b.add(Stream("indexer", "slab", True, False, restart_ticks=int(u(50, 150)), pin=True),
              grow, [0, 0, 0, 1.0], u(150, 400))
        b.add(Stream("netbuf", "kernel", False, False), u(4, 10), [0, 0, 0.3, 0.7], u(0.5, 2))
        b.add(Stream("stacks", "kernel", False, False), u(5, 10), [0, 0, 1.0], u(5, 20))
        b.add(Stream("thp", "anon", True, True), u(0.2, 0.6), [0] * 9 + [1.0], u(20, 40))
    return b.build()
