"""Import real memory telemetry: 1 Hz samples of /proc/meminfo, /proc/pressure/memory (PSI),
and optionally /proc/buddyinfo and /proc/vmstat, as JSON lines.

Format (one JSON object per line, one line per second)::

    {"ts": 1732190000.0,                            # unix seconds (required)
     "meminfo": "MemTotal: 16318480 kB\\nMemFree: ...",   # /proc/meminfo text, or a {"MemFree": kB} object
     "psi_memory": "some avg10=0.00 avg60=0.00 avg300=0.00 total=1234\\nfull ...",   # optional
     "buddyinfo": "Node 0, zone Normal 12 5 3 ...",  # optional: enables largest block + fragmentation
     "vmstat": "oom_kill 0\\ncompact_stall 3\\n..."}   # optional: OOM kills (ground truth), compaction

A collector: ``while sleep 1; do python3 -c 'import json,time; r=lambda p: open(p).read();
print(json.dumps({"ts": time.time(), "meminfo": r("/proc/meminfo"), "psi_memory": r("/proc/pressure/memory"),
"buddyinfo": r("/proc/buddyinfo"), "vmstat": r("/proc/vmstat")}))'; done >> trace.jsonl``

Mapping to the simulator's sample schema (pages of 4 KiB): free = MemFree, cache = Cached +
Buffers (reclaimable), kernel = Slab + KernelStack + PageTables, anon = the rest in use;
stall_ms = delta of PSI "some" total (µs) / 1000; alloc_failures = delta of vmstat compact_fail;
compactions = delta of compact_stall; reclaimed = delta of pgsteal_*; OOM events = increments of
vmstat oom_kill. Without buddyinfo, largest_free_block = free pages and frag_index = 0.
"""

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kforge.errors import InputError
from kforge.jsonl import read_jsonl
from kforge.telemetry.memsim import EVENT_SCHEMA, FRAG_ORDER, SAMPLE_SCHEMA

_KV = re.compile(r"^(\w+)[:\s]+(\d+)", re.MULTILINE)


def _kv(value: Any, what: str, line: int) -> dict[str, int]:
    if isinstance(value, dict):
        try:
            return {k: int(v) for k, v in value.items()}
        except (TypeError, ValueError):
            raise InputError(f"line {line}: {what} values must be integers") from None
    if isinstance(value, str):
        return {k: int(v) for k, v in _KV.findall(value)}
    raise InputError(f"line {line}: {what} must be text or an object")


def _psi_some_total(value: Any, line: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, dict):
        try:
            return float(value.get("some_total_us", 0))
        except (TypeError, ValueError):
            raise InputError(f"line {line}: psi_memory some_total_us must be a number") from None
    m = re.search(r"some\b.*?total=(\d+)", str(value))
    if not m:
        raise InputError(f"line {line}: psi_memory has no 'some ... total=' field")
    return float(m.group(1))


def _buddy(value: Any) -> np.ndarray | None:
    if not value:
        return None
    rows = [list(map(int, re.findall(r"\d+", ln.split("zone", 1)[1])[0:])) for ln in str(value).splitlines() if "zone" in ln]
    rows = [r for r in rows if r]
    if not rows:
        return None
    width = max(len(r) for r in rows)
    return np.array([r + [0] * (width - len(r)) for r in rows]).sum(axis=0)


