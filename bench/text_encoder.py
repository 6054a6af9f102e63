"""The pretrained text encoder: embedding throughput, cache speed-up, and rule suggestion with it.

Usage::

    .venv/bin/python bench/text_encoder.py throughput                     # texts/s at batch 8/32/64, cache ratio
    .venv/bin/python bench/text_encoder.py suggest --data ../shared/data  # Drain alone vs Drain + merged templates

``throughput``: ``--texts`` synthetic error/commit-like texts (deterministic, 8 to 120 words) are
embedded once per batch size by a fresh :class:`~kforge.text.TextEncoder` with no cache (model
loaded before the clock starts): texts/s. Then the cache: the same texts embedded by an encoder that
stores in a fresh warehouse (computed), and again by a *new* encoder on that warehouse (read back by
content hash, nothing run through the model); the ratio of the two times is the speed-up.

``suggest``: :func:`kforge.healing.suggest.suggest_rules` without and with ``embed`` (templates
merged at each ``--thresholds`` value) on the JunoBench and syzkaller training files. Each file's
groups (notebook, crash title: :mod:`kforge.healing.datasets`) are cut in two by a hash of the group
key: the threshold is chosen on the ``tune`` half only (the lowest whose purity stays within
``--max-purity-drop`` of Drain alone on both tasks), and the ``held-out`` half is reported, with the shipped rules (suggestions for what they miss)
and with none (every message clustered). Per
part: suggested rules, rows the rules' members cover (share of the rows no shipped rule matches),
and purity (hit-weighted share of the rules' majority label among the rows each rule's pattern
matches). Then loghub-2k (ground-truth event templates, 12 systems, whole systems held out by a
hash of the name): Drain's grouping accuracy alone and with its templates merged. Prints one
JSON object; nothing is asserted.
"""

import argparse
import hashlib
import itertools
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))

from kforge.config import Paths  # noqa: E402
from kforge.storage import Warehouse  # noqa: E402
from kforge.text import TextEncoder  # noqa: E402

_WORDS = ("null pointer dereference in ixgbe_xmit_frame kernel BUG at mm/slub.c general protection fault "
          "KeyError column not found in index ValueError could not convert string to float shape mismatch "
          "net/mlx5: fix memory leak on error path eal: add support for huge pages driver probe failed "
          "timeout waiting for completion use after free in tcp_sendmsg refcount underflow").split()


def synthetic_texts(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    return [f"{i} " + " ".join(rnd.choice(_WORDS) for _ in range(rnd.randint(8, 120))) for i in range(n)]


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    home = Path(args.home)
    texts = synthetic_texts(args.texts)
    out: dict[str, Any] = {"texts": len(texts), "max_length": args.max_length, "load_avg": os.getloadavg()[0],
                           "threads": __import__("torch").get_num_threads()}
    for bs in (8, 32, 64):
        enc = TextEncoder(Paths.of(home), None, batch_size=bs, max_length=args.max_length)
        enc.embed(["warm-up"])
        t = time.perf_counter()
        enc.embed(texts)
        out[f"texts_per_s_batch{bs}"] = round(len(texts) / (time.perf_counter() - t), 1)
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "cache.duckdb")
        first = TextEncoder(Paths.of(home), wh, batch_size=32, max_length=args.max_length)
        first.embed(["warm-up"])
        t = time.perf_counter()
        a = first.embed(texts)
        t_compute = time.perf_counter() - t
        again = TextEncoder(Paths.of(home), wh, batch_size=32, max_length=args.max_length)
        t = time.perf_counter()
        b = again.embed(texts)
        t_cached = time.perf_counter() - t
        out |= {"embed_s": round(t_compute, 3), "cached_s": round(t_cached, 3),
                "cache_speedup": round(t_compute / max(t_cached, 1e-9), 1),
                "cached_texts_run_through_model": again.computed,
                "cached_equal": bool((abs(a - b) < 1e-6).all())}
    return out


def _half(key: str) -> str:
    return "tune" if int(hashlib.sha256(key.encode()).hexdigest(), 16) % 2 == 0 else "held-out"


def _summary(sugg: list[dict[str, Any]], unmatched: int) -> dict[str, float]:
    hits = sum(s["coverage"] for s in sugg if "precision" in s)
    pure = sum(s["precision"] * s["coverage"] for s in sugg if "precision" in s)
    return {"rules": len(sugg), "members": sum(s["support"] for s in sugg),
            "member_share": round(sum(s["support"] for s in sugg) / max(unmatched, 1), 3),
            "purity": round(pure / hits, 3) if hits else float("nan")}


