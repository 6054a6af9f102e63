"""The memory simulator: a buddy allocator driven by a workload, with page-cache reclaim,
compaction, an OOM killer, and 1 Hz telemetry samples plus OOM events as ground truth.

Allocation path for a request of order ``k`` (as in Linux, simplified):

1. take a block from the buddy allocator (movable requests keep ``min`` watermark pages free);
2. on failure: direct reclaim of page cache (stalls the caller), retry;
3. on failure and ``k > 0``: direct compaction (moves movable blocks; deferred for 10 s after a
   compaction that did not help), retry;
4. on failure: ``k <= 3`` invokes the OOM killer (kills the largest killable process: an OOM
   event), larger orders just fail (an allocation failure, counted in telemetry).

``kswapd`` reclaims cache in the background when free pages drop below the ``low`` watermark.
Stall time (ms per sample) accumulates in direct reclaim, direct compaction and OOM kills, like
PSI's memory "some" stall.

Example::

    sim = MemorySim(make_workload("leak", seed=1, duration_s=120))
    samples, events = sim.run()
"""

from collections import deque
from dataclasses import dataclass

import numpy as np
import polars as pl

from kforge.telemetry.buddy import BuddyAllocator
from kforge.telemetry.workloads import INF_TICKS, TICK_S, Workload, make_workload

TOTAL_ORDER = 14
MAX_ORDER = 10
FRAG_ORDER = 3                   # fragmentation index: free pages unusable for an order-3 request
COSTLY_ORDER = 3                 # requests up to this order invoke the OOM killer
SAMPLE_TICKS = 10                # one telemetry sample per second
COMPACT_DEFER_TICKS = 100

SAMPLE_SCHEMA = {
    "run_id": pl.String, "workload": pl.String, "seed": pl.Int64, "t_s": pl.Float64,
    "total_pages": pl.Int64, "free_pages": pl.Int64, "cache_pages": pl.Int64, "anon_pages": pl.Int64,
    "kernel_pages": pl.Int64, "largest_free_block": pl.Int64, "frag_index": pl.Float64,
    "alloc_failures": pl.Int64, "stall_ms": pl.Float64, "compactions": pl.Int64,
    "reclaimed_pages": pl.Int64,
}
EVENT_SCHEMA = {
    "run_id": pl.String, "workload": pl.String, "seed": pl.Int64, "t_s": pl.Float64,
    "kind": pl.String, "victim": pl.String, "victim_pages": pl.Int64, "order": pl.Int64,
    "free_pages": pl.Int64, "cause": pl.String,
}


@dataclass
class _Counters:
    failures: int = 0
    stall_ms: float = 0.0
    compactions: int = 0
    reclaimed: int = 0


