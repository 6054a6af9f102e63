"""Generation benchmark: held-out quality vs NNGen, and CPU/GPU throughput of the level-2 LM.

Usage::

    .venv/bin/python bench/generation_cpu.py --source demo                 # embedded default data
    .venv/bin/python bench/generation_cpu.py --source dpdk --minutes 20    # ../shared/data DPDK diffs
    .venv/bin/python bench/generation_cpu.py --source dpdk --device cuda --amp --minutes 20 --d-model 384 --layers 6

Prints one JSON object: corpus report, level-1 accuracies vs the majority baseline, LM vs NNGen
(B-Norm, B-Moses, ROUGE-L, prefix accuracy, perplexity) on the same held-out rows, training
tokens/s, time to the target loss, peak memory, and whether the issue's DPDK targets hold.
Nothing here is asserted: the numbers are for the notes.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))

from kforge.generation.corpus import build_corpus, load_from_parquet, load_from_warehouse  # noqa: E402
from kforge.generation.level1 import Level1Config  # noqa: E402
from kforge.generation.lm import TinyLMConfig  # noqa: E402
from kforge.generation.pipeline import GenerationConfig, run_generation  # noqa: E402
from kforge.generation.train import TrainConfig  # noqa: E402


def demo_raw(tmp: Path):  # noqa: ANN201
    from kforge.commits.diffs_table import collect_diffs
    from kforge.git.demo_repo import generate_demo_repo
    from kforge.git.ingest import ingest_repository
    from kforge.storage import Warehouse

    t = time.perf_counter()
    generate_demo_repo(tmp / "demo", n_commits=1200, seed=7)
    wh = Warehouse(tmp / "w.duckdb")
    ingest_repository(tmp / "demo", wh, name="demo")
    frame, _ = collect_diffs(wh, None, 5000, 65536)
    wh.replace("commit_diffs", frame)
    return load_from_warehouse(wh), {"demo": "demo"}, {"demo": tmp / "demo"}, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", choices=("demo", "dpdk", "libbpf", "bpftool", "btrfs-progs"), default="demo")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--minutes", type=float, default=5.0, help="LM training time budget")
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--d-model", type=int, default=192)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--max-len", type=int, default=384)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-rows", type=int, default=300)
    ap.add_argument("--max-rows", type=int, default=0)
    ap.add_argument("--level1-estimators", type=int, default=60)
    ap.add_argument("--target-loss", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backbone", choices=("scratch", "smollm2"), default="scratch")
    ap.add_argument("--adapters", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=50, help="LR warm-up steps (the asset's default is 20)")
    ap.add_argument("--calib-rows", type=int, default=100, help="validation rows for the confidence calibration")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        repo_paths = {}
        prep_s = 0.0
        if args.source == "demo":
            raw, _, repo_paths, prep_s = demo_raw(Path(tmp))
        else:
            raw = load_from_parquet([Path(args.data) / "kernel" / f"{args.source}.diffs.parquet"])
        corpus, rep = build_corpus(raw, max_rows=args.max_rows)
        steps = args.steps
        cfg = GenerationConfig(
            backbone=args.backbone,
            lm=TinyLMConfig(vocab_size=args.vocab, d_model=args.d_model, n_layers=args.layers,
                            n_heads=max(2, args.d_model // 64), max_len=args.max_len),
            train=TrainConfig(steps=steps, batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr,
                              device=args.device, amp=args.amp, max_minutes=args.minutes, target_loss=args.target_loss,
                              threads=args.threads, warmup=args.warmup),
            level1=Level1Config(n_estimators=args.level1_estimators), eval_rows=args.eval_rows,
            calib_rows=args.calib_rows, adapter_families=args.adapters)
        res = run_generation(corpus, cfg, Path(tmp) / "work", repo_paths, log=lambda s: print(s, file=sys.stderr, flush=True))
        m = res.metrics
        h = res.history
        gen_tps = float("nan")
        b = res.bundle
        rows = corpus.filter(corpus["split"] == "test").head(32)
        from kforge.generation.evaluate import draft_messages

        tg = time.perf_counter()
        d = draft_messages(b.backbone, b.level1, b.index, rows["diff"].to_list(), max_new_tokens=32, batch_size=16)
        gen_tokens = sum(len(b.backbone.encode(t)) for t in d.texts)
        gen_tps = gen_tokens / (time.perf_counter() - tg)
        out = {
            "source": args.source, "device": args.device, "threads": args.threads, "amp": args.amp,
            "corpus": rep.as_dict(), "prep_s": round(prep_s, 1), "total_s": round(time.perf_counter() - t0, 1),
            "lm_params": res.params["n_params"], "train": {
                "steps": h.steps_done, "tokens_per_s": round(h.tokens_per_s, 1), "seconds": round(h.seconds, 1),
                "loss_first": round(h.first_loss(), 3), "loss_last": round(h.last_loss(), 3),
                "target_loss": args.target_loss, "time_to_target_loss_s": h.time_to_target_s,
                "peak_mem_mb": round(h.peak_mem_mb, 1)},
            "generation_tokens_per_s_batch16": round(gen_tps, 1),
            "level1": {k: round(v, 4) for k, v in m.items() if k.startswith("l1_") and k.endswith("_acc")},
            "held_out": {k: round(v, 3) for k, v in m.items() if k.startswith("test_")},
            "targets": {
                "lm_beats_nngen_bleu_norm": m["test_lm_bleu_norm"] > m["test_nngen_bleu_norm"],
                "lm_beats_nngen_rouge_l": m["test_lm_rouge_l"] > m["test_nngen_rouge_l"],
                "prefix_acc_ge_0.8": m["test_lm_prefix_acc"] >= 0.8},
            "samples": res.samples.head(8).select("reference", "lm", "nngen").to_dicts(),
        }
        print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