def suggest(args: argparse.Namespace) -> dict[str, Any]:
    from kforge.healing.datasets import KERNEL, PYTHON, load_task
    from kforge.healing.rules import RuleEngine
    from kforge.healing.suggest import message_of, suggest_rules

    enc = TextEncoder(Paths.of(Path(args.home)), Warehouse(Path(args.home) / "suggest.duckdb"), batch_size=32)
    thresholds = [float(x) for x in args.thresholds.split(",")]
    out: dict[str, Any] = {"thresholds": thresholds}
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for (task, label), rules in itertools.product(((PYTHON, "label_root_cause"), (KERNEL, "crash_class")),
                                                  ("shipped", "none")):
        engine = RuleEngine.default() if rules == "shipped" else RuleEngine([])
        rows = load_task(Path(args.data), task)
        for part in ("tune", "held-out"):
            sub = [r for r in rows if _half(str(r[task.group])) == part]
            unmatched = sum(1 for r in sub if message_of(r)[1] and engine.match_row(r) is None)
            res = {"rows": len(sub), "unmatched": unmatched,
                   "drain": _summary(suggest_rules(sub, engine, label, max_rules=10_000), unmatched)}
            for th in thresholds:
                res[f"merged@{th}"] = _summary(suggest_rules(sub, engine, label, max_rules=10_000, embed=enc.embed,
                                                            merge_threshold=th), unmatched)
            table[f"{task.kind}/{rules}-rules/{part}"] = res
            print(json.dumps({f"{task.kind}/{rules}-rules/{part}": res}), file=sys.stderr, flush=True)
    ok = [th for th in thresholds
          if all(v[f"merged@{th}"]["purity"] >= v["drain"]["purity"] - args.max_purity_drop
                 for k, v in table.items() if k.endswith("/tune"))]
    out["chosen_on_tune"] = min(ok) if ok else None
    out["parts"] = table
    out["loghub"] = loghub(args, enc, thresholds)
    return out


def loghub(args: argparse.Namespace, enc: TextEncoder, thresholds: list[float]) -> dict[str, Any]:
    """Drain (the benchmark's per-system settings) alone vs its event templates merged by embeddings,
    on loghub-2k: grouping accuracy and the number of groups per system. Systems are cut in two by a
    hash of their name (whole systems held out)."""
    import gzip

    from kforge.healing.suggest import merge_templates
    from kforge.healing.templates import Drain, grouping_accuracy

    by_sys: dict[str, list[dict[str, Any]]] = {}
    with gzip.open(Path(args.data) / "healing" / "loghub_2k.train.jsonl.gz", "rt") as fh:
        for line in fh:
            r = json.loads(line)
            by_sys.setdefault(r["system"], []).append(r)
    out: dict[str, Any] = {}
    for system, rows in sorted(by_sys.items()):
        truth = [r["event_id_corrected"] or r["event_id"] for r in rows]
        miner = Drain.for_system(system)
        events = miner.events(miner.fit(r["content"] for r in rows))
        uniq = {t: i for i, t in enumerate(dict.fromkeys(events))}
        res = {"part": _half(system), "true_groups": len(set(truth)), "drain_groups": len(uniq),
               "drain_ga": round(grouping_accuracy(truth, events), 4)}
        tpl = {i: t for t, i in uniq.items()}
        for th in thresholds:
            merged = merge_templates(tpl, dict.fromkeys(tpl, "log"), enc.embed, th)
            pred = [merged[uniq[e]] for e in events]
            res[f"merged@{th}_groups"] = len(set(pred))
            res[f"merged@{th}_ga"] = round(grouping_accuracy(truth, pred), 4)
        out[system] = res
        print(json.dumps({system: res}), file=sys.stderr, flush=True)
    for part in ("tune", "held-out"):
        sysres = [v for v in out.values() if v.get("part") == part]
        out[f"mean/{part}"] = {k: round(sum(v[k] for v in sysres) / len(sysres), 4)
                               for k in sysres[0] if k.endswith("_ga")} | {"systems": [k for k, v in out.items()
                                                                                         if v.get("part") == part]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("throughput", "suggest"))
    ap.add_argument("--home", default="/tmp/kforge-bench-encoder", help="KFORGE_HOME (model extracted once there)")
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--thresholds", default="0.95,0.9,0.85,0.8,0.75")
    ap.add_argument("--max-purity-drop", type=float, default=0.02)
    args = ap.parse_args()
    Path(args.home).mkdir(parents=True, exist_ok=True)
    print(json.dumps(throughput(args) if args.what == "throughput" else suggest(args), indent=1))


if __name__ == "__main__":
    main()