class MemorySim:
    """One simulated machine running one workload. ``run()`` goes to the end; ``step()`` one tick."""

    def __init__(self, workload: Workload, run_id: str = "") -> None:
        self.w = workload
        self.run_id = run_id or f"{workload.name}-{workload.seed}"
        self.buddy = BuddyAllocator(TOTAL_ORDER, MAX_ORDER)
        n = self.buddy.n_pages
        self.wmark_min, self.wmark_low, self.wmark_high = n // 100, n * 4 // 100, n * 6 // 100
        self.tick = 0
        self.next_aid = 0
        self.allocs: dict[int, tuple[int, int, int, bool]] = {}    # aid -> (blk, order, stream, movable)
        self.owned: list[set[int]] = [set() for _ in workload.streams]
        self.pages = [0] * len(workload.streams)
        self.ptr = [0] * len(workload.streams)
        self.down_until = [0] * len(workload.streams)
        self.incarnation = [0] * len(workload.streams)
        self.pending: dict[int, list[int]] = {}
        self.cache: deque[int] = deque()
        self.compact_ok_at = 0
        self.c = _Counters()
        self.samples: list[tuple] = []
        self.events: list[dict] = []

    # -- copying (the recommender simulates actions on forks) -----------------------------------
    def fork(self) -> "MemorySim":
        """An independent copy of the mutable state; the workload (the future) is shared. Copied
        free sets may pop blocks in another order, so block placement (not demand) can differ."""
        new = object.__new__(MemorySim)
        new.__dict__.update(self.__dict__)
        b = object.__new__(BuddyAllocator)
        b.__dict__.update(self.buddy.__dict__)
        b.free = [set(s) for s in self.buddy.free]
        new.buddy = b
        new.allocs = dict(self.allocs)
        new.owned = [set(s) for s in self.owned]
        new.pages, new.ptr = list(self.pages), list(self.ptr)
        new.down_until, new.incarnation = list(self.down_until), list(self.incarnation)
        new.pending = {k: list(v) for k, v in self.pending.items()}
        new.cache = deque(self.cache)
        new.c = _Counters(**self.c.__dict__)
        new.samples, new.events = list(self.samples), list(self.events)
        return new

    def imagined(self, seed: int) -> "MemorySim":
        """A fork whose future is not the real one: from now on the streams follow a fresh draw of the same
        workload mix (``seed``: its instance), so a planner on it does not see what will actually happen.
        The past, the machine's state and the processes are the real ones."""
        w, now = self.w, self.tick
        f = make_workload(w.name, seed, w.n_ticks * TICK_S)
        if len(f.streams) != len(w.streams) or f.n_ticks != w.n_ticks:
            raise ValueError(f"workload {w.name!r} seed {seed} does not match the running one's streams")
        orders, lifetimes = [], []
        for g in range(len(w.streams)):
            q = int(f.counts[:now, g].sum())
            orders.append(np.concatenate([w.orders[g][: self.ptr[g]], f.orders[g][q:]]))
            lifetimes.append(np.concatenate([w.lifetimes[g][: self.ptr[g]], f.lifetimes[g][q:]]))
        new = self.fork()
        new.w = Workload(w.name, w.seed, w.n_ticks, w.streams, np.concatenate([w.counts[:now], f.counts[now:]]),
                         orders, lifetimes)
        return new

    # -- primitives ------------------------------------------------------------------------------
    def _free(self, aid: int) -> None:
        blk, order, g, _ = self.allocs.pop(aid)
        self.buddy.release(blk, order)
        self.owned[g].discard(aid)
        self.pages[g] -= 1 << order

    def _try(self, order: int, keep_free: int) -> int | None:
        if self.buddy.free_pages - (1 << order) < keep_free:
            return None
        return self.buddy.alloc(order)

    def reclaim(self, target_free: int, direct: bool) -> int:
        """Drop page-cache blocks (oldest first) until ``target_free`` pages are free."""
        got = 0
        allocs = self.allocs
        while self.buddy.free_pages < target_free and self.cache:
            aid = self.cache.popleft()
            if aid in allocs:
                got += 1 << allocs[aid][1]
                self._free(aid)
        self.c.reclaimed += got
        if direct:
            self.c.stall_ms += 1.0 + 0.05 * got
        return got

    def compact(self) -> int:
        """Move every movable block: free them all, then place them again largest first
        (best fit), which packs them and rebuilds large free blocks. Returns pages moved."""
        movable = [(aid, a[1]) for aid, a in self.allocs.items() if a[3]]
        for aid, _ in movable:
            blk, order, g, mv = self.allocs[aid]
            self.buddy.release(blk, order)
        movable.sort(key=lambda x: -x[1])
        moved = 0
        for aid, order in movable:
            blk = self.buddy.alloc(order)
            assert blk is not None, "compaction cannot lose memory"
            _, _, g, mv = self.allocs[aid]
            self.allocs[aid] = (blk, order, g, mv)
            moved += 1 << order
        self.c.compactions += 1
        self.c.stall_ms += 2.0 + 0.01 * moved
        return moved

    def kill(self, g: int, reason: str, order: int = -1) -> int:
        """Kill stream ``g``'s process: free its memory, restart it later. Returns pages freed."""
        stream = self.w.streams[g]
        freed = self.pages[g]
        free_before = self.buddy.free_pages
        for aid in list(self.owned[g]):
            self._free(aid)
        self.down_until[g] = self.tick + stream.restart_ticks
        self.incarnation[g] += 1
        self.events.append({
            "run_id": self.run_id, "workload": self.w.name, "seed": self.w.seed,
            "t_s": round((self.tick + 1) * TICK_S, 3), "kind": reason, "victim": stream.name,
            "victim_pages": freed, "order": order, "free_pages": free_before,
            "cause": "fragmentation" if free_before >= self.wmark_min + (8 << max(order, 0)) else "exhaustion",
        })
        return freed

    def largest_killable(self) -> int | None:
        best, best_pages = None, 0
        for g, s in enumerate(self.w.streams):
            if s.killable and self.pages[g] > best_pages:
                best, best_pages = g, self.pages[g]
        return best

    def _allocate(self, g: int, order: int, life: int) -> None:
        stream = self.w.streams[g]
        keep = self.wmark_min if stream.kind in ("anon", "cache") else 0
        blk = self._try(order, keep)
        if blk is None:
            self.c.failures += 1
            if self.cache:
                self.reclaim(max(self.wmark_high, (1 << order) * 4 + keep), direct=True)
                blk = self._try(order, keep)
            if blk is None and order > 0 and self.tick >= self.compact_ok_at and self.buddy.free_pages - (1 << order) >= keep:
                self.compact()
                blk = self._try(order, keep)
                if blk is None:
                    self.compact_ok_at = self.tick + COMPACT_DEFER_TICKS
            if blk is None and order <= COSTLY_ORDER and stream.kind != "cache":
                victim = self.largest_killable()
                if victim is not None:
                    self.kill(victim, "oom_kill", order)
                    self.c.stall_ms += 50.0
                    if self.down_until[g] > self.tick:   # the requester itself was killed
                        return
                    blk = self._try(order, keep)
            if blk is None and stream.pin and order > 0:      # slab falls back to a single page
                order, blk = 0, self._try(0, keep)
            if blk is None:
                return
        if stream.pin and order > 0:
            for j in range(order):
                self.buddy.release(blk + (1 << j), j)
            order = 0
        aid = self.next_aid
        self.next_aid += 1
        self.allocs[aid] = (blk, order, g, stream.movable)
        self.owned[g].add(aid)
        self.pages[g] += 1 << order
        if stream.kind == "cache":
            self.cache.append(aid)
        if life < INF_TICKS:
            self.pending.setdefault(self.tick + life, []).append(aid)

    # -- time --------------------------------------------------------------------------------
    def step(self) -> None:
        tick = self.tick
        for aid in self.pending.pop(tick, ()):
            if aid in self.allocs:
                self._free(aid)
        w = self.w
        row = w.counts[tick]
        for g in range(len(w.streams)):
            n = int(row[g])
            if n == 0:
                continue
            p = self.ptr[g]
            self.ptr[g] = p + n
            if self.down_until[g] > tick:
                continue
            orders, lives = w.orders[g], w.lifetimes[g]
            for i in range(p, p + n):
                self._allocate(g, int(orders[i]), int(lives[i]))
                if self.down_until[g] > tick:
                    break
        if self.buddy.free_pages < self.wmark_low:
            self.reclaim(self.wmark_high, direct=False)
        self.tick += 1
        if self.tick % SAMPLE_TICKS == 0:
            self._sample()

    def _sample(self) -> None:
        kinds = [s.kind for s in self.w.streams]
        cache = sum(p for p, k in zip(self.pages, kinds, strict=True) if k == "cache")
        kernel = sum(p for p, k in zip(self.pages, kinds, strict=True) if k == "kernel")
        b = self.buddy
        lo = b.largest_free_order()
        self.samples.append((
            self.run_id, self.w.name, self.w.seed, round(self.tick * TICK_S, 3), b.n_pages, b.free_pages,
            cache, b.n_pages - b.free_pages - cache - kernel, kernel, (1 << lo) if lo >= 0 else 0,
            round(b.unusable_index(FRAG_ORDER), 6), self.c.failures, round(self.c.stall_ms, 3),
            self.c.compactions, self.c.reclaimed,
        ))
        self.c = _Counters()

    def run_until(self, tick: int) -> None:
        while self.tick < min(tick, self.w.n_ticks):
            self.step()

    def run(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        self.run_until(self.w.n_ticks)
        return self.frames()

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        samples = pl.DataFrame(self.samples, schema=SAMPLE_SCHEMA, orient="row")
        events = pl.DataFrame(self.events, schema=EVENT_SCHEMA)
        return samples, events

    def oom_count(self) -> int:
        return sum(1 for e in self.events if e["kind"] == "oom_kill")


def simulate(workload: str, seed: int, duration_s: float = 600.0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Telemetry samples and OOM events of one run."""
    return MemorySim(make_workload(workload, seed, duration_s)).run()


def simulate_many(workloads: list[str], seeds: list[int], duration_s: float = 600.0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All (workload, seed) runs concatenated."""
    s_all, e_all = [], []
    for w in workloads:
        for s in seeds:
            samples, events = simulate(w, s, duration_s)
            s_all.append(samples)
            e_all.append(events)
    return pl.concat(s_all), pl.concat(e_all)


def summarize_runs(samples: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Per workload: runs, OOMs, mean free/fragmentation, failures."""
    ooms = events.filter(pl.col("kind") == "oom_kill").group_by("workload").agg(pl.len().alias("ooms"))
    s = samples.group_by("workload").agg(
        pl.col("run_id").n_unique().alias("runs"),
        (pl.col("free_pages") / pl.col("total_pages")).mean().alias("mean_free_frac"),
        pl.col("frag_index").mean().alias("mean_frag_index"),
        pl.col("alloc_failures").sum().alias("alloc_failures"),
        pl.col("stall_ms").sum().alias("stall_ms"),
    )
    return s.join(ooms, on="workload", how="left").with_columns(pl.col("ooms").fill_null(0)).sort("workload")


__all__ = ["MemorySim", "simulate", "simulate_many", "summarize_runs", "SAMPLE_SCHEMA", "EVENT_SCHEMA", "np"]