def read_trace(path: str | Path, run_id: str = "") -> tuple[pl.DataFrame, pl.DataFrame]:
    """Telemetry samples and OOM events from a trace file (see the module docstring)."""
    path = Path(path)
    run = run_id or path.stem
    recs = []
    for i, obj in read_jsonl(path, missing="no such trace file"):
        if "ts" not in obj or "meminfo" not in obj:
            raise InputError(f"{path}:{i}: each line needs 'ts' and 'meminfo'")
        mem = _kv(obj["meminfo"], "meminfo", i)
        for k in ("MemTotal", "MemFree"):
            if k not in mem:
                raise InputError(f"{path}:{i}: meminfo lacks {k}")
        if not 0 <= mem["MemFree"] <= mem["MemTotal"] or mem["MemTotal"] < 4:
            raise InputError(f"{path}:{i}: meminfo needs MemTotal >= 4 kB and 0 <= MemFree <= MemTotal, got "
                             f"{mem['MemTotal']} and {mem['MemFree']} kB")
        try:
            ts = float(obj["ts"])
        except (TypeError, ValueError):
            raise InputError(f"{path}:{i}: ts must be a number of seconds") from None
        recs.append((ts, mem, _psi_some_total(obj.get("psi_memory"), i), _buddy(obj.get("buddyinfo")),
                     _kv(obj.get("vmstat") or {}, "vmstat", i)))
    if len(recs) < 2:
        raise InputError(f"{path}: need at least 2 samples, found {len(recs)}")
    recs.sort(key=lambda r: r[0])
    gaps = np.diff([r[0] for r in recs])
    if np.median(gaps) > 2.0 or np.median(gaps) < 0.5:
        raise InputError(f"{path}: samples must be about 1 s apart (median gap {np.median(gaps):.2f} s); resample to 1 Hz")
    t0 = recs[0][0]
    samples, events = [], []
    prev: tuple | None = None
    for ts, mem, psi, buddy, vm in recs:
        total = mem["MemTotal"] // 4
        free = mem["MemFree"] // 4
        cache = (mem.get("Cached", 0) + mem.get("Buffers", 0)) // 4
        kernel = (mem.get("Slab", 0) + mem.get("KernelStack", 0) + mem.get("PageTables", 0)) // 4
        if buddy is not None:
            orders = np.arange(len(buddy))
            free_b = int((buddy << orders).sum())
            lo = int(orders[buddy > 0].max()) if (buddy > 0).any() else -1
            largest = (1 << lo) if lo >= 0 else 0
            frag = 1.0 - int((buddy[FRAG_ORDER:] << orders[FRAG_ORDER:]).sum()) / free_b if free_b else 1.0
        else:
            largest, frag = free, 0.0

        before: dict[str, int] = prev[4] if prev is not None else {}

        def delta(key: str, cur: dict[str, int] = vm, before: dict[str, int] = before) -> int:
            return max(0, cur.get(key, 0) - before.get(key, 0)) if before else 0

        steal = sum(delta(k) for k in vm if k.startswith("pgsteal_"))
        stall = (psi - prev[2]) / 1000.0 if (prev is not None and psi is not None and prev[2] is not None) else 0.0
        samples.append((run, "trace", 0, round(ts - t0, 3), total, free, cache, max(0, total - free - cache - kernel),
                        kernel, largest, round(frag, 6), delta("compact_fail"), max(0.0, stall),
                        delta("compact_stall"), steal))
        for _ in range(delta("oom_kill")):
            events.append({"run_id": run, "workload": "trace", "seed": 0, "t_s": round(ts - t0, 3), "kind": "oom_kill",
                           "victim": "", "victim_pages": 0, "order": -1, "free_pages": free, "cause": "observed"})
        prev = (ts, mem, psi, buddy, vm)
    return pl.DataFrame(samples, schema=SAMPLE_SCHEMA, orient="row"), pl.DataFrame(events, schema=EVENT_SCHEMA)


def write_trace(samples: pl.DataFrame, events: pl.DataFrame, path: str | Path) -> Path:
    """Write simulated telemetry in the trace format (for testing the importer and the CLI)."""
    path = Path(path)
    oom_total = 0
    psi_total = 0.0
    ooms = events.filter(pl.col("kind") == "oom_kill")["t_s"].to_list()
    lines = []
    for r in samples.sort("t_s").iter_rows(named=True):
        oom_total += sum(1 for t in ooms if r["t_s"] - 1 < t <= r["t_s"])
        psi_total += r["stall_ms"] * 1000
        mem = (f"MemTotal: {r['total_pages'] * 4} kB\nMemFree: {r['free_pages'] * 4} kB\n"
               f"Cached: {r['cache_pages'] * 4} kB\nSlab: {r['kernel_pages'] * 4} kB\n")
        lines.append(json.dumps({"ts": 1_700_000_000 + r["t_s"], "meminfo": mem,
                                 "psi_memory": f"some avg10=0.00 avg60=0.00 avg300=0.00 total={int(psi_total)}",
                                 "vmstat": f"oom_kill {oom_total}\n"}))
    path.write_text("\n".join(lines) + "\n")
    return path
